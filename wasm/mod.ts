/**
 * The Wasm block engine: LZ4 block compression, XXH3-64 and BLAKE3 hashing, and the S3-FIFO cache
 * index, compiled from AssemblyScript (`wasm/assembly/`) into `wasm/_build/engine.wasm`.
 *
 * @example
 * ```ts
 * import { blake3, compressBlock, lz4Decompress, xxh3_64 } from "./mod.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const block = new TextEncoder().encode("hello hello hello hello hello hello");
 * const { data, compressed } = compressBlock(block);
 * if (compressed) deepEqual(lz4Decompress(data, block.length), block);
 * equal(typeof xxh3_64(block), "bigint");
 * equal(blake3(block).length, 32);
 * ```
 *
 * @module
 */

export {
  compressBlock,
  type CompressedBlock,
  LZ4_MAX_INPUT_SIZE,
  lz4Compress,
  lz4CompressBound,
  lz4CompressInto,
  lz4Decompress,
  lz4DecompressInto,
  Lz4Error,
} from "./lz4.ts";
export {
  decodeSegmented,
  decodeSegmentedBlock,
  decodeSegmentedInto,
  encodeSegmented,
  SAMPLE_SIZE,
  sampleShrinks,
  SEGMENT_ENTRY_SIZE,
  SEGMENT_SIZE,
  type SegmentEncoding,
  SegmentError,
  type SegmentFailure,
} from "./segments.ts";
export { xxh3_64 } from "./xxh3.ts";
export { blake3 } from "./blake3.ts";
export {
  blockKey,
  CacheIndex,
  type CacheIndexOptions,
  type Evicted,
  type Slot,
} from "./cache_index.ts";
