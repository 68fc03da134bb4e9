/**
 * Extended attributes through libc: setxattr, getxattr, listxattr, removexattr.
 *
 * @module
 */

import { check, cstr, libc } from "./_libc_ffi.ts";

const dec = new TextDecoder();

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
  return sized("getxattr", name, (buf, size) => f(cstr(path), cstr(name), buf, size));
}

/** `listxattr(2)`; returns the attribute names. */
export function listxattr(path: string): string[] {
  const list = sized("listxattr", "", (buf, size) => libc().listxattr(cstr(path), buf, size));
  return dec.decode(list).split("\0").filter((s) => s !== "");
}

/** Calls `f` for the size, then with a buffer of that size; returns the bytes it filled. */
function sized(
  call: string,
  detail: string,
  f: (buf: Uint8Array<ArrayBuffer> | null, size: bigint) => number | bigint,
): Uint8Array<ArrayBuffer> {
  const size = Number(check(call, f(null, 0n), detail));
  if (size === 0) return new Uint8Array(0);
  const buf = new Uint8Array(size);
  const n = Number(check(call, f(buf, BigInt(size)), detail));
  return buf.slice(0, n);
}

/** `removexattr(2)`. */
export function removexattr(path: string, name: string): void {
  check("removexattr", libc().removexattr(cstr(path), cstr(name)), name);
}
