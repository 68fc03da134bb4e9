/**
 * Deno FFI bindings to glibc (`libc.so.6`) for the system calls that Deno's file API lacks.
 *
 * Every wrapper returns the call's result or throws a {@link LibcError} carrying the real errno
 * (`.errno`) and its symbolic name (`.code`, e.g. `"ENOENT"`). Synchronous calls read errno from
 * `__errno_location()` on the same thread right after the call. Calls that may block (`flock`
 * without `LOCK_NB`, `F_SETLKW`) also have `…Async` variants that run on a worker thread, so a
 * test can wait on a lock while it releases the lock from elsewhere.
 *
 * Never call these on a FUSE mount served by this same process: the call would deadlock.
 *
 * Layouts are for x86_64 glibc 2.36 and were checked with `offsetof`.
 *
 * @module
 */

/** The symbol table for libc, with the C signature of each function. */
export const LIBC_SYMBOLS = {
  /** int *__errno_location(void) */
  __errno_location: { parameters: [], result: "pointer" },
  /** int open(const char *path, int flags, mode_t mode) */
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  /** int close(int fd) */
  close: { parameters: ["i32"], result: "i32" },
  /** ssize_t pread(int fd, void *buf, size_t count, off_t offset) */
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  /** ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) */
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  /** ssize_t write(int fd, const void *buf, size_t count) */
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** int fsync(int fd) */
  fsync: { parameters: ["i32"], result: "i32" },
  /** int fdatasync(int fd) */
  fdatasync: { parameters: ["i32"], result: "i32" },
  /** int ftruncate(int fd, off_t length) */
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  /** int truncate(const char *path, off_t length) */
  truncate: { parameters: ["buffer", "i64"], result: "i32" },
  /** off_t lseek(int fd, off_t offset, int whence) */
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  /** int renameat2(int olddirfd, const char *old, int newdirfd, const char *new, unsigned flags) */
  renameat2: { parameters: ["i32", "buffer", "i32", "buffer", "u32"], result: "i32" },
  /** int unlink(const char *path) */
  unlink: { parameters: ["buffer"], result: "i32" },
  /** int rmdir(const char *path) */
  rmdir: { parameters: ["buffer"], result: "i32" },
  /** int mkdir(const char *path, mode_t mode) */
  mkdir: { parameters: ["buffer", "u32"], result: "i32" },
  /** int setxattr(const char *path, const char *name, const void *value, size_t size, int flags) */
  setxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  /** ssize_t getxattr(const char *path, const char *name, void *value, size_t size) */
  getxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  /** ssize_t listxattr(const char *path, char *list, size_t size) */
  listxattr: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  /** int removexattr(const char *path, const char *name) */
  removexattr: { parameters: ["buffer", "buffer"], result: "i32" },
  /** int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags) */
  lsetxattr: { parameters: ["buffer", "buffer", "buffer", "usize", "i32"], result: "i32" },
  /** ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size) */
  lgetxattr: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "isize" },
  /** int mknod(const char *path, mode_t mode, dev_t dev) */
  mknod: { parameters: ["buffer", "u32", "u64"], result: "i32" },
  /** int mkfifo(const char *path, mode_t mode) */
  mkfifo: { parameters: ["buffer", "u32"], result: "i32" },
  /** int flock(int fd, int operation) */
  flock: { parameters: ["i32", "i32"], result: "i32" },
  /** int fcntl(int fd, int cmd, struct flock *lock) */
  fcntl: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  /** int fallocate(int fd, int mode, off_t offset, off_t len) */
  fallocate: { parameters: ["i32", "i32", "i64", "i64"], result: "i32" },
  /** ssize_t copy_file_range(int in, off_t *off_in, int out, off_t *off_out, size_t len, unsigned flags) */
  copy_file_range: {
    parameters: ["i32", "buffer", "i32", "buffer", "usize", "u32"],
    result: "isize",
  },
  /** int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags) */
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  /** int access(const char *path, int mode) */
  access: { parameters: ["buffer", "i32"], result: "i32" },
  /** int statfs(const char *path, struct statfs *buf) */
  statfs: { parameters: ["buffer", "buffer"], result: "i32" },
  /** int statvfs(const char *path, struct statvfs *buf) */
  statvfs: { parameters: ["buffer", "buffer"], result: "i32" },
  /** int lstat(const char *path, struct stat *buf) */
  lstat: { parameters: ["buffer", "buffer"], result: "i32" },
  /** int stat(const char *path, struct stat *buf) */
  stat: { parameters: ["buffer", "buffer"], result: "i32" },
  /** int fstat(int fd, struct stat *buf) */
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  /** int link(const char *old, const char *new) */
  link: { parameters: ["buffer", "buffer"], result: "i32" },
  /** int symlink(const char *target, const char *linkpath) */
  symlink: { parameters: ["buffer", "buffer"], result: "i32" },
  /** ssize_t readlink(const char *path, char *buf, size_t size) */
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  /** int chown(const char *path, uid_t owner, gid_t group) */
  chown: { parameters: ["buffer", "u32", "u32"], result: "i32" },
  /** int lchown(const char *path, uid_t owner, gid_t group) */
  lchown: { parameters: ["buffer", "u32", "u32"], result: "i32" },
  /** int chmod(const char *path, mode_t mode) */
  chmod: { parameters: ["buffer", "u32"], result: "i32" },
  /** pid_t getpid(void) */
  getpid: { parameters: [], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The symbols whose calls may block; their `…Async` variants run them on a worker thread. */
export const BLOCKING_SYMBOLS = {
  flock: LIBC_SYMBOLS.flock,
  fcntl: LIBC_SYMBOLS.fcntl,
  __errno_location: LIBC_SYMBOLS.__errno_location,
} as const satisfies Deno.ForeignLibraryInterface;

/** Opens libc, honouring `SLAYERFS_LIBC` as an override of the library path. */
export function openLibc<S extends Deno.ForeignLibraryInterface>(
  symbols: S,
): Deno.DynamicLibrary<S> {
  const path = Deno.env.get("SLAYERFS_LIBC") ?? "libc.so.6";
  try {
    return Deno.dlopen(path, symbols);
  } catch (cause) {
    throw new Error(`Cannot load libc from "${path}"`, { cause });
  }
}

let lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | undefined;
function libc(): Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"] {
  lib ??= openLibc(LIBC_SYMBOLS);
  return lib.symbols;
}

/** Linux errno numbers by name (x86_64), for the errors the tests expect. */
export const ERRNO: Readonly<Record<string, number>> = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  ECONNABORTED: 103,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ESTALE: 116,
  EDQUOT: 122,
};

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(ERRNO).map(([name, no]) => [no, name]),
);

/** An error from a libc call, carrying the errno number and its symbolic name. */
export class LibcError extends Error {
  /** The errno number, e.g. 2. */
  readonly errno: number;
  /** The errno name, e.g. `"ENOENT"` (`"E<number>"` when unknown). */
  readonly code: string;
  /** Builds the error for `call` failing with `errno`. */
  constructor(call: string, errno: number, detail = "") {
    const code = ERRNO_NAMES.get(errno) ?? `E${errno}`;
    super(`${call}${detail ? ` ${detail}` : ""} failed: ${code} (errno ${errno})`);
    this.name = "LibcError";
    this.errno = errno;
    this.code = code;
  }
}

function errno(): number {
  const p = libc().__errno_location();
  if (p === null) return 0;
  return new Deno.UnsafePointerView(p).getInt32();
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A NUL-terminated copy of a string, for passing as `const char *`. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(enc.encode(s).length + 1);
  enc.encodeInto(s, b);
  return b;
}

function check<T extends number | bigint>(call: string, r: T, detail = ""): T {
  if (Number(r) < 0) throw new LibcError(call, errno(), detail);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Constants

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
export const AT_FDCWD = -100;
/** File type bits for `mknod`. */
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

// ---------------------------------------------------------------------------------------------
// File descriptors and I/O

/** `open(2)`; returns the fd. */
export function open(path: string, flags: number, mode = 0o644): number {
  return check("open", libc().open(cstr(path), flags, mode), `"${path}"`);
}

/** `close(2)`. */
export function close(fd: number): void {
  check("close", libc().close(fd));
}

/** `pread(2)` into `buf` at `offset`; returns the bytes read. */
export function pread(fd: number, buf: Uint8Array<ArrayBuffer>, offset: number): number {
  return Number(check("pread", libc().pread(fd, buf, BigInt(buf.byteLength), BigInt(offset))));
}

/** `pwrite(2)` of `buf` at `offset`; returns the bytes written. */
export function pwrite(fd: number, buf: Uint8Array<ArrayBuffer>, offset: number): number {
  return Number(check("pwrite", libc().pwrite(fd, buf, BigInt(buf.byteLength), BigInt(offset))));
}

/** `write(2)` at the current position (or at EOF with O_APPEND); returns the bytes written. */
export function write(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  return Number(check("write", libc().write(fd, buf, BigInt(buf.byteLength))));
}

/** Reads exactly `length` bytes at `offset` (fewer only at EOF). */
export function preadFull(fd: number, length: number, offset: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = pread(fd, out.subarray(done), offset + done);
    if (n === 0) break;
    done += n;
  }
  return out.slice(0, done);
}

/** Writes all of `buf` at `offset`. */
export function pwriteFull(fd: number, buf: Uint8Array<ArrayBuffer>, offset: number): void {
  let done = 0;
  while (done < buf.byteLength) done += pwrite(fd, buf.subarray(done), offset + done);
}

/** `fsync(2)`. */
export function fsync(fd: number): void {
  check("fsync", libc().fsync(fd));
}

/** `fdatasync(2)`. */
export function fdatasync(fd: number): void {
  check("fdatasync", libc().fdatasync(fd));
}

/** `ftruncate(2)`. */
export function ftruncate(fd: number, length: number): void {
  check("ftruncate", libc().ftruncate(fd, BigInt(length)));
}

/** `truncate(2)`. */
export function truncate(path: string, length: number): void {
  check("truncate", libc().truncate(cstr(path), BigInt(length)), `"${path}"`);
}

/** `lseek(2)`; returns the new offset. */
export function lseek(fd: number, offset: number, whence: number): number {
  return Number(check("lseek", libc().lseek(fd, BigInt(offset), whence)));
}

/** `fallocate(2)`. */
export function fallocate(fd: number, mode: number, offset: number, length: number): void {
  check("fallocate", libc().fallocate(fd, mode, BigInt(offset), BigInt(length)));
}

/**
 * `copy_file_range(2)`; `offIn`/`offOut` of `null` use (and advance) the file positions.
 * Returns the bytes copied, which may be fewer than `length`.
 */
export function copyFileRange(
  fdIn: number,
  offIn: number | null,
  fdOut: number,
  offOut: number | null,
  length: number,
): number {
  const a = offIn === null ? null : new BigInt64Array([BigInt(offIn)]);
  const b = offOut === null ? null : new BigInt64Array([BigInt(offOut)]);
  return Number(check(
    "copy_file_range",
    libc().copy_file_range(fdIn, a, fdOut, b, BigInt(length), 0),
  ));
}

// ---------------------------------------------------------------------------------------------
// Namespace operations

/** `renameat2(2)` relative to the current directory. */
export function renameat2(from: string, to: string, flags = 0): void {
  check(
    "renameat2",
    libc().renameat2(AT_FDCWD, cstr(from), AT_FDCWD, cstr(to), flags),
    `"${from}" -> "${to}"`,
  );
}

/** `rename(2)`. */
export function rename(from: string, to: string): void {
  renameat2(from, to, 0);
}

/** `unlink(2)`. */
export function unlink(path: string): void {
  check("unlink", libc().unlink(cstr(path)), `"${path}"`);
}

/** `rmdir(2)`. */
export function rmdir(path: string): void {
  check("rmdir", libc().rmdir(cstr(path)), `"${path}"`);
}

/** `mkdir(2)`. */
export function mkdir(path: string, mode = 0o755): void {
  check("mkdir", libc().mkdir(cstr(path), mode), `"${path}"`);
}

/** `mknod(2)`; `mode` includes the file type bits. */
export function mknod(path: string, mode: number, dev: bigint = 0n): void {
  check("mknod", libc().mknod(cstr(path), mode, dev), `"${path}"`);
}

/** `mkfifo(3)`. */
export function mkfifo(path: string, mode = 0o644): void {
  check("mkfifo", libc().mkfifo(cstr(path), mode), `"${path}"`);
}

/** `link(2)`. */
export function link(from: string, to: string): void {
  check("link", libc().link(cstr(from), cstr(to)), `"${from}" -> "${to}"`);
}

/** `symlink(2)`: creates `path` pointing at `target`. */
export function symlink(target: string, path: string): void {
  check("symlink", libc().symlink(cstr(target), cstr(path)), `"${path}"`);
}

/** `readlink(2)`. */
export function readlink(path: string): string {
  const buf = new Uint8Array(8192);
  const n = Number(check("readlink", libc().readlink(cstr(path), buf, BigInt(buf.length))));
  return dec.decode(buf.subarray(0, n));
}

/** `chown(2)`. */
export function chown(path: string, uid: number, gid: number): void {
  check("chown", libc().chown(cstr(path), uid >>> 0, gid >>> 0), `"${path}"`);
}

/** `lchown(2)`. */
export function lchown(path: string, uid: number, gid: number): void {
  check("lchown", libc().lchown(cstr(path), uid >>> 0, gid >>> 0), `"${path}"`);
}

/** `chmod(2)`. */
export function chmod(path: string, mode: number): void {
  check("chmod", libc().chmod(cstr(path), mode), `"${path}"`);
}

/** `access(2)`. */
export function access(path: string, mode: number): void {
  check("access", libc().access(cstr(path), mode), `"${path}"`);
}

/** A timestamp for {@link utimensat}: seconds and nanoseconds, or UTIME_NOW / UTIME_OMIT. */
export type Timespec = { sec: number; nsec: number } | "now" | "omit";

/** `utimensat(2)` relative to the current directory. */
export function utimensat(path: string, atime: Timespec, mtime: Timespec, flags = 0): void {
  const t = new BigInt64Array(4);
  const put = (i: number, v: Timespec) => {
    if (v === "now") t[i * 2 + 1] = BigInt(UTIME_NOW);
    else if (v === "omit") t[i * 2 + 1] = BigInt(UTIME_OMIT);
    else {
      t[i * 2] = BigInt(v.sec);
      t[i * 2 + 1] = BigInt(v.nsec);
    }
  };
  put(0, atime);
  put(1, mtime);
  check("utimensat", libc().utimensat(AT_FDCWD, cstr(path), t, flags), `"${path}"`);
}

// ---------------------------------------------------------------------------------------------
// stat / statfs

/** The fields of `struct stat`, with nanosecond timestamps as bigint. */
export interface Stat {
  dev: bigint;
  ino: bigint;
  nlink: number;
  mode: number;
  uid: number;
  gid: number;
  rdev: bigint;
  size: number;
  blksize: number;
  blocks: number;
  /** Nanoseconds since the epoch. */
  atimeNs: bigint;
  /** Nanoseconds since the epoch. */
  mtimeNs: bigint;
  /** Nanoseconds since the epoch. */
  ctimeNs: bigint;
}

function parseStat(b: Uint8Array<ArrayBuffer>): Stat {
  const v = new DataView(b.buffer);
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
  const b = new Uint8Array(144);
  check("stat", libc().stat(cstr(path), b), `"${path}"`);
  return parseStat(b);
}

/** `lstat(2)` (does not follow a trailing symlink). */
export function lstat(path: string): Stat {
  const b = new Uint8Array(144);
  check("lstat", libc().lstat(cstr(path), b), `"${path}"`);
  return parseStat(b);
}

/** `fstat(2)`. */
export function fstat(fd: number): Stat {
  const b = new Uint8Array(144);
  check("fstat", libc().fstat(fd, b));
  return parseStat(b);
}

/** The fields of `struct statvfs`. */
export interface Statvfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: bigint;
  flag: number;
  namemax: number;
}

/** `statvfs(3)`. */
export function statvfs(path: string): Statvfs {
  const b = new Uint8Array(112);
  check("statvfs", libc().statvfs(cstr(path), b), `"${path}"`);
  const v = new DataView(b.buffer);
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
  type: bigint;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  namelen: number;
  frsize: number;
}

/** `statfs(2)`. */
export function statfs(path: string): Statfs {
  const b = new Uint8Array(120);
  check("statfs", libc().statfs(cstr(path), b), `"${path}"`);
  const v = new DataView(b.buffer);
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

// ---------------------------------------------------------------------------------------------
// Extended attributes

/** `setxattr(2)` (or `lsetxattr` with `nofollow`). */
export function setxattr(
  path: string,
  name: string,
  value: Uint8Array<ArrayBuffer>,
  flags = 0,
  nofollow = false,
): void {
  const f = nofollow ? libc().lsetxattr : libc().setxattr;
  check("setxattr", f(cstr(path), cstr(name), value, BigInt(value.byteLength), flags), name);
}

/** `getxattr(2)` (or `lgetxattr` with `nofollow`); returns the value. */
export function getxattr(path: string, name: string, nofollow = false): Uint8Array<ArrayBuffer> {
  const f = nofollow ? libc().lgetxattr : libc().getxattr;
  const size = Number(check("getxattr", f(cstr(path), cstr(name), null, 0n), name));
  const buf = new Uint8Array(size);
  const n = Number(check("getxattr", f(cstr(path), cstr(name), buf, BigInt(size)), name));
  return buf.slice(0, n);
}

/** `listxattr(2)`; returns the attribute names. */
export function listxattr(path: string): string[] {
  const size = Number(check("listxattr", libc().listxattr(cstr(path), null, 0n)));
  if (size === 0) return [];
  const buf = new Uint8Array(size);
  const n = Number(check("listxattr", libc().listxattr(cstr(path), buf, BigInt(size))));
  return dec.decode(buf.subarray(0, n)).split("\0").filter((s) => s !== "");
}

/** `removexattr(2)`. */
export function removexattr(path: string, name: string): void {
  check("removexattr", libc().removexattr(cstr(path), cstr(name)), name);
}

// ---------------------------------------------------------------------------------------------
// Locks

/** `flock(2)`; use `LOCK_NB` here, or {@link flockAsync} for a lock that may wait. */
export function flock(fd: number, op: number): void {
  check("flock", libc().flock(fd, op));
}

/** A POSIX record lock (`struct flock`). `len` 0 means "to EOF". */
export interface RecordLock {
  type: number;
  whence?: number;
  start: number;
  len: number;
  pid?: number;
}

/** Encodes a `struct flock` (32 bytes: type@0 i16, whence@2 i16, start@8, len@16, pid@24). */
export function encodeFlock(l: RecordLock): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setInt16(0, l.type, true);
  v.setInt16(2, l.whence ?? SEEK_SET, true);
  v.setBigInt64(8, BigInt(l.start), true);
  v.setBigInt64(16, BigInt(l.len), true);
  v.setInt32(24, l.pid ?? 0, true);
  return b;
}

/** Decodes a `struct flock`. */
export function decodeFlock(b: Uint8Array<ArrayBuffer>): Required<RecordLock> {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    type: v.getInt16(0, true),
    whence: v.getInt16(2, true),
    start: Number(v.getBigInt64(8, true)),
    len: Number(v.getBigInt64(16, true)),
    pid: v.getInt32(24, true),
  };
}

/** `fcntl(fd, F_GETLK)`: the first lock that would conflict with `l`, or type F_UNLCK. */
export function getlk(fd: number, l: RecordLock): Required<RecordLock> {
  const b = encodeFlock(l);
  check("fcntl(F_GETLK)", libc().fcntl(fd, F_GETLK, b));
  return decodeFlock(b);
}

/** `fcntl(fd, F_SETLK)`: sets (or with F_UNLCK clears) a lock, failing with EAGAIN on conflict. */
export function setlk(fd: number, l: RecordLock): void {
  check("fcntl(F_SETLK)", libc().fcntl(fd, F_SETLK, encodeFlock(l)));
}

/** `fcntl(fd, F_SETLKW)` run on a worker thread: resolves once the lock is granted. */
export function setlkwAsync(fd: number, l: RecordLock): Promise<void> {
  return runBlocking("fcntl(F_SETLKW)", { fn: "fcntl", args: [fd, F_SETLKW, encodeFlock(l)] });
}

/** `flock(2)` run on a worker thread: resolves once the lock is granted. */
export function flockAsync(fd: number, op: number): Promise<void> {
  return runBlocking("flock", { fn: "flock", args: [fd, op] });
}

/** getpid(2). */
export function getpid(): number {
  return libc().getpid();
}

async function runBlocking(call: string, msg: { fn: string; args: unknown[] }): Promise<void> {
  const worker = new Worker(new URL("./_libc_worker.ts", import.meta.url), { type: "module" });
  try {
    const reply = await new Promise<{ ret: number; errno: number }>((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`${call} worker failed: ${e.message}`));
      };
      worker.postMessage(msg);
    });
    if (reply.ret < 0) throw new LibcError(call, reply.errno);
  } finally {
    worker.terminate();
  }
}
