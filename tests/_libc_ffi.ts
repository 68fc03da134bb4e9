/**
 * The raw FFI layer of the test libc bindings: the symbol table (system calls that Deno's file
 * API lacks, several of them test-only: `renameat2`, `flock`, `fcntl` locks, `mknod`), loading
 * the library (`SLAYERFS_LIBC` overrides {@linkcode DEFAULT_LIBC}, as in `core/libc.ts`), and
 * turning a failed call into a {@link LibcError} with the real errno.
 *
 * It keeps its own symbol table apart from `core/libc.ts` (which holds only what the daemon
 * calls) and opens the library itself, since its worker opens the blocking symbols again.
 *
 * @module
 */

import { DEFAULT_LIBC, libraryPath } from "../core/libc.ts";
import { Errno } from "../core/errno.ts";

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
  const path = libraryPath("SLAYERFS_LIBC", DEFAULT_LIBC);
  try {
    return Deno.dlopen(path, symbols);
  } catch (cause) {
    throw new Error(`Cannot load libc from "${path}"`, { cause });
  }
}

let lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | undefined;

/** The libc symbols of this thread, opened on first use. */
export function libc(): Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"] {
  lib ??= openLibc(LIBC_SYMBOLS);
  return lib.symbols;
}

/**
 * Linux errno numbers by name (x86_64), for the errors the tests expect: the core's table, a few
 * more, and glibc's name `EOPNOTSUPP` for 95 (which the core calls `ENOTSUP`).
 */
export const ERRNO: Readonly<Record<string, number>> = {
  ...Errno,
  ESRCH: 3,
  EOPNOTSUPP: 95,
  ECONNABORTED: 103,
  ESTALE: 116,
  EDQUOT: 122,
};

// Later names win: 95 is EOPNOTSUPP.
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

/** The calling thread's errno, read through `lib`'s `__errno_location` right after a call. */
export function errnoOf(lib: { __errno_location(): Deno.PointerValue }): number {
  const p = lib.__errno_location();
  if (p === null) return 0;
  return new Deno.UnsafePointerView(p).getInt32();
}

const enc = new TextEncoder();

/** A NUL-terminated copy of a string, for passing as `const char *`. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(enc.encode(s).length + 1);
  enc.encodeInto(s, b);
  return b;
}

/** Returns `r`, or throws a {@link LibcError} with this thread's errno when `r` is negative. */
export function check<T extends number | bigint>(call: string, r: T, detail = ""): T {
  if (Number(r) < 0) throw new LibcError(call, errnoOf(libc()), detail);
  return r;
}
