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

/** The POSIX operations of a mounted filesystem. */
export interface FsOps {
  /**
   * True if `write` copies what it keeps of `data` before its first `await`: the FUSE adapter then
   * passes a view of libfuse's request buffer instead of a copy of it.
   */
  readonly copiesWriteData?: boolean;
  /** The kernel dropped `nlookup` references to `ino`. */
  forget?(ino: Ino, nlookup: number): void;
  lookup(ctx: Ctx, parent: Ino, name: Name): Promise<Attr>;
  getattr(ctx: Ctx, ino: Ino, fh?: Fh): Promise<Attr>;
  setattr(ctx: Ctx, ino: Ino, set: SetAttr, fh?: Fh): Promise<Attr>;
  readlink(ctx: Ctx, ino: Ino): Promise<Name>;
  mknod(ctx: Ctx, parent: Ino, name: Name, mode: number, rdev: number): Promise<Attr>;
  mkdir(ctx: Ctx, parent: Ino, name: Name, mode: number): Promise<Attr>;
  unlink(ctx: Ctx, parent: Ino, name: Name): Promise<void>;
  rmdir(ctx: Ctx, parent: Ino, name: Name): Promise<void>;
  symlink(ctx: Ctx, parent: Ino, name: Name, target: Name): Promise<Attr>;
  rename(
    ctx: Ctx,
    parent: Ino,
    name: Name,
    newParent: Ino,
    newName: Name,
    flags: number,
  ): Promise<void>;
  link(ctx: Ctx, ino: Ino, newParent: Ino, newName: Name): Promise<Attr>;
  open(ctx: Ctx, ino: Ino, flags: number): Promise<Opened>;
  create(
    ctx: Ctx,
    parent: Ino,
    name: Name,
    mode: number,
    flags: number,
  ): Promise<{ attr: Attr; opened: Opened }>;
  /**
   * Reads up to `size` bytes. The result may be a view into the callee's memory, but it must not
   * change afterwards: large replies are sent from another thread after the promise settles.
   */
  read(ctx: Ctx, ino: Ino, fh: Fh, offset: number, size: number): Promise<Uint8Array>;
  /**
   * Writes `data` and returns the bytes written. `data` is the callee's to keep, unless
   * {@linkcode copiesWriteData} is true: then it is valid only until `write` first awaits.
   */
  write(ctx: Ctx, ino: Ino, fh: Fh, offset: number, data: Uint8Array): Promise<number>;
  flush(ctx: Ctx, ino: Ino, fh: Fh, lockOwner: bigint): Promise<void>;
  release(ctx: Ctx, ino: Ino, fh: Fh, lockOwner: bigint, flockRelease: boolean): Promise<void>;
  fsync(ctx: Ctx, ino: Ino, fh: Fh, datasync: boolean): Promise<void>;
  opendir(ctx: Ctx, ino: Ino, flags: number): Promise<Opened>;
  /**
   * Entries from `offset` on (0 = start); the adapter packs as many as fit and continues at the
   * `next` of the last one it packed. `limit` is a hint of how many fit. With `plus`, each entry
   * carries its attributes, and `.`/`..` are included as for plain readdir.
   */
  readdir(
    ctx: Ctx,
    ino: Ino,
    fh: Fh,
    offset: number,
    limit: number,
    plus: boolean,
  ): Promise<DirEntry[]>;
  releasedir(ctx: Ctx, ino: Ino, fh: Fh): Promise<void>;
  fsyncdir(ctx: Ctx, ino: Ino, fh: Fh, datasync: boolean): Promise<void>;
  statfs(ctx: Ctx, ino: Ino): Promise<StatFs>;
  setxattr(ctx: Ctx, ino: Ino, name: Name, value: Uint8Array, flags: number): Promise<void>;
  getxattr(ctx: Ctx, ino: Ino, name: Name): Promise<Uint8Array>;
  listxattr(ctx: Ctx, ino: Ino): Promise<Name[]>;
  removexattr(ctx: Ctx, ino: Ino, name: Name): Promise<void>;
  access(ctx: Ctx, ino: Ino, mask: number): Promise<void>;
  /** The first lock that conflicts with `lock`, or `lock` with type `F_UNLCK` if none. */
  getlk(ctx: Ctx, ino: Ino, fh: Fh, owner: bigint, lock: PosixLock): Promise<PosixLock>;
  /** Sets or clears a POSIX lock; with `wait`, waits until it can be taken. */
  setlk(
    ctx: Ctx,
    ino: Ino,
    fh: Fh,
    owner: bigint,
    lock: PosixLock,
    wait: boolean,
  ): Promise<void>;
  /** `flock(2)`: `op` is `LOCK_SH`/`LOCK_EX`/`LOCK_UN`, possibly with `LOCK_NB`. */
  flock(ctx: Ctx, ino: Ino, fh: Fh, owner: bigint, op: number): Promise<void>;
  fallocate(
    ctx: Ctx,
    ino: Ino,
    fh: Fh,
    mode: number,
    offset: number,
    length: number,
  ): Promise<void>;
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
  /** `SEEK_DATA`/`SEEK_HOLE`; returns the new offset. */
  lseek(ctx: Ctx, ino: Ino, fh: Fh, offset: number, whence: number): Promise<number>;
  /** Called once when the session ends, after the last request. */
  destroy?(): Promise<void>;
}
