/**
 * Binary encodings of metadata keys and values (private to the core).
 *
 * Keys are byte strings (one char per byte): `A<ino:8>I` attr, `A<ino:8>D<name>` entry,
 * `A<ino:8>C<chunk:4>` slice list, `A<ino:8>S` symlink target, `A<ino:8>X<name>` xattr,
 * `K<slice:8>` slice info, `G<slice:8>` slice awaiting block deletion, `O<ino:8>` unlinked inode
 * still open, `F` volume format, `N<name>` counters. Integers are big-endian so keys sort by number.
 *
 * @module
 */

import type { Attr, Ino, SliceId } from "./types.ts";
import { bytesToByteString, decodeUtf8, encodeUtf8 } from "./_bytes.ts";

/** Encodes a non-negative integer below 2^53 as 8 big-endian byte chars. */
export function u64(n: number): string {
  const hi = Math.floor(n / 0x100000000);
  const lo = n >>> 0;
  return String.fromCharCode(
    (hi >>> 24) & 255,
    (hi >>> 16) & 255,
    (hi >>> 8) & 255,
    hi & 255,
    (lo >>> 24) & 255,
    (lo >>> 16) & 255,
    (lo >>> 8) & 255,
    lo & 255,
  );
}

/** Decodes 8 big-endian byte chars at `at`. */
export function readU64(s: string, at: number): number {
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 4; i++) hi = hi * 256 + s.charCodeAt(at + i);
  for (let i = 4; i < 8; i++) lo = lo * 256 + s.charCodeAt(at + i);
  return hi * 0x100000000 + lo;
}

/** Encodes a u32 as 4 big-endian byte chars. */
export function u32(n: number): string {
  return String.fromCharCode((n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

/** Decodes 4 big-endian byte chars at `at`. */
export function readU32(s: string, at: number): number {
  return ((s.charCodeAt(at) << 24) | (s.charCodeAt(at + 1) << 16) |
    (s.charCodeAt(at + 2) << 8) | s.charCodeAt(at + 3)) >>> 0;
}

export const keyFormat = "F";
export const keyInodeCounter = "Ninode";
export const keySliceCounter = "Nslice";
export const keyUsedSpace = "Nspace";
export const keyUsedInodes = "Ninodes";

export const inodePrefix = (ino: Ino): string => "A" + u64(ino);
export const attrKey = (ino: Ino): string => "A" + u64(ino) + "I";
export const entryPrefix = (ino: Ino): string => "A" + u64(ino) + "D";
export const entryKey = (parent: Ino, name: string): string => "A" + u64(parent) + "D" + name;
export const chunkPrefix = (ino: Ino): string => "A" + u64(ino) + "C";
export const chunkKey = (ino: Ino, idx: number): string => "A" + u64(ino) + "C" + u32(idx);
export const symlinkKey = (ino: Ino): string => "A" + u64(ino) + "S";
export const xattrPrefix = (ino: Ino): string => "A" + u64(ino) + "X";
export const xattrKey = (ino: Ino, name: string): string => "A" + u64(ino) + "X" + name;
export const sliceKey = (id: SliceId): string => "K" + u64(id);
export const garbagePrefix = "G";
export const garbageKey = (id: SliceId): string => "G" + u64(id);
export const blobKey = (hash: Uint8Array): string => "B" + bytesToByteString(hash);
export const inlinePrefix = (id: SliceId): string => "I" + u64(id);
export const inlineKey = (id: SliceId, index: number): string => "I" + u64(id) + u32(index);
export const sustainedPrefix = "O";
export const sustainedKey = (ino: Ino): string => "O" + u64(ino);

const ATTR_SIZE = 84;

/** Encodes an inode's attributes (everything but `ino`). */
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
  return buf;
}

/** Decodes attributes written by {@linkcode encodeAttr}. */
export function decodeAttr(ino: Ino, buf: Uint8Array): Attr {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
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
