/**
 * The segmented block format (`core/_block_segments.ts`) encoded and decoded in one pass over
 * Wasm memory: a block crosses into Wasm memory once and its result comes out once, where hashing
 * and compressing each 64 KiB segment through {@linkcode xxh3_64} and
 * {@linkcode compressBlock} copied every byte in twice and the result out twice.
 *
 * @module
 */

import { align16, codec } from "./_engine.ts";

/** Bytes per segment (the last segment of a block may be shorter). */
export const SEGMENT_SIZE = 1 << 16;

/** Bytes per segment in a table: a u16 stored length (0: stored raw) and the u64 XXH3-64. */
export const SEGMENT_ENTRY_SIZE = 10;

/** Bytes of the sample that decides whether a large block is worth compressing. */
export const SAMPLE_SIZE = 64 * 1024;

/**
 * Whether LZ4 output of `n` bytes (0: it did not shrink) from a {@linkcode SAMPLE_SIZE} sample
 * says the block is worth compressing: smaller than 90% of the sample.
 */
export function sampleShrinks(n: number): boolean {
  return n > 0 && n < SAMPLE_SIZE * 0.9;
}

/** A block encoded segment by segment ({@linkcode encodeSegmented}). */
export interface SegmentEncoding {
  /** The stored segments back to back; the input itself (not copied) when none is compressed. */
  data: Uint8Array;
  /** Per segment: u16 stored length (0: raw) and u64 XXH3-64 of its raw bytes, little-endian. */
  table: Uint8Array;
  /** XXH3-64 of the whole input. */
  checksum: bigint;
  /** Whether any segment is compressed. */
  compressed: boolean;
}

/**
 * Encodes `raw` in {@linkcode SEGMENT_SIZE} segments: the XXH3-64 of each and of the whole block,
 * and with `compress` each segment that LZ4 makes smaller stored compressed. With `sample` too, a
 * block of at least 4 samples is compressed only if the {@linkcode SAMPLE_SIZE} bytes in its middle
 * shrink ({@linkcode sampleShrinks}), so incompressible data costs one sample's compression.
 *
 * @example
 * ```ts
 * import { encodeSegmented, xxh3_64 } from "./mod.ts";
 * import { equal } from "node:assert/strict";
 *
 * const block = new Uint8Array(100_000).fill(7);
 * const enc = encodeSegmented(block, true);
 * equal(enc.compressed, true);
 * equal(enc.table.length, 2 * 10);
 * equal(enc.checksum, xxh3_64(block));
 * ```
 */
export function encodeSegmented(
  raw: Uint8Array,
  compress: boolean,
  sample = false,
): SegmentEncoding {
  const len = raw.byteLength;
  if (len >= 2 ** 31) throw new RangeError(`A segmented block is under 2 GiB, got ${len} bytes`);
  const n = Math.ceil(len / SEGMENT_SIZE);
  const c = codec();
  const s = c.input(raw, 0);
  const dst = align16(s + len + 16);
  const table = align16(dst + len + 32);
  c.reserve(table + n * SEGMENT_ENTRY_SIZE + 8);
  if (compress && sample && len >= 4 * SAMPLE_SIZE) {
    const at = Math.floor((len - SAMPLE_SIZE) / 2);
    compress = sampleShrinks(c.ex.lz4Compress(s + at, SAMPLE_SIZE, dst, SAMPLE_SIZE - 1) >>> 0);
  }
  const stored = c.ex.segEncode(s, len, dst, table, compress ? 1 : 0) >>> 0;
  const mem = c.u8;
  const tableEnd = table + n * SEGMENT_ENTRY_SIZE;
  const checksum = new DataView(mem.buffer).getBigUint64(tableEnd, true);
  return {
    data: stored === len ? raw : mem.slice(dst, dst + stored),
    table: mem.slice(table, tableEnd),
    checksum,
    compressed: stored !== len,
  };
}

/** Why {@linkcode decodeSegmented} failed. */
export type SegmentFailure = "short" | "corrupt" | "checksum" | "long";

const FAILURES: readonly SegmentFailure[] = ["short", "corrupt", "checksum", "long"];

/** Thrown when stored segments are cut off, corrupt, fail their checksum, or are followed by more. */
export class SegmentError extends Error {
  /** The segment (of the block) that failed. */
  readonly segment: number;
  /** What failed. */
  readonly reason: SegmentFailure;
  /** The LZ4 decoder's reason code for "corrupt" (negative), else 0. */
  readonly code: number;

  /** Creates an error for `segment`. */
  constructor(segment: number, reason: SegmentFailure, code: number) {
    const what = {
      short: "is cut off",
      corrupt: code < 0
        ? `does not decompress (corrupt or truncated LZ4 block, reason ${code})`
        : "does not decompress to its size",
      checksum: "fails its checksum",
      long: "is followed by more bytes than the table gives",
    }[reason];
    super(`Segment ${segment} ${what}`);
    this.name = "SegmentError";
    this.segment = segment;
    this.reason = reason;
    this.code = code;
  }
}

/** Checks the arguments; the raw length of segments `[first, last]`. */
function runLength(table: Uint8Array, rawLen: number, first: number, last: number): number {
  const n = Math.ceil(rawLen / SEGMENT_SIZE);
  if (!Number.isInteger(rawLen) || rawLen < 0 || rawLen >= 2 ** 31) {
    throw new RangeError(`Raw length must be an integer in 0..2^31-1, got "${rawLen}"`);
  }
  if (table.byteLength !== n * SEGMENT_ENTRY_SIZE) {
    throw new RangeError(`A table of ${n} segments has ${n * SEGMENT_ENTRY_SIZE} bytes`);
  }
  if (
    !Number.isInteger(first) || !Number.isInteger(last) || first < 0 || first > last || last >= n
  ) {
    throw new RangeError(`Segments ${first}..${last} are not in 0..${n - 1}`);
  }
  return Math.max(0, Math.min(rawLen, (last + 1) * SEGMENT_SIZE) - first * SEGMENT_SIZE);
}

/** Whether the table stores every segment of `[first, last]` raw. */
function allRaw(table: Uint8Array, first: number, last: number): boolean {
  for (let i = first; i <= last; i++) {
    if (table[i * SEGMENT_ENTRY_SIZE] !== 0 || table[i * SEGMENT_ENTRY_SIZE + 1] !== 0) {
      return false;
    }
  }
  return true;
}

/**
 * Decodes and verifies in Wasm memory; the offset of the raw bytes there (valid until the next
 * call). `inPlace` (every segment stored raw): they are verified where they were copied in.
 */
function decodeRun(
  stored: Uint8Array,
  table: Uint8Array,
  rawLen: number,
  first: number,
  last: number,
  runLen: number,
  inPlace: boolean,
): number {
  const c = codec();
  const s = c.input(stored, 0);
  const t = align16(s + stored.byteLength + 16);
  const dst = inPlace ? s : align16(t + table.byteLength + 16);
  c.reserve(Math.max(t + table.byteLength, dst + runLen) + 32);
  c.u8.set(table, t);
  const r = c.ex.segDecode(s, stored.byteLength, t, rawLen, first, last, dst);
  if (r < 0) {
    throw new SegmentError(c.ex.segErrorSegment() >>> 0, FAILURES[-r - 1]!, c.ex.segErrorCode());
  }
  return dst;
}

/**
 * Decodes and verifies segments `[first, last]` of a block of `rawLen` bytes from `stored`, their
 * stored bytes back to back, with the block's `table` ({@linkcode SegmentEncoding.table}). Returns
 * one array per segment, each its own buffer, except when every one of them is stored raw: then
 * views of `stored` (verified, not copied).
 *
 * @throws {SegmentError} on any mismatch: never wrong bytes.
 *
 * @example
 * ```ts
 * import { decodeSegmented, encodeSegmented } from "./mod.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * const block = new Uint8Array(200_000).map((_, i) => i % 7);
 * const enc = encodeSegmented(block, true);
 * const [seg1] = decodeSegmented(enc.data.subarray(enc.table[0]! | enc.table[1]! << 8), enc.table, block.length, 1, 3);
 * deepEqual(seg1, block.subarray(65536, 131072));
 * ```
 */
export function decodeSegmented(
  stored: Uint8Array,
  table: Uint8Array,
  rawLen: number,
  first: number,
  last: number,
): Uint8Array[] {
  const runLen = runLength(table, rawLen, first, last);
  const inPlace = allRaw(table, first, last);
  const at = decodeRun(stored, table, rawLen, first, last, runLen, inPlace);
  const mem = codec().u8;
  const out: Uint8Array[] = [];
  for (let o = 0; o < runLen; o += SEGMENT_SIZE) {
    const end = Math.min(runLen, o + SEGMENT_SIZE);
    out.push(inPlace ? stored.subarray(o, end) : mem.slice(at + o, at + end));
  }
  return out;
}

/**
 * Decodes and verifies segments `[first, last]` (as {@linkcode decodeSegmented}) and copies bytes
 * `[from, from + into.byteLength)` of their raw run into `into`. When the segments are stored raw
 * and `stored` is already those bytes in `into` (read straight into it), nothing is copied.
 *
 * @throws {SegmentError} like {@linkcode decodeSegmented}; `into` may then hold partial output.
 *
 * @example
 * ```ts
 * import { decodeSegmentedInto, encodeSegmented } from "./mod.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * const block = new Uint8Array(200_000).map((_, i) => i % 7);
 * const enc = encodeSegmented(block, true);
 * const out = new Uint8Array(1000);
 * decodeSegmentedInto(enc.data, enc.table, block.length, 0, 3, out, 70_000);
 * deepEqual(out, block.subarray(70_000, 71_000));
 * ```
 */
export function decodeSegmentedInto(
  stored: Uint8Array,
  table: Uint8Array,
  rawLen: number,
  first: number,
  last: number,
  into: Uint8Array,
  from: number,
): void {
  const runLen = runLength(table, rawLen, first, last);
  if (!Number.isInteger(from) || from < 0 || from + into.byteLength > runLen) {
    throw new RangeError(`Bytes ${from}+${into.byteLength} are not within a run of ${runLen}`);
  }
  const inPlace = allRaw(table, first, last);
  const at = decodeRun(stored, table, rawLen, first, last, runLen, inPlace);
  if (inPlace && stored.buffer === into.buffer && stored.byteOffset + from === into.byteOffset) {
    return; // verified where it was read
  }
  into.set(codec().u8.subarray(at + from, at + from + into.byteLength));
}

/**
 * Decodes and verifies a whole segmented block of `rawLen` bytes into one array: `into` (which must
 * have `rawLen` bytes) when given, else a new array, or `stored` itself (verified, not copied) for
 * a block stored all raw. The raw bytes are copied out of Wasm memory once, straight into it.
 *
 * @throws {SegmentError} like {@linkcode decodeSegmented}; `into` may then hold partial output.
 *
 * @example
 * ```ts
 * import { decodeSegmentedBlock, encodeSegmented } from "./mod.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * const block = new TextEncoder().encode("to be or not to be ".repeat(10_000));
 * const enc = encodeSegmented(block, true);
 * deepEqual(decodeSegmentedBlock(enc.data, enc.table, block.length), block);
 * const buf = new Uint8Array(block.length);
 * deepEqual(decodeSegmentedBlock(enc.data, enc.table, block.length, buf), block);
 * ```
 */
export function decodeSegmentedBlock(
  stored: Uint8Array,
  table: Uint8Array,
  rawLen: number,
  into?: Uint8Array,
): Uint8Array {
  if (into !== undefined && into.byteLength !== rawLen) {
    throw new RangeError(`The destination has ${into.byteLength} bytes, not ${rawLen}`);
  }
  if (rawLen === 0 && table.byteLength === 0) {
    if (stored.byteLength !== 0) throw new SegmentError(0, "long", 0);
    return into ?? stored;
  }
  const last = Math.ceil(rawLen / SEGMENT_SIZE) - 1;
  const runLen = runLength(table, rawLen, 0, last);
  const inPlace = allRaw(table, 0, last);
  const at = decodeRun(stored, table, rawLen, 0, last, runLen, inPlace);
  if (inPlace) {
    into?.set(stored);
    return into ?? stored;
  }
  const out = codec().u8.subarray(at, at + runLen);
  if (into === undefined) return out.slice();
  into.set(out);
  return into;
}
