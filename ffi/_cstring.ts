/**
 * C strings and bytes at the FFI edge: the one place that copies bytes out of C memory and the
 * one place that encodes a NUL-terminated string.
 *
 * Names cross as byte strings ({@linkcode Name}: one char per byte, see `core/types.ts`), so any
 * byte sequence the kernel sends comes back unchanged.
 *
 * @module
 */

import { Errno, FsError } from "../core/errno.ts";
import type { LibC } from "../core/libc.ts";
import { bytesToName, type Name, nameFromText } from "../core/types.ts";

/** A fresh copy of `size` bytes at `ptr` (empty when `size` is 0 or `ptr` is null). */
export function copyFromC(ptr: Deno.PointerValue, size: number): Uint8Array {
  const out = new Uint8Array(size);
  if (size > 0 && ptr !== null) Deno.UnsafePointerView.copyInto(ptr, out);
  return out;
}

/** Reads the NUL-terminated C string at `ptr` as a byte-string name ("" for null). */
export function readCString(libc: LibC, ptr: Deno.PointerValue): Name {
  if (ptr === null) return "";
  const len = Number(libc.strlen(ptr));
  if (len === 0) return "";
  return bytesToName(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, len)));
}

/**
 * Writes byte-string `name` NUL-terminated into `buf` at `at` and returns the offset after the
 * NUL.
 *
 * @throws {FsError} ENAMETOOLONG when it does not fit.
 */
export function putCString(name: Name, buf: Uint8Array, at = 0): number {
  if (at + name.length >= buf.length) {
    throw new FsError(Errno.ENAMETOOLONG, `Name too long (${name.length} bytes)`);
  }
  for (let i = 0; i < name.length; i++) buf[at + i] = name.charCodeAt(i);
  buf[at + name.length] = 0;
  return at + name.length + 1;
}

/** NUL-terminated UTF-8 bytes of `text` (a path or an option list), in a fresh buffer. */
export function cString(text: string): Uint8Array {
  const name = nameFromText(text);
  const out = new Uint8Array(name.length + 1);
  putCString(name, out);
  return out;
}

/** The names NUL-terminated one after another (a `listxattr` reply). */
export function cStringList(names: readonly Name[]): Uint8Array {
  let total = 0;
  for (const name of names) total += name.length + 1;
  const out = new Uint8Array(total);
  let at = 0;
  for (const name of names) at = putCString(name, out, at);
  return out;
}
