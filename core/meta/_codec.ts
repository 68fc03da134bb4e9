/**
 * Binary encodings of metadata values (private to the metadata). Which key holds which value is
 * the table of `keys.ts`.
 *
 * @module
 */

import { concatBytes } from "../slice.ts";
import type { Attr, Ino } from "../types.ts";
import { decodeUtf8, encodeUtf8 } from "../_bytes.ts";

const ATTR_SIZE = 84;

/** Encodes an inode's attributes (everything but `ino`; `allocated`, if counted, at byte 72). */
export function encodeAttr(a: Attr): Uint8Array {
  const buf = new Uint8Array(ATTR_SIZE);
  const v = new DataView(buf.buffer);
  v.setUint32(0, a.mode);
  v.setUint32(4, a.uid);
  v.setUint32(8, a.gid);
  v.setUint32(12, a.rdev);
  v.setUint32(16, a.nlink);
  v.setFloat64(20, a.size);
  v.setFloat64(28, a.atime.sec);
  v.setUint32(36, a.atime.nsec);
  v.setFloat64(40, a.mtime.sec);
  v.setUint32(48, a.mtime.nsec);
  v.setFloat64(52, a.ctime.sec);
  v.setUint32(60, a.ctime.nsec);
  v.setFloat64(64, a.parent);
  if (a.allocated !== undefined) {
    v.setFloat64(72, a.allocated);
    v.setUint32(80, 1); // counted (older versions left these bytes 0)
  }
  return buf;
}

/** Decodes attributes written by {@linkcode encodeAttr}. */
export function decodeAttr(ino: Ino, buf: Uint8Array): Attr {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const a: Attr = {
    ino,
    mode: v.getUint32(0),
    uid: v.getUint32(4),
    gid: v.getUint32(8),
    rdev: v.getUint32(12),
    nlink: v.getUint32(16),
    size: v.getFloat64(20),
    atime: { sec: v.getFloat64(28), nsec: v.getUint32(36) },
    mtime: { sec: v.getFloat64(40), nsec: v.getUint32(48) },
    ctime: { sec: v.getFloat64(52), nsec: v.getUint32(60) },
    parent: v.getFloat64(64) as Ino,
  };
  if (v.getUint32(80) === 1) a.allocated = v.getFloat64(72);
  return a;
}

/** Encodes a directory entry value: type (mode >> 12) and inode. */
export function encodeEntry(type: number, ino: Ino): Uint8Array {
  const buf = new Uint8Array(9);
  buf[0] = type >>> 12;
  new DataView(buf.buffer).setFloat64(1, ino);
  return buf;
}

/** Decodes an entry value into `{ type, ino }` (type as `S_IF*` bits). */
export function decodeEntry(buf: Uint8Array): { type: number; ino: Ino } {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return { type: (buf[0] ?? 0) << 12, ino: v.getFloat64(1) as Ino };
}

/** Encodes a number counter. */
export function encodeNum(n: number): Uint8Array {
  const buf = new Uint8Array(8);
  new DataView(buf.buffer).setFloat64(0, n);
  return buf;
}

/** Decodes a number counter (0 when absent). */
export function decodeNum(buf: Uint8Array | undefined): number {
  if (!buf || buf.byteLength < 8) return 0;
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getFloat64(0);
}

/** JSON → bytes. */
export function encodeJson(value: unknown): Uint8Array {
  return encodeUtf8(JSON.stringify(value));
}

/** Bytes → JSON. */
export function decodeJson<T>(buf: Uint8Array): T {
  return JSON.parse(decodeUtf8(buf)) as T;
}

/** A slice's head: its reference count and size in bytes (block records follow it). */
export function encodeSliceInfo(refs: number, size: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, refs);
  v.setUint32(4, size);
  return b;
}

/** Decodes the head written by {@linkcode encodeSliceInfo}. */
export function decodeSliceInfo(b: Uint8Array): { refs: number; size: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { refs: v.getUint32(0), size: v.getUint32(4) };
}

/** Bytes of the head {@linkcode encodeSliceInfo} writes (block records follow). */
export const SLICE_INFO_SIZE = 8;

/** The stored blob of a dedup block: its reference count and object key. */
export function encodeBlob(refs: number, key: string): Uint8Array {
  const k = encodeUtf8(key);
  const b = new Uint8Array(4 + k.length);
  new DataView(b.buffer).setUint32(0, refs);
  b.set(k, 4);
  return b;
}

/** Decodes a blob written by {@linkcode encodeBlob}. */
export function decodeBlob(b: Uint8Array): { refs: number; key: string } {
  return {
    refs: new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0),
    key: decodeUtf8(b.subarray(4)),
  };
}

/** A garbage entry: the slice size and the blob keys to delete with it. */
export function encodeGarbage(size: number, blobs: readonly string[]): Uint8Array {
  const head = encodeSliceInfo(0, size);
  return blobs.length ? concatBytes(head, encodeJson(blobs)) : head;
}

/** Decodes a garbage entry written by {@linkcode encodeGarbage}. */
export function decodeGarbage(v: Uint8Array): { size: number; blobs: string[] } {
  const size = decodeSliceInfo(v).size;
  const blobs = v.byteLength > SLICE_INFO_SIZE
    ? decodeJson<string[]>(v.subarray(SLICE_INFO_SIZE))
    : [];
  return { size, blobs };
}
