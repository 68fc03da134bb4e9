/**
 * Constants of the test libc bindings (x86_64 Linux): `open` flags, `renameat2`, `setxattr`,
 * `flock`, `fcntl`, `fallocate`, `lseek`, `utimensat`, file types, `access` modes, and `makedev`.
 *
 * @module
 */

/** `open` flags (x86_64). */
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DIRECT: 0o40000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  CLOEXEC: 0o2000000,
} as const;

/** `renameat2` flags. */
export const RENAME_NOREPLACE = 1;
/** `renameat2` flag: atomically exchange the two paths. */
export const RENAME_EXCHANGE = 2;
/** `renameat2` flag: leave a whiteout (0/0 character device) at the old path. */
export const RENAME_WHITEOUT = 4;
/** `setxattr` flag: fail with EEXIST when the attribute exists. */
export const XATTR_CREATE = 1;
/** `setxattr` flag: fail with ENODATA when the attribute does not exist. */
export const XATTR_REPLACE = 2;
/** `flock` operations. */
export const LOCK_SH = 1;
/** `flock`: exclusive lock. */
export const LOCK_EX = 2;
/** `flock`: do not block. */
export const LOCK_NB = 4;
/** `flock`: unlock. */
export const LOCK_UN = 8;
/** `fcntl` commands and lock types. */
export const F_GETLK = 5;
/** `fcntl`: set a lock or fail at once. */
export const F_SETLK = 6;
/** `fcntl`: set a lock, waiting for conflicts. */
export const F_SETLKW = 7;
/** Lock type: read (shared). */
export const F_RDLCK = 0;
/** Lock type: write (exclusive). */
export const F_WRLCK = 1;
/** Lock type: unlock / no conflict. */
export const F_UNLCK = 2;
/** `fallocate` mode: do not change the file size. */
export const FALLOC_FL_KEEP_SIZE = 1;
/** `fallocate` mode: deallocate the range (must be combined with KEEP_SIZE). */
export const FALLOC_FL_PUNCH_HOLE = 2;
/** `fallocate` mode: zero the range. */
export const FALLOC_FL_ZERO_RANGE = 0x10;
/** `lseek` whence values. */
export const SEEK_SET = 0;
/** `lseek`: relative to the current position. */
export const SEEK_CUR = 1;
/** `lseek`: relative to the end of the file. */
export const SEEK_END = 2;
/** `lseek`: next offset holding data. */
export const SEEK_DATA = 3;
/** `lseek`: next offset in a hole (EOF counts as a hole). */
export const SEEK_HOLE = 4;
/** `utimensat` special nanosecond values. */
export const UTIME_NOW = (1 << 30) - 1;
/** `utimensat`: leave this timestamp unchanged. */
export const UTIME_OMIT = (1 << 30) - 2;
/** `*at` flag: do not follow a trailing symlink. */
export const AT_SYMLINK_NOFOLLOW = 0x100;
/** The `dirfd` meaning the current directory. */
export const AT_FDCWD: number = -100;
/** File type: FIFO (the type bits for `mknod`). */
export const S_IFIFO = 0o010000;
/** File type: character device. */
export const S_IFCHR = 0o020000;
/** File type: socket. */
export const S_IFSOCK = 0o140000;
/** File type: regular file. */
export const S_IFREG = 0o100000;
/** `access` modes. */
export const F_OK = 0;
/** `access`: readable. */
export const R_OK = 4;
/** `access`: writable. */
export const W_OK = 2;
/** `access`: executable. */
export const X_OK = 1;

/** glibc's `makedev(major, minor)`. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major), mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) |
    ((mi & ~0xffn) << 12n);
}
