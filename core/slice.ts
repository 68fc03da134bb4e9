/**
 * Slices: immutable, uniquely numbered runs of bytes, and how a chunk's slice list resolves to
 * the bytes a reader sees.
 *
 * A chunk (64 MiB by default) keeps an ordered list of {@linkcode SliceRecord}s, oldest first;
 * each says "bytes `[pos, pos+len)` of this chunk are bytes `[off, off+len)` of slice `id`". Newer
 * records shadow older ones; slice id 0 means zeros (a punched hole or a truncation). A slice of
 * `size` bytes is stored as blocks of the volume's block size under {@linkcode blockKey}.
 *
 * @module
 */

import type { SliceId } from "./types.ts";

/** One record of a chunk's slice list. */
export interface SliceRecord {
  /** Offset within the chunk. */
  pos: number;
  /** The slice (0 = zeros). */
  id: SliceId;
  /** The whole slice's size in bytes (to find its blocks). */
  size: number;
  /** Offset within the slice. */
  off: number;
  /** Length of the run. */
  len: number;
}

/** Bytes per encoded record. */
export const RECORD_SIZE = 24;

/** Encodes records to append to a chunk value. */
export function encodeRecords(records: readonly SliceRecord[]): Uint8Array {
  const buf = new Uint8Array(records.length * RECORD_SIZE);
  const v = new DataView(buf.buffer);
  records.forEach((r, i) => {
    const o = i * RECORD_SIZE;
    v.setUint32(o, r.pos);
    v.setFloat64(o + 4, r.id);
    v.setUint32(o + 12, r.size);
    v.setUint32(o + 16, r.off);
    v.setUint32(o + 20, r.len);
  });
  return buf;
}

/** Decodes a chunk value. */
export function decodeRecords(buf: Uint8Array | undefined): SliceRecord[] {
  if (!buf) return [];
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: SliceRecord[] = [];
  for (let o = 0; o + RECORD_SIZE <= buf.byteLength; o += RECORD_SIZE) {
    out.push({
      pos: v.getUint32(o),
      id: v.getFloat64(o + 4) as SliceId,
      size: v.getUint32(o + 12),
      off: v.getUint32(o + 16),
      len: v.getUint32(o + 20),
    });
  }
  return out;
}

/** Concatenates two byte arrays. */
export function concatBytes(a: Uint8Array | undefined, b: Uint8Array): Uint8Array {
  if (!a || a.byteLength === 0) return b;
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

/**
 * Resolves a slice list into the visible, non-overlapping segments sorted by `pos` (newest
 * record wins). Gaps between segments read as zeros.
 *
 * @example
 * ```ts
 * import { resolveSegments } from "./slice.ts";
 * import type { SliceId } from "./types.ts";
 * const segs = resolveSegments([
 *   { pos: 0, id: 1 as SliceId, size: 10, off: 0, len: 10 },
 *   { pos: 4, id: 2 as SliceId, size: 2, off: 0, len: 2 },
 * ]);
 * if (segs.length !== 3 || segs[1]!.id !== 2 || segs[2]!.off !== 6) throw new Error("bad");
 * ```
 */
export function resolveSegments(records: readonly SliceRecord[]): SliceRecord[] {
  let segs: SliceRecord[] = [];
  for (const r of records) {
    if (r.len === 0) continue;
    const end = r.pos + r.len;
    const next: SliceRecord[] = [];
    let inserted = false;
    for (const s of segs) {
      const sEnd = s.pos + s.len;
      if (sEnd <= r.pos || s.pos >= end) {
        if (!inserted && s.pos >= end) {
          next.push(r);
          inserted = true;
        }
        next.push(s);
        continue;
      }
      if (s.pos < r.pos) next.push({ ...s, len: r.pos - s.pos });
      if (!inserted) {
        next.push(r);
        inserted = true;
      }
      if (sEnd > end) next.push({ ...s, pos: end, off: s.off + (end - s.pos), len: sEnd - end });
    }
    if (!inserted) next.push(r);
    segs = next;
  }
  return segs;
}

/**
 * The storage key of block `index` (of length `len`) of slice `id`:
 * `chunks/<id / 10^6>/<id / 1000>/<id>_<index>_<len>`. {@linkcode parseBlockKey} reads it back.
 *
 * @example
 * ```ts
 * import { blockKey } from "./slice.ts";
 * import type { SliceId } from "./types.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(blockKey(1_234_567 as SliceId, 2, 4096), "chunks/1/1234/1234567_2_4096");
 * ```
 */
export function blockKey(id: SliceId, index: number, len: number): string {
  return `chunks/${Math.floor(id / 1_000_000)}/${Math.floor(id / 1000)}/${id}_${index}_${len}`;
}

const BLOCK_KEY = /^chunks\/\d+\/\d+\/(\d+)_(\d+)_(\d+)$/;

/**
 * The slice id, block index and block length of a key shaped like those {@linkcode blockKey}
 * makes, or `undefined` for any other key.
 *
 * @example
 * ```ts
 * import { parseBlockKey } from "./slice.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * deepEqual(parseBlockKey("chunks/0/7/7000_1_512"), { id: 7000, index: 1, length: 512 });
 * equal(parseBlockKey("chunks/README"), undefined);
 * ```
 */
export function parseBlockKey(
  key: string,
): { id: SliceId; index: number; length: number } | undefined {
  const m = BLOCK_KEY.exec(key);
  if (m === null) return undefined;
  return { id: Number(m[1]) as SliceId, index: Number(m[2]), length: Number(m[3]) };
}

const BLOB_KEY = /^blobs\/[0-9a-f]{2}\/[0-9a-f]{2}\/([0-9a-f]{64})_\d+_\d+$/;

/**
 * The object key of a dedup blob: its content hash in hex (fanned out by its first two bytes) and
 * the slice id and block index that first stored it, so two racing uploads never share a key.
 *
 * @example
 * ```ts
 * import { blobObjectKey, parseBlobKey } from "./slice.ts";
 * import type { SliceId } from "./types.ts";
 * import { equal } from "node:assert/strict";
 *
 * const hex = "ab".repeat(32);
 * const key = blobObjectKey(hex, 7 as SliceId, 1);
 * equal(key, `blobs/ab/ab/${hex}_7_1`);
 * equal(parseBlobKey(key), hex);
 * ```
 */
export function blobObjectKey(hashHex: string, id: SliceId, index: number): string {
  return `blobs/${hashHex.slice(0, 2)}/${hashHex.slice(2, 4)}/${hashHex}_${id}_${index}`;
}

/** The content hash (hex) of a key {@linkcode blobObjectKey} made, or `undefined` for another key. */
export function parseBlobKey(key: string): string | undefined {
  return BLOB_KEY.exec(key)?.[1];
}

/** The object keys a freed slice leaves in the store: its blocks' and its blobs'. */
export function freedSliceKeys(
  freed: { id: SliceId; size: number; blobs?: readonly string[] },
  blockSize: number,
): string[] {
  const keys = freed.blobs ? [...freed.blobs] : [];
  for (const [i, len] of sliceBlocks(freed.size, blockSize)) keys.push(blockKey(freed.id, i, len));
  return keys;
}

/** The blocks a slice of `size` bytes is stored as: `[index, length]` pairs. */
export function sliceBlocks(size: number, blockSize: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i * blockSize < size; i++) {
    out.push([i, Math.min(blockSize, size - i * blockSize)]);
  }
  return out;
}
