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

/** File type bits of `st_mode`. */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;

/** A point in time as whole seconds plus nanoseconds. */
export interface Timespec {
  sec: number;
  nsec: number;
}

/** The attributes of an inode, as `stat(2)` reports them. */
export interface Attr {
  ino: Ino;
  /** Type and permission bits (`S_IFREG | 0o644`). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
  /** The parent directory (directories only; 0 for others). */
  parent: Ino;
}

/** Who is asking: the caller's credentials, from `fuse_req_ctx` or the embedding API. */
export interface Ctx {
  uid: number;
  gid: number;
  pid: number;
  umask: number;
  /** Supplementary groups of the caller (read lazily; may be costly). */
  groups(): readonly number[];
}

/** A context with root credentials, for the embedding API and tools. */
export const ROOT_CTX: Ctx = { uid: 0, gid: 0, pid: 0, umask: 0o022, groups: () => [0] };

/** A time to set: a given value, or "now" (`UTIME_NOW`). Absent means `UTIME_OMIT`. */
export type TimeSet = Timespec | "now";

/** What `setattr` changes; absent fields are left alone. */
export interface SetAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atime?: TimeSet;
  mtime?: TimeSet;
  ctime?: Timespec;
}

/** One directory entry as `readdir` returns it. */
export interface DirEntry {
  name: Name;
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
  blockSize: number;
  totalBlocks: number;
  freeBlocks: number;
  availBlocks: number;
  totalFiles: number;
  freeFiles: number;
  nameMax: number;
}

/** The result of `open`/`opendir`. */
export interface Opened {
  fh: Fh;
  /** Keep the kernel page cache of the file across opens. */
  keepCache?: boolean;
  /** Bypass the kernel page cache. */
  directIo?: boolean;
}

/** Lock types of `fcntl(2)`. */
export const F_RDLCK = 0;
export const F_WRLCK = 1;
export const F_UNLCK = 2;

/** A POSIX record lock range; `end` is inclusive, `Infinity` for "to end of file". */
export interface PosixLock {
  type: number;
  start: number;
  end: number;
  pid: number;
}

/** `flock(2)` operations. */
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

/** `renameat2(2)` flags. */
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

/** `setxattr(2)` flags. */
export const XATTR_CREATE = 1;
export const XATTR_REPLACE = 2;

/** `fallocate(2)` modes. */
export const FALLOC_FL_KEEP_SIZE = 1;
export const FALLOC_FL_PUNCH_HOLE = 2;

/** `lseek(2)` whence values handled by the filesystem. */
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** `open(2)` flags the core looks at. */
export const O_ACCMODE = 3;
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
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
