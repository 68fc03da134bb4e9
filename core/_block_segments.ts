/**
 * The segmented block format: each 64 KiB segment ({@linkcode SEGMENT}) of a raw block is
 * LZ4-compressed on its own (stored raw when that does not make it smaller) and the stored
 * segments are concatenated into the object. A table in the block's record gives, per segment,
 * its stored length and the XXH3-64 of its raw bytes, so that a reader can fetch any run of
 * segments with one ranged read, verify them and decode them without the rest of the block.
 *
 * ## Decisions
 *
 * - **Where the table lives: in the metadata block record**, 10 bytes per segment (a u16 stored
 *   length, 0 meaning "stored raw", and the u64 checksum, little-endian): 640 bytes per 4 MiB
 *   block, 0.015% of the data. The alternative, a trailer in the object, costs nothing in the
 *   metadata but a second round trip (table, then segment) on the first random read of every
 *   block, and a cache of tables to avoid it on the next ones; a random read on S3 is one round
 *   trip with the table in the record, which the reader already holds (the chunk's block records
 *   come in the same metadata read as its slice list). The whole-block XXH3-64 stays in the
 *   record too (`slayerfs dump`, and tools that check a block whole), computed in the same pass.
 * - **Segment = LZ4 window.** LZ4 never refers back more than 64 KiB, so compressing segments
 *   apart loses only the matches across a boundary: a log-like text that LZ4 shrinks 10x stored
 *   15% larger (496 KB instead of 432 KB per 4 MiB block, `core/_block_segments_test.ts`);
 *   incompressible data is stored as is (one 64 KiB sample decides, as for whole blocks).
 * - **Which blocks.** New blocks written to the store. Not inline blocks (they arrive whole with
 *   the metadata), not dedup blocks (a block that finds an existing blob takes its record from
 *   its own encoding, and the blob may be in the whole-block format), not encrypted volumes (an
 *   object is sealed whole and must be fetched whole to be opened). Blocks written before keep
 *   their format: the record's `BLOCK_SEGMENTED` flag tells which a block is.
 *
 * @module
 */

import {
  decodeSegmented,
  decodeSegmentedBlock,
  decodeSegmentedInto,
  encodeSegmented,
  SEGMENT_ENTRY_SIZE,
  SEGMENT_SIZE,
  SegmentError,
} from "../wasm/mod.ts";
import { Errno, FsError } from "./errno.ts";

/** Bytes per segment (the last segment of a block may be shorter). */
export const SEGMENT = SEGMENT_SIZE;

/** Bytes per segment in a record's table: a u16 stored length (0: raw) and the u64 XXH3-64. */
export const SEGMENT_ENTRY = SEGMENT_ENTRY_SIZE;

/** How many segments a block of `rawLen` bytes has. */
export function segmentCount(rawLen: number): number {
  return Math.ceil(rawLen / SEGMENT);
}

/** A block encoded segment by segment. */
export interface SegmentedBlock {
  /** The stored bytes: the segments, each compressed or raw, one after the other. */
  data: Uint8Array;
  /** The table for the block record. */
  table: Uint8Array;
  /** Whether any segment is compressed. */
  compressed: boolean;
  /** XXH3-64 of the whole raw block (the record's checksum), computed in the same pass. */
  checksum: bigint;
}

/**
 * Encodes `raw` segment by segment; with `compress`, each segment that LZ4 makes smaller is
 * stored compressed (with `sample` too, only if a 64 KiB sample from the middle of a large block
 * shrinks). When no segment is, `data` is `raw` itself (not copied). One pass in Wasm memory
 * (`wasm/segments.ts`): the block is copied in once and the stored bytes out once.
 */
export function encodeSegments(raw: Uint8Array, compress: boolean, sample = false): SegmentedBlock {
  return encodeSegmented(raw, compress, sample);
}

/** The raw length of segment `i` of a block of `rawLen` bytes. */
function rawLenOf(i: number, rawLen: number): number {
  return Math.min(SEGMENT, rawLen - i * SEGMENT);
}

/** The stored length of segment `i` (the table's 0 means the raw length). */
export function storedLenOf(table: Uint8Array, i: number, rawLen: number): number {
  const code = table[i * SEGMENT_ENTRY]! | (table[i * SEGMENT_ENTRY + 1]! << 8);
  return code === 0 ? rawLenOf(i, rawLen) : code;
}

/** Where segments `[first, last]` lie in the stored object: `[offset, offset+length)`. */
export function segmentSpan(
  table: Uint8Array,
  rawLen: number,
  first: number,
  last: number,
): { offset: number; length: number } {
  let offset = 0;
  for (let i = 0; i < first; i++) offset += storedLenOf(table, i, rawLen);
  let length = 0;
  for (let i = first; i <= last; i++) length += storedLenOf(table, i, rawLen);
  return { offset, length };
}

/** The table's checksums as {@linkcode segmentSums} gives them (u64 LE each), for a disk tier. */
export function tableSums(table: Uint8Array): Uint8Array {
  const n = table.byteLength / SEGMENT_ENTRY;
  const out = new Uint8Array(8 * n);
  for (let i = 0; i < n; i++) {
    out.set(table.subarray(i * SEGMENT_ENTRY + 2, (i + 1) * SEGMENT_ENTRY), 8 * i);
  }
  return out;
}

/** The `EIO` error for a failed segment decode of block `key` (`stored`: the bytes decoded). */
function segmentEio(
  err: unknown,
  key: string,
  stored: Uint8Array,
  table: Uint8Array,
  rawLen: number,
  first: number,
  last: number,
): FsError {
  if (!(err instanceof SegmentError)) {
    return new FsError(Errno.EIO, `Block "${key}" cannot be decoded: ${err}`, { cause: err });
  }
  const i = err.segment;
  const message = {
    short: `Block "${key}" is short: segment ${i} is cut off`,
    corrupt: `Block "${key}" segment ${i} does not decompress: ${err.message}`,
    checksum: `Block "${key}" segment ${i} fails its checksum`,
    long: `Block "${key}" has ${stored.byteLength} bytes, expected ${
      segmentSpan(table, rawLen, first, last).length
    }`,
  }[err.reason];
  return new FsError(Errno.EIO, message, { cause: err });
}

/** Checks the table's size against the block's. */
function checkTable(table: Uint8Array, rawLen: number, key: string): void {
  if (table.byteLength !== segmentCount(rawLen) * SEGMENT_ENTRY) {
    throw new FsError(Errno.EIO, `Block "${key}" has a segment table of the wrong size`);
  }
}

/**
 * Decodes and verifies segments `[first, last]` of a block of `rawLen` bytes from `stored`, the
 * bytes {@linkcode segmentSpan} names. Returns one raw array per segment, each its own buffer
 * (copied out of Wasm memory once), or views of `stored` when all of them are stored raw. Throws
 * `EIO` naming `key` on any mismatch: never wrong bytes.
 */
export function decodeSegments(
  stored: Uint8Array,
  table: Uint8Array,
  rawLen: number,
  first: number,
  last: number,
  key: string,
): Uint8Array[] {
  checkTable(table, rawLen, key);
  try {
    return decodeSegmented(stored, table, rawLen, first, last);
  } catch (err) {
    throw segmentEio(err, key, stored, table, rawLen, first, last);
  }
}

/**
 * Decodes and verifies segments `[first, last]` of a block from `stored` (as
 * {@linkcode decodeSegments}) and puts bytes `[from, from + into.byteLength)` of their raw run in
 * `into`. Throws `EIO` naming `key` on any mismatch.
 */
export function decodeSegmentsInto(
  stored: Uint8Array,
  table: Uint8Array,
  rawLen: number,
  first: number,
  last: number,
  into: Uint8Array,
  from: number,
  key: string,
): void {
  checkTable(table, rawLen, key);
  try {
    decodeSegmentedInto(stored, table, rawLen, first, last, into, from);
  } catch (err) {
    throw segmentEio(err, key, stored, table, rawLen, first, last);
  }
}

/**
 * Decodes a whole segmented block of `rawLen` bytes, verifying every segment. A block stored all
 * raw is returned as `stored` itself (not copied).
 */
export function decodeAllSegments(
  stored: Uint8Array,
  table: Uint8Array,
  rawLen: number,
  key: string,
): Uint8Array {
  checkTable(table, rawLen, key);
  try {
    return decodeSegmentedBlock(stored, table, rawLen);
  } catch (err) {
    throw segmentEio(err, key, stored, table, rawLen, 0, segmentCount(rawLen) - 1);
  }
}
