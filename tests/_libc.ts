/**
 * Deno FFI bindings to glibc (`libc.so.6`, or `SLAYERFS_LIBC`) for the system calls that Deno's
 * file API lacks, for the mount tests and the POSIX suite.
 *
 * Every wrapper returns the call's result or throws a {@link LibcError} carrying the real errno
 * (`.errno`) and its symbolic name (`.code`, e.g. `"ENOENT"`). Synchronous calls read errno from
 * `__errno_location()` on the same thread right after the call. Calls that may block (`flock`
 * without `LOCK_NB`, `F_SETLKW`) also have `…Async` variants that run on a worker thread, so a
 * test can wait on a lock while it releases the lock from elsewhere.
 *
 * Never call these on a FUSE mount served by this same process: the call would deadlock.
 *
 * Layouts are for x86_64 glibc 2.36 and were checked with `offsetof`. This module only
 * re-exports its parts: the raw symbol table, loading and errors (`_libc_ffi.ts`), constants
 * (`_libc_consts.ts`), and the typed wrappers by area (`_libc_io.ts`, `_libc_names.ts`,
 * `_libc_stat.ts`, `_libc_xattr.ts`, `_libc_locks.ts` with its worker `_libc_worker.ts`).
 *
 * @example
 * ```ts ignore
 * import * as L from "./_libc.ts";
 * L.mkfifo("/tmp/fifo", 0o600);
 * if ((L.lstat("/tmp/fifo").mode & 0o170000) !== L.S_IFIFO) throw new Error("not a FIFO");
 * ```
 *
 * @module
 */

export * from "./_libc_consts.ts";
export { BLOCKING_SYMBOLS, cstr, ERRNO, LIBC_SYMBOLS, LibcError, openLibc } from "./_libc_ffi.ts";
export * from "./_libc_io.ts";
export * from "./_libc_locks.ts";
export * from "./_libc_names.ts";
export * from "./_libc_stat.ts";
export * from "./_libc_xattr.ts";
