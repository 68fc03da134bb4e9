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

import { lz4CompressInto, lz4DecompressInto, xxh3_64 } from "../wasm/mod.ts";
import { Errno, FsError } from "./errno.ts";

/** Bytes per segment (the last segment of a block may be shorter). */
export const SEGMENT = 1 << 16;

/** Bytes per segment in a record's table: a u16 stored length (0: raw) and the u64 XXH3-64. */
export const SEGMENT_ENTRY = 10;

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
}

/**
 * Encodes `raw` segment by segment; with `compress`, each segment that LZ4 makes smaller is
 * stored compressed. When no segment is, `data` is `raw` itself (not copied).
 */
export function encodeSegments(raw: Uint8Array, compress: boolean): SegmentedBlock {
  const n = segmentCount(raw.byteLength);
  const table = new Uint8Array(n * SEGMENT_ENTRY);
  const tv = new DataView(table.buffer);
  // Compressed segments are written straight into a scratch buffer kept for the next block,
  // and the result copied out at its exact size: one new array per block, not a block-sized
  // one plus one per segment (the codec workers' garbage was most of a stream's memory).
  let out: Uint8Array | undefined;
  let o = 0;
  for (let i = 0; i < n; i++) {
    const seg = raw.subarray(i * SEGMENT, (i + 1) * SEGMENT);
    tv.setBigUint64(i * SEGMENT_ENTRY + 2, xxh3_64(seg), true);
    if (compress && seg.byteLength > 1) {
      if (!out) out = scratch(raw.byteLength);
      // Room for one byte less than the segment: the encoder gives up when it cannot do better.
      const c = lz4CompressInto(seg, out.subarray(o, o + seg.byteLength - 1));
      if (c > 0) {
        tv.setUint16(i * SEGMENT_ENTRY, c, true);
        o += c;
        continue;
      }
    }
    out?.set(seg, o);
    o += seg.byteLength;
  }
  if (!out || o === raw.byteLength) return { data: raw, table, compressed: false };
  return { data: out.slice(0, o), table, compressed: true };
}

let scratchBuf = new Uint8Array(0);

/** The encoder's scratch buffer, at least `n` bytes (kept: one per isolate, a block's size). */
function scratch(n: number): Uint8Array {
  if (scratchBuf.byteLength < n) scratchBuf = new Uint8Array(n);
  return scratchBuf;
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

/**
 * Decodes and verifies segments `[first, last]` of a block of `rawLen` bytes from `stored`, the
 * bytes {@linkcode segmentSpan} names. Returns one raw array per segment: a view of `stored` for
 * a segment stored raw, a new array for a compressed one; with `into`, each segment is also
 * at its place in `into` (segment `first` at 0; a compressed one is decompressed there). Throws `EIO`
 * naming `key` on any mismatch: never wrong bytes.
 */
export function decodeSegments(
  stored: Uint8Array,
  table: Uint8Array,
  rawLen: number,
  first: number,
  last: number,
  key: string,
  into?: Uint8Array,
): Uint8Array[] {
  if (table.byteLength !== segmentCount(rawLen) * SEGMENT_ENTRY) {
    throw new FsError(Errno.EIO, `Block "${key}" has a segment table of the wrong size`);
  }
  const tv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const out: Uint8Array[] = [];
  let o = 0;
  for (let i = first; i <= last; i++) {
    const len = storedLenOf(table, i, rawLen);
    const segRaw = rawLenOf(i, rawLen);
    if (o + len > stored.byteLength) {
      throw new FsError(Errno.EIO, `Block "${key}" is short: segment ${i} is cut off`);
    }
    const seg = stored.subarray(o, o + len);
    o += len;
    let raw = seg;
    const at = (i - first) * SEGMENT;
    if (table[i * SEGMENT_ENTRY] !== 0 || table[i * SEGMENT_ENTRY + 1] !== 0) {
      raw = into ? into.subarray(at, at + segRaw) : new Uint8Array(segRaw);
      try {
        lz4DecompressInto(seg, raw);
      } catch (err) {
        throw new FsError(Errno.EIO, `Block "${key}" segment ${i} does not decompress: ${err}`, {
          cause: err,
        });
      }
    }
    if (xxh3_64(raw) !== tv.getBigUint64(i * SEGMENT_ENTRY + 2, true)) {
      throw new FsError(Errno.EIO, `Block "${key}" segment ${i} fails its checksum`);
    }
    if (into && raw === seg) into.set(seg, at);
    out.push(raw);
  }
  if (o !== stored.byteLength) {
    throw new FsError(Errno.EIO, `Block "${key}" has ${stored.byteLength} bytes, expected ${o}`);
  }
  return out;
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
  const n = segmentCount(rawLen);
  if (stored.byteLength === rawLen) {
    decodeSegments(stored, table, rawLen, 0, n - 1, key); // every segment raw: verified in place
    return stored;
  }
  // Each segment decoded straight into its place in the block (no array per segment).
  const raw = new Uint8Array(rawLen);
  decodeSegments(stored, table, rawLen, 0, n - 1, key, raw);
  return raw;
}
