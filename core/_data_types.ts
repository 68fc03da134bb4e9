/**
 * The types of the block layer's API (`core/data.ts`, which re-exports them).
 *
 * @module
 */

import type { BlockRecord } from "./block_codec.ts";
import type { BlockCacheLike } from "./cache/mod.ts";
import type { VolumeFormat } from "./format.ts";
import type { FreedSlice, FullChunk } from "./meta/mod.ts";
import type { RandomFillOptions } from "./_random_fill.ts";
import type { Ino, SliceId } from "./types.ts";

/** A stored block: its record, and the blob key if this call uploaded a dedup blob. */
export interface StoredBlock {
  /** How the block is stored (flags, hash, inline bytes), for the slice's record. */
  record: BlockRecord;
  /** The object key of the dedup blob this call uploaded, if it did. */
  uploaded?: string;
}

/** Options of the block layer. */
export interface DataOptions {
  /** Bytes of whole blocks kept in memory (default 32 MiB). */
  cacheBytes?: number;
  /** Uploads in flight per file (default: the store's concurrency). */
  uploadConcurrency?: number;
  /** The cache to use (default: a {@linkcode BlockCache} of `cacheBytes`). */
  cache?: BlockCacheLike;
  /** Whether written blocks go into the cache too (default: only with a disk tier). */
  cacheWrites?: boolean;
  /**
   * With `cacheWrites`, whether written blocks of the full block size are cached too, not only
   * the shorter ones (small files, the ends of files). Default: no, as JuiceFS's
   * `--cache-large-write` (the mount's `--cache-large-write`).
   */
  cacheLargeWrites?: boolean;
  /** Codec workers (default: the number of cores; 0 codes on the calling thread). */
  codecWorkers?: number;
  /** Called with errors no request can report, e.g. a corrupt block. */
  onError?: (err: unknown) => void;
  /**
   * Milliseconds after its start at which a block fetch fails its readers with `EIO` (see the
   * module notes, "Deadline"). Default: none.
   */
  fetchDeadlineMs?: number;
  /**
   * Whether new blocks are written in the segmented format and random reads fetch segments
   * (default: yes, unless the store reads objects whole, `limits.wholeObjects`).
   */
  segmented?: boolean;
  /**
   * Filling files read at random into the disk cache tier (`core/_random_fill.ts`; the mount's
   * `random_fill`). Default: files up to a quarter of the disk tiers' capacity, at most 8 GiB.
   */
  randomFill?: RandomFillOptions;
  /**
   * The most a sequential read fetches ahead of itself, in bytes (the mount's `readahead`; 0:
   * nothing). Default: 48 blocks with a disk tier, where fetched blocks wait on disk; 8 blocks
   * (32 MiB, the memory cache's default size) without (`core/_prefetch.ts`).
   */
  readahead?: number;
}

/**
 * What the block layer needs of the metadata: the few methods of `Meta` (`core/meta/`) it calls.
 * A read finds a chunk's slices and their block records, a dedup block its blob's object key, an
 * inline block its bytes; deleting freed slices lists and clears the garbage.
 */
export interface SliceMeta {
  /** The settings that shape blocks. */
  readonly format: Pick<
    VolumeFormat,
    "blockSize" | "chunkSize" | "compression" | "dedup" | "inlineMax"
  >;
  /** The object key of the stored blob with content hash `hash`, if one is referenced. */
  blob(hash: Uint8Array): Promise<string | undefined>;
  /** How the blocks of a committed slice are stored (empty if the slice is unknown). */
  sliceBlockRecords(id: SliceId): Promise<BlockRecord[]>;
  /** The stored bytes of an inline block, or `undefined`. */
  inlineBlock(id: SliceId, index: number): Promise<Uint8Array | undefined>;
  /** A chunk's slice list, the block records of its visible slices and their inline blocks. */
  readChunkFull(ino: Ino, index: number): Promise<FullChunk>;
  /** Slices whose blocks await deletion. */
  listGarbage(limit?: number): Promise<FreedSlice[]>;
  /** Forgets garbage entries whose blocks are deleted. */
  clearGarbage(ids: readonly SliceId[]): Promise<void>;
}
