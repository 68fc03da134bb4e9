/**
 * The C library through Deno FFI, opened once per process for every module that needs it (the
 * FUSE session's memory and pipes, the disk cache's reads and `statvfs`, the daemon's malloc
 * tuning). `SLAYERFS_LIBC` names another library file than `libc.so.6`.
 *
 * Symbols that must not block the JS thread are declared `nonblocking` (they return a promise and
 * run on a Deno worker thread); a few are declared twice, once each way, under another key
 * (`openAsync`, `preadAsync`): FFI binds the same C function both ways.
 *
 * @example
 * ```ts
 * import { loadLibc } from "./libc.ts";
 * import { ok } from "node:assert/strict";
 *
 * const libc = loadLibc();
 * const p = libc.calloc(1n, 16n);
 * ok(p !== null);
 * libc.free(p);
 * ```
 *
 * @module
 */

/** Every libc function SlayerFS calls, with its C signature. */
export const LIBC_SYMBOLS = {
  /** void *malloc(size_t size); */
  malloc: { parameters: ["usize"], result: "pointer" },
  /** void *calloc(size_t nmemb, size_t size); */
  calloc: { parameters: ["usize", "usize"], result: "pointer" },
  /** void free(void *ptr); */
  free: { parameters: ["pointer"], result: "void" },
  /** size_t strlen(const char *s); */
  strlen: { parameters: ["pointer"], result: "usize" },
  /** int fcntl(int fd, int cmd, int arg); — variadic in C, an int third argument on x86_64 */
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** int pipe2(int pipefd[2], int flags); */
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  /** ssize_t write(int fd, const void *buf, size_t count); */
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /**
   * ssize_t writev(int fd, const struct iovec *iov, int iovcnt); — off the JS thread (a
   * notification written to /dev/fuse may wait in the kernel for a request the JS thread answers)
   */
  writevAsync: {
    name: "writev",
    parameters: ["i32", "buffer", "i32"],
    result: "isize",
    nonblocking: true,
  },
  /** ssize_t read(int fd, void *buf, size_t count); */
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /**
   * int close(int fd); — on the calling thread: quick for the descriptors we close, and a number
   * must be free before it can be handed out again
   */
  close: { parameters: ["i32"], result: "i32" },
  /** int poll(struct pollfd *fds, nfds_t nfds, int timeout); — off the JS thread */
  poll: { parameters: ["pointer", "u64", "i32"], result: "i32", nonblocking: true },
  /** int open(const char *path, int flags, mode_t mode); — off the JS thread */
  openAsync: {
    name: "open",
    parameters: ["buffer", "i32", "u32"],
    result: "i32",
    nonblocking: true,
  },
  /** ssize_t pread(int fd, void *buf, size_t count, off_t offset); — off the JS thread */
  preadAsync: {
    name: "pread",
    parameters: ["i32", "buffer", "usize", "i64"],
    result: "isize",
    nonblocking: true,
  },
  /**
   * ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags); — on
   * the calling thread, so only with RWF_NOWAIT (never blocks)
   */
  preadv2: { parameters: ["i32", "buffer", "i32", "i64", "i32"], result: "isize" },
  /**
   * ssize_t pread(int fd, void *buf, size_t count, off_t offset); — on the calling thread: it
   * waits for the disk (see `core/_io_gate.ts` for when that is allowed)
   */
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  /** int open(const char *path, int flags, mode_t mode); — on the calling thread (as `pread`) */
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  /** int statvfs(const char *path, struct statvfs *buf); — off the JS thread */
  statvfs: { parameters: ["buffer", "buffer"], result: "i32", nonblocking: true },
  /** int mallopt(int param, int value); */
  mallopt: { parameters: ["i32", "i32"], result: "i32", optional: true },
  /** int malloc_trim(size_t pad); — off the JS thread (it walks every arena: milliseconds) */
  malloc_trim: { parameters: ["usize"], result: "i32", optional: true, nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded libc symbols. */
export type LibC = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

/** The library file opened unless `SLAYERFS_LIBC` names another one. */
export const DEFAULT_LIBC = "libc.so.6";

let lib: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | undefined;

/**
 * The file to load a native library from: environment variable `env` when set and not empty
 * (`SLAYERFS_LIBC`, `SLAYERFS_LIBFUSE`), else `fallback` (also without `--allow-env`).
 *
 * @example
 * ```ts
 * import { libraryPath } from "./libc.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(libraryPath("SLAYERFS_NO_SUCH_VARIABLE", "libz.so.1"), "libz.so.1");
 * ```
 */
export function libraryPath(env: string, fallback: string): string {
  try {
    return Deno.env.get(env) || fallback;
  } catch {
    return fallback; // no --allow-env
  }
}

/**
 * Opens the C library once per process (`SLAYERFS_LIBC`, else {@linkcode DEFAULT_LIBC}) and
 * returns its symbols.
 *
 * @throws {Error} with the loader's error as `cause` when it cannot be loaded (no FFI permission,
 * not glibc).
 */
export function loadLibc(): LibC {
  if (lib) return lib.symbols;
  const path = libraryPath("SLAYERFS_LIBC", DEFAULT_LIBC);
  try {
    lib = Deno.dlopen(path, LIBC_SYMBOLS);
  } catch (cause) {
    throw new Error(`Cannot load the C library "${path}"`, { cause });
  }
  return lib.symbols;
}

/** {@linkcode loadLibc}, or `null` when the C library cannot be loaded (callers fall back). */
export function tryLoadLibc(): LibC | null {
  try {
    return loadLibc();
  } catch {
    return null;
  }
}
