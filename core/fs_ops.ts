/**
 * The operation surface the FUSE adapter drives: one typed object, every method async.
 *
 * The adapter (`ffi/`) copies what it needs out of each libfuse request, calls the matching method,
 * and replies when the promise settles: a value becomes `fuse_reply_*`, a thrown
 * {@linkcode FsError} becomes `fuse_reply_err(errno)`, anything else `EIO`. A method that is absent
 * answers `ENOSYS`. Names and symlink targets are byte strings (see `types.ts`).
 *
 * @module
 */

import type {
  Attr,
  Ctx,
  DirEntry,
  Fh,
  Ino,
  Name,
  Opened,
  PosixLock,
  SetAttr,
  StatFs,
} from "./types.ts";

/**
 * The POSIX operations of a mounted filesystem.
 *
 * Every method fails by rejecting with an {@linkcode FsError} whose `errno` the adapter returns
 * to the kernel; the errors listed per method are those the core raises itself (`EIO` stands for
 * anything else, e.g. a metadata engine or block store failure). Permission checks on paths are
 * the kernel's (`default_permissions`); the methods check only what the kernel cannot (owner
 * rules of `setattr`, `access`). Names longer than 255 bytes fail with `ENAMETOOLONG`, missing
 * inodes and names with `ENOENT`, handles that are not open with `EBADF`.
 */
export interface FsOps {
  /**
   * True if `write` copies what it keeps of `data` before its first `await`: the FUSE adapter then
   * passes a view of libfuse's request buffer instead of a copy of it.
   */
  readonly copiesWriteData?: boolean;
  /** The kernel dropped `nlookup` references to `ino`. */
  forget?(ino: Ino, nlookup: number): void;
  /** The attributes of `name` in directory `parent`; `ENOENT` if absent, `ENOTDIR`. */
  lookup(ctx: Ctx, parent: Ino, name: Name): Promise<Attr>;
  /** The attributes of `ino` (`fh` when the kernel has an open handle); `ENOENT`. */
  getattr(ctx: Ctx, ino: Ino, fh?: Fh): Promise<Attr>;
  /**
   * Changes the fields present in `set` and returns the new attributes: `chmod`, `chown`,
   * `truncate` (`size`), `utimensat`. `EPERM` for a change only the owner (or root) may make,
   * `EACCES` for setting times to now without write permission; for `size`, `EISDIR` on a
   * directory, `EINVAL` on another non-regular file or a negative size, `EFBIG` past 2^52.
   */
  setattr(ctx: Ctx, ino: Ino, set: SetAttr, fh?: Fh): Promise<Attr>;
  /** The target of symlink `ino`; `EINVAL` if it is not a symlink. */
  readlink(ctx: Ctx, ino: Ino): Promise<Name>;
  /**
   * Creates a regular file, FIFO, socket or device node `name` in `parent` (`mode` carries the
   * type). `EEXIST` if the name is taken, `EINVAL` for a directory or symlink type.
   */
  mknod(ctx: Ctx, parent: Ino, name: Name, mode: number, rdev: number): Promise<Attr>;
  /** Creates directory `name` in `parent`; `EEXIST` if the name is taken. */
  mkdir(ctx: Ctx, parent: Ino, name: Name, mode: number): Promise<Attr>;
  /**
   * Removes the non-directory `name` from `parent`; `EISDIR` for a directory. An inode that is
   * still open lives on until its last handle is released.
   */
  unlink(ctx: Ctx, parent: Ino, name: Name): Promise<void>;
  /** Removes the empty directory `name`; `ENOTDIR`, `ENOTEMPTY`, `EINVAL` for `.`. */
  rmdir(ctx: Ctx, parent: Ino, name: Name): Promise<void>;
  /**
   * Creates symlink `name` in `parent` pointing at `target`; `EEXIST`, `ENOENT` for an empty
   * target, `ENAMETOOLONG` for a target over 4095 bytes.
   */
  symlink(ctx: Ctx, parent: Ino, name: Name, target: Name): Promise<Attr>;
  /**
   * `renameat2(2)`: moves `name` in `parent` to `newName` in `newParent`, replacing a target of
   * the same kind. `flags` may be `RENAME_NOREPLACE` (`EEXIST` if the target exists),
   * `RENAME_EXCHANGE` (`ENOENT` if it does not) or `RENAME_WHITEOUT` (a 0/0 character device owned
   * by the caller takes the old name, atomically; with or without `RENAME_NOREPLACE`); exchange
   * with either other flag is `EINVAL`. `EINVAL` for moving a
   * directory into itself, `ENOTDIR`/`EISDIR` for a kind mismatch, `ENOTEMPTY` for a non-empty
   * target directory, `EBUSY` for `.` or `..`.
   */
  rename(
    ctx: Ctx,
    parent: Ino,
    name: Name,
    newParent: Ino,
    newName: Name,
    flags: number,
  ): Promise<void>;
  /** Adds hard link `newName` in `newParent` to `ino`; `EPERM` for a directory, `EEXIST`, `EMLINK`. */
  link(ctx: Ctx, ino: Ino, newParent: Ino, newName: Name): Promise<Attr>;
  /** Opens `ino` with `open(2)` `flags`; `EISDIR` for writing to a directory. */
  open(ctx: Ctx, ino: Ino, flags: number): Promise<Opened>;
  /** Creates and opens regular file `name` in `parent`; `EEXIST` if the name is taken. */
  create(
    ctx: Ctx,
    parent: Ino,
    name: Name,
    mode: number,
    flags: number,
  ): Promise<{ attr: Attr; opened: Opened }>;
  /**
   * Reads up to `size` bytes at `offset` (fewer at the end of the file). The result may be a view
   * into the callee's memory, but it must not change afterwards: large replies are sent from
   * another thread after the promise settles.
   */
  read(ctx: Ctx, ino: Ino, fh: Fh, offset: number, size: number): Promise<Uint8Array>;
  /**
   * Writes `data` at `offset` and returns the bytes written; `EBADF` on a handle opened read-only,
   * `EFBIG` past 2^52. `data` is the callee's to keep, unless {@linkcode copiesWriteData} is
   * true: then it is valid only until `write` first awaits.
   */
  write(ctx: Ctx, ino: Ino, fh: Fh, offset: number, data: Uint8Array): Promise<number>;
  /**
   * `close(2)` of one file descriptor: writes buffered data (its errors are reported here) and
   * drops the POSIX locks of `lockOwner`.
   */
  flush(ctx: Ctx, ino: Ino, fh: Fh, lockOwner: bigint): Promise<void>;
  /** The last close of handle `fh`; with `flockRelease`, also drops `lockOwner`'s `flock`. */
  release(ctx: Ctx, ino: Ino, fh: Fh, lockOwner: bigint, flockRelease: boolean): Promise<void>;
  /** Makes the file's data and metadata durable in the block store and the metadata engine. */
  fsync(ctx: Ctx, ino: Ino, fh: Fh, datasync: boolean): Promise<void>;
  /** Opens directory `ino` for `readdir`; `ENOTDIR`. */
  opendir(ctx: Ctx, ino: Ino, flags: number): Promise<Opened>;
  /**
   * Entries from `offset` on (0 = start); the adapter packs as many as fit and continues at the
   * `next` of the last one it packed. `limit` is a hint of how many fit. With `plus`, each entry
   * carries its attributes, and `.`/`..` are included as for plain readdir. `ENOTDIR` for a
   * handle that is not a directory's.
   */
  readdir(
    ctx: Ctx,
    ino: Ino,
    fh: Fh,
    offset: number,
    limit: number,
    plus: boolean,
  ): Promise<DirEntry[]>;
  /** Closes a directory handle. */
  releasedir(ctx: Ctx, ino: Ino, fh: Fh): Promise<void>;
  /** `fsync(2)` of a directory: metadata changes are durable once made, so nothing to do. */
  fsyncdir(ctx: Ctx, ino: Ino, fh: Fh, datasync: boolean): Promise<void>;
  /** `statfs(2)`: the volume's capacity and usage. */
  statfs(ctx: Ctx, ino: Ino): Promise<StatFs>;
  /**
   * Sets extended attribute `name`; `flags` may be `XATTR_CREATE` (`EEXIST` if it exists) or
   * `XATTR_REPLACE` (`ENODATA` if it does not). `ENOTSUP` for `system.*` names, `ERANGE` for a
   * name over 255 bytes, `EINVAL` for an empty one, `E2BIG` for a value over 64 KiB.
   */
  setxattr(ctx: Ctx, ino: Ino, name: Name, value: Uint8Array, flags: number): Promise<void>;
  /** The value of extended attribute `name`; `ENODATA` if absent. */
  getxattr(ctx: Ctx, ino: Ino, name: Name): Promise<Uint8Array>;
  /** The names of `ino`'s extended attributes. */
  listxattr(ctx: Ctx, ino: Ino): Promise<Name[]>;
  /** Removes extended attribute `name`; `ENODATA` if absent. */
  removexattr(ctx: Ctx, ino: Ino, name: Name): Promise<void>;
  /** `access(2)`: resolves if `ctx` may access `ino` as `mask` (`R_OK|W_OK|X_OK`), else `EACCES`. */
  access(ctx: Ctx, ino: Ino, mask: number): Promise<void>;
  /** The first lock that conflicts with `lock`, or `lock` with type `F_UNLCK` if none. */
  getlk(ctx: Ctx, ino: Ino, fh: Fh, owner: bigint, lock: PosixLock): Promise<PosixLock>;
  /**
   * Sets or clears a POSIX lock; with `wait`, waits until it can be taken (`EINTR` once
   * `ctx.interrupted()` says the caller was interrupted), else fails with `EAGAIN` on a conflict.
   */
  setlk(
    ctx: Ctx,
    ino: Ino,
    fh: Fh,
    owner: bigint,
    lock: PosixLock,
    wait: boolean,
  ): Promise<void>;
  /**
   * `flock(2)`: `op` is `LOCK_SH`/`LOCK_EX`/`LOCK_UN`, possibly with `LOCK_NB` (then `EAGAIN`
   * on a conflict instead of waiting; a wait ends with `EINTR` like `setlk`'s).
   */
  flock(ctx: Ctx, ino: Ino, fh: Fh, owner: bigint, op: number): Promise<void>;
  /**
   * `fallocate(2)`: `mode` 0 or `FALLOC_FL_KEEP_SIZE` reserves (extends the size unless kept),
   * `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE` zeroes the range. `ENOTSUP` for other modes,
   * `EINVAL` for a negative offset or empty range, `EBADF` on a read-only handle, `ENODEV` for
   * a file that is not regular.
   */
  fallocate(
    ctx: Ctx,
    ino: Ino,
    fh: Fh,
    mode: number,
    offset: number,
    length: number,
  ): Promise<void>;
  /**
   * `copy_file_range(2)`: copies `length` bytes by sharing slices (no data is read or written)
   * and returns the bytes copied. `EINVAL` for non-zero `flags`, overlapping ranges of one file
   * or a file that is not regular, `EBADF` for a read-only target or one opened `O_APPEND`.
   */
  copyFileRange(
    ctx: Ctx,
    inoIn: Ino,
    fhIn: Fh,
    offIn: number,
    inoOut: Ino,
    fhOut: Fh,
    offOut: number,
    length: number,
    flags: number,
  ): Promise<number>;
  /**
   * `lseek(2)` with `SEEK_DATA`/`SEEK_HOLE` (others are `EINVAL`); returns the new offset.
   * `ENXIO` at or past the end of the file, or when no data follows `offset`.
   */
  lseek(ctx: Ctx, ino: Ino, fh: Fh, offset: number, whence: number): Promise<number>;
  /** Called once when the session ends, after the last request. */
  destroy?(): Promise<void>;
}
