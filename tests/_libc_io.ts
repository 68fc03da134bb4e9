/**
 * File descriptors and I/O through libc: open, close, pread, pwrite, write, their full-length
 * loops, fsync, truncate, lseek, fallocate, copy_file_range.
 *
 * @module
 */

import { check, cstr, libc } from "./_libc_ffi.ts";

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
