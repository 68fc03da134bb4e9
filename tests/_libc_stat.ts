/**
 * stat, lstat, fstat, statvfs and statfs through libc, with the x86_64 struct layouts decoded.
 *
 * @module
 */
import { check, cstr, libc } from "./_libc_ffi.ts";

/** The fields of `struct stat`, with nanosecond timestamps as bigint. */
export interface Stat {
  /** `st_dev`: the device holding the file. */
  dev: bigint;
  /** `st_ino`: the inode number. */
  ino: bigint;
  /** `st_nlink`: the number of hard links. */
  nlink: number;
  /** `st_mode`: file type and permission bits. */
  mode: number;
  /** `st_uid`: the owner. */
  uid: number;
  /** `st_gid`: the group. */
  gid: number;
  /** `st_rdev`: the device number of a device node. */
  rdev: bigint;
  /** `st_size`: the size in bytes. */
  size: number;
  /** `st_blksize`: the preferred I/O size. */
  blksize: number;
  /** `st_blocks`: allocated 512-byte blocks. */
  blocks: number;
  /** Nanoseconds since the epoch. */
  atimeNs: bigint;
  /** Nanoseconds since the epoch. */
  mtimeNs: bigint;
  /** Nanoseconds since the epoch. */
  ctimeNs: bigint;
}

function parseStat(v: DataView): Stat {
  const u64 = (o: number) => v.getBigUint64(o, true);
  const ts = (o: number) => v.getBigInt64(o, true) * 1_000_000_000n + v.getBigInt64(o + 8, true);
  return {
    dev: u64(0),
    ino: u64(8),
    nlink: Number(u64(16)),
    mode: v.getUint32(24, true),
    uid: v.getUint32(28, true),
    gid: v.getUint32(32, true),
    rdev: u64(40),
    size: Number(v.getBigInt64(48, true)),
    blksize: Number(v.getBigInt64(56, true)),
    blocks: Number(v.getBigInt64(64, true)),
    atimeNs: ts(72),
    mtimeNs: ts(88),
    ctimeNs: ts(104),
  };
}

/** `stat(2)` (follows symlinks). */
export function stat(path: string): Stat {
  return parseStat(callInto(144, "stat", `"${path}"`, (b) => libc().stat(cstr(path), b)));
}

/** `lstat(2)` (does not follow a trailing symlink). */
export function lstat(path: string): Stat {
  return parseStat(callInto(144, "lstat", `"${path}"`, (b) => libc().lstat(cstr(path), b)));
}

/** `fstat(2)`. */
export function fstat(fd: number): Stat {
  return parseStat(callInto(144, "fstat", "", (b) => libc().fstat(fd, b)));
}

/** The fields of `struct statvfs`. */
export interface Statvfs {
  /** `f_bsize`: the filesystem block size. */
  bsize: number;
  /** `f_frsize`: the fragment size (the unit of the block counts). */
  frsize: number;
  /** `f_blocks`: the size in `frsize` units. */
  blocks: number;
  /** `f_bfree`: free blocks. */
  bfree: number;
  /** `f_bavail`: free blocks for unprivileged users. */
  bavail: number;
  /** `f_files`: inodes. */
  files: number;
  /** `f_ffree`: free inodes. */
  ffree: number;
  /** `f_favail`: free inodes for unprivileged users. */
  favail: number;
  /** `f_fsid`: the filesystem id. */
  fsid: bigint;
  /** `f_flag`: mount flags. */
  flag: number;
  /** `f_namemax`: the longest file name. */
  namemax: number;
}

/** `statvfs(3)`. */
export function statvfs(path: string): Statvfs {
  const v = callInto(112, "statvfs", `"${path}"`, (b) => libc().statvfs(cstr(path), b));
  const n = (o: number) => Number(v.getBigUint64(o, true));
  return {
    bsize: n(0),
    frsize: n(8),
    blocks: n(16),
    bfree: n(24),
    bavail: n(32),
    files: n(40),
    ffree: n(48),
    favail: n(56),
    fsid: v.getBigUint64(64, true),
    flag: n(72),
    namemax: n(80),
  };
}

/** The fields of Linux `struct statfs`. */
export interface Statfs {
  /** `f_type`: the filesystem magic number. */
  type: bigint;
  /** `f_bsize`: the optimal transfer block size. */
  bsize: number;
  /** `f_blocks`: total data blocks. */
  blocks: number;
  /** `f_bfree`: free blocks. */
  bfree: number;
  /** `f_bavail`: free blocks for unprivileged users. */
  bavail: number;
  /** `f_files`: inodes. */
  files: number;
  /** `f_ffree`: free inodes. */
  ffree: number;
  /** `f_namelen`: the longest file name. */
  namelen: number;
  /** `f_frsize`: the fragment size. */
  frsize: number;
}

/** `statfs(2)`. */
export function statfs(path: string): Statfs {
  const v = callInto(120, "statfs", `"${path}"`, (b) => libc().statfs(cstr(path), b));
  const n = (o: number) => Number(v.getBigInt64(o, true));
  return {
    type: v.getBigInt64(0, true),
    bsize: n(8),
    blocks: n(16),
    bfree: n(24),
    bavail: n(32),
    files: n(40),
    ffree: n(48),
    namelen: n(64),
    frsize: n(72),
  };
}

/** Calls `f` with a zeroed buffer of `size` bytes for the C struct it fills; returns a view of it. */
function callInto(
  size: number,
  call: string,
  detail: string,
  f: (b: Uint8Array<ArrayBuffer>) => number,
): DataView {
  const b = new Uint8Array(size);
  check(call, f(b), detail);
  return new DataView(b.buffer);
}
