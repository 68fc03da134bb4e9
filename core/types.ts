/**
 * Types shared by the core, the FUSE adapter and the backends.
 *
 * Decisions:
 * - Inode numbers, offsets and sizes are JS `number`s (exact up to 2^53, i.e. 8 PiB); the FFI
 *   edge converts the `bigint`s libfuse hands over exactly once.
 * - File names are "byte strings": one JS char per byte (code 0..255), so that any Linux name,
 *   UTF-8 or not, round-trips. {@linkcode nameFromText} and {@linkcode nameToText} convert
 *   from and to ordinary (UTF-16) JS strings for the embedding API.
 *
 * @module
 */

import { bytesToByteString, byteStringToBytes, decodeUtf8, encodeUtf8 } from "./_bytes.ts";

/** An inode number. The root directory is {@linkcode ROOT_INO}. */
export type Ino = number & { readonly __brand: "Ino" };
/** An open file or directory handle number. */
export type Fh = number & { readonly __brand: "Fh" };
/** A slice id: unique, never reused, allocated by the metadata engine. */
export type SliceId = number & { readonly __brand: "SliceId" };
/** A file name as a byte string (one char per byte). */
export type Name = string;

/** The root inode. */
export const ROOT_INO = 1 as Ino;

/** The mask of the file type bits of `st_mode`. */
export const S_IFMT = 0o170000;
/** File type: socket. */
export const S_IFSOCK = 0o140000;
/** File type: symbolic link. */
export const S_IFLNK = 0o120000;
/** File type: regular file. */
export const S_IFREG = 0o100000;
/** File type: block device. */
export const S_IFBLK = 0o060000;
/** File type: directory. */
export const S_IFDIR = 0o040000;
/** File type: character device. */
export const S_IFCHR = 0o020000;
/** File type: FIFO. */
export const S_IFIFO = 0o010000;
/** Mode bit: set user id on execution. */
export const S_ISUID = 0o4000;
/** Mode bit: set group id on execution (on a directory: new entries inherit its group). */
export const S_ISGID = 0o2000;
/** Mode bit: sticky (in a directory, only owners may remove or rename entries). */
export const S_ISVTX = 0o1000;

/** A point in time as whole seconds plus nanoseconds. */
export interface Timespec {
  /** Whole seconds since the epoch. */
  sec: number;
  /** Nanoseconds, 0 to 999,999,999. */
  nsec: number;
}

/** The attributes of an inode, as `stat(2)` reports them. */
export interface Attr {
  /** The inode number. */
  ino: Ino;
  /** Type and permission bits (`S_IFREG | 0o644`). */
  mode: number;
  /** Hard links (for a directory: 2 plus its subdirectories). */
  nlink: number;
  /** The owner. */
  uid: number;
  /** The group. */
  gid: number;
  /** The device number of a device node (0 for others). */
  rdev: number;
  /** Size in bytes (a symlink's: its target's length). */
  size: number;
  /** Last access. */
  atime: Timespec;
  /** Last change of the contents. */
  mtime: Timespec;
  /** Last change of the attributes. */
  ctime: Timespec;
  /** The parent directory (directories only; 0 for others). */
  parent: Ino;
  /**
   * Bytes of a regular file that hold data, not holes (`st_blocks` is this in 512-byte units),
   * once its metadata counts them; `undefined` for other inodes and for files not written since
   * an older version created them (then `st_blocks` follows the size).
   */
  allocated?: number;
}

/** Who is asking: the caller's credentials, from `fuse_req_ctx` or the embedding API. */
export interface Ctx {
  /** The caller's effective user id. */
  uid: number;
  /** The caller's effective group id. */
  gid: number;
  /** The caller's process id (0 when unknown). */
  pid: number;
  /** The caller's umask, applied to the modes of new inodes. */
  umask: number;
  /** Supplementary groups of the caller (read lazily; may be costly). */
  groups(): readonly number[];
  /**
   * Whether the kernel has interrupted the request (the caller got a signal); only while it is
   * unanswered. Absent when unknown (the embedding API).
   */
  interrupted?(): boolean;
}

/** A context with root credentials, for the embedding API and tools. */
export const ROOT_CTX: Ctx = { uid: 0, gid: 0, pid: 0, umask: 0o022, groups: () => [0] };

/** A time to set: a given value, or "now" (`UTIME_NOW`). Absent means `UTIME_OMIT`. */
export type TimeSet = Timespec | "now";

/** What `setattr` changes; absent fields are left alone. */
export interface SetAttr {
  /** New permission bits (`chmod`); the type bits are ignored. */
  mode?: number;
  /** New owner (`chown`). */
  uid?: number;
  /** New group (`chown`). */
  gid?: number;
  /** New size (`truncate`): cuts the file or extends it with zeros. */
  size?: number;
  /** New access time. */
  atime?: TimeSet;
  /** New modification time. */
  mtime?: TimeSet;
  /** New change time (set by the kernel with other changes). */
  ctime?: Timespec;
}

/** One directory entry as `readdir` returns it. */
export interface DirEntry {
  /** The entry's name. */
  name: Name;
  /** The entry's inode. */
  ino: Ino;
  /** Type bits (`S_IFDIR`, `S_IFREG`, ...). */
  type: number;
  /** The offset of the entry after this one (pass it back to continue). */
  next: number;
  /** Attributes, present for `readdirplus`. */
  attr?: Attr;
}

/** `statfs(2)` numbers. */
export interface StatFs {
  /** The unit of the block counts, in bytes. */
  blockSize: number;
  /** The volume's capacity in blocks. */
  totalBlocks: number;
  /** Blocks not in use. */
  freeBlocks: number;
  /** Blocks an unprivileged user may still use. */
  availBlocks: number;
  /** The most inodes the volume may hold. */
  totalFiles: number;
  /** Inodes that may still be created. */
  freeFiles: number;
  /** The longest file name, in bytes. */
  nameMax: number;
}

/** The result of `open`/`opendir`. */
export interface Opened {
  /** The new handle. */
  fh: Fh;
  /** Keep the kernel page cache of the file across opens. */
  keepCache?: boolean;
  /** Bypass the kernel page cache. */
  directIo?: boolean;
  /**
   * The file changed elsewhere (another mount) since the kernel may have cached its attributes:
   * it should drop them, so that this open sees the new size.
   */
  attrStale?: boolean;
}

/** `fcntl(2)` lock type: a read (shared) lock. */
export const F_RDLCK = 0;
/** `fcntl(2)` lock type: a write (exclusive) lock. */
export const F_WRLCK = 1;
/** `fcntl(2)` lock type: no lock (to unlock, or "no conflict" from `getlk`). */
export const F_UNLCK = 2;

/** A POSIX record lock range; `end` is inclusive, `Infinity` for "to end of file". */
export interface PosixLock {
  /** `F_RDLCK`, `F_WRLCK` or `F_UNLCK`. */
  type: number;
  /** The first byte. */
  start: number;
  /** The last byte (inclusive), `Infinity` for "to end of file". */
  end: number;
  /** The process that holds (or asks for) the lock. */
  pid: number;
}

/** `flock(2)`: take a shared lock. */
export const LOCK_SH = 1;
/** `flock(2)`: take an exclusive lock. */
export const LOCK_EX = 2;
/** `flock(2)`: fail with `EAGAIN` instead of waiting (or'ed with `LOCK_SH`/`LOCK_EX`). */
export const LOCK_NB = 4;
/** `flock(2)`: release the lock. */
export const LOCK_UN = 8;

/** `renameat2(2)`: fail with `EEXIST` if the target exists. */
export const RENAME_NOREPLACE = 1;
/** `renameat2(2)`: swap source and target atomically. */
export const RENAME_EXCHANGE = 2;
/** `renameat2` flag: leave a whiteout (a 0/0 character device) at the old name (overlayfs). */
export const RENAME_WHITEOUT = 4;

/** `setxattr(2)`: fail with `EEXIST` if the attribute exists. */
export const XATTR_CREATE = 1;
/** `setxattr(2)`: fail with `ENODATA` if the attribute does not exist. */
export const XATTR_REPLACE = 2;

/** `fallocate(2)`: do not change the file size. */
export const FALLOC_FL_KEEP_SIZE = 1;
/** `fallocate(2)`: deallocate the range, which then reads as zeros (with `KEEP_SIZE`). */
export const FALLOC_FL_PUNCH_HOLE = 2;

/** `lseek(2)`: the next offset at or after the given one that holds data. */
export const SEEK_DATA = 3;
/** `lseek(2)`: the next hole at or after the given offset (the end of file counts as one). */
export const SEEK_HOLE = 4;

/** `open(2)`: the mask of the access mode. */
export const O_ACCMODE = 3;
/** `open(2)` access mode: read only. */
export const O_RDONLY = 0;
/** `open(2)` access mode: write only. */
export const O_WRONLY = 1;
/** `open(2)` access mode: read and write. */
export const O_RDWR = 2;
/** `open(2)`: create the file if missing. */
export const O_CREAT = 0o100;
/** `open(2)`: with `O_CREAT`, fail with `EEXIST` if the file exists. */
export const O_EXCL = 0o200;
/** `open(2)`: truncate the file to zero length. */
export const O_TRUNC = 0o1000;
/** `open(2)`: every write goes to the end of the file. */
export const O_APPEND = 0o2000;

/** Converts a JS (UTF-16) string to a byte-string name (UTF-8 bytes, one char per byte). */
export function nameFromText(text: string): Name {
  return bytesToByteString(encodeUtf8(text));
}

/** Converts a byte-string name back to a JS string (invalid UTF-8 becomes U+FFFD). */
export function nameToText(name: Name): string {
  return decodeUtf8(byteStringToBytes(name));
}

/** A byte-string name's bytes; throws a `RangeError` for a char above 255. */
export function nameToBytes(name: Name): Uint8Array {
  return byteStringToBytes(name);
}

/** The byte-string name of raw bytes (a name as the kernel passes it). */
export function bytesToName(bytes: Uint8Array): Name {
  return bytesToByteString(bytes);
}
