/**
 * The interface between the block layer and its cache ({@linkcode BlockCacheLike}), and the
 * counters a cache may report for `slayerfs status`.
 *
 * @module
 */

/** What the block layer needs of a cache: a `BlockCache` or a `TieredCache`. */
export interface BlockCacheLike {
  /** A block in memory, or `undefined`. */
  getSync(key: string): Uint8Array | undefined;
  /** A block from a slower tier (disk), or `undefined`. */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * Caches a block. `fromWrite`: just written to the store. `memoryOnly`: never worth a disk copy
   * (an inline block, which lives in the metadata engine). `segmentSums`: see
   * {@linkcode wantsSegmentSums}.
   */
  put(
    key: string,
    raw: Uint8Array,
    opts?: { fromWrite?: boolean; memoryOnly?: boolean; segmentSums?: Uint8Array },
  ): void;
  /**
   * Whether blocks may go to a tier that checksums 64 KiB segments: `put` then takes their
   * `segmentSums`, computed by the codec workers next to the block checksum.
   */
  readonly wantsSegmentSums?: boolean;
  /** Whether a block is cached (not an access). */
  has(key: string): boolean;
  /**
   * Bytes `[offset, offset+length)` of a cached block, read (and verified) without loading the
   * whole block from a slower tier; `undefined` on a miss. Optional.
   */
  getRange?(
    key: string,
    offset: number,
    length: number,
    into?: Uint8Array,
  ): Promise<Uint8Array | undefined>;
  /** Resolves when caching `bytes` more will not be dropped for lack of room. Optional. */
  room?(bytes: number): Promise<void>;
  /** Drops a block. */
  delete(key: string): void | Promise<void>;
  /** Bytes cached. */
  readonly bytes: number;
  /** Lookups that hit. */
  readonly hits: number;
  /** Lookups that missed. */
  readonly misses: number;
  /** Counters per tier, for `slayerfs status`. Optional. */
  stats?(): CacheStats;
  /** The `n` cached keys with the most hits, most first. Optional. */
  hottest?(n: number): HotBlock[];
  /** Releases what the cache holds open. Optional. */
  close?(): Promise<void>;
}

/** A cached key and how often it was hit. */
export interface HotBlock {
  /** The block key. */
  key: string;
  /** Hits since it entered the cache. */
  frequency: number;
}

/** Counters of one tier. */
export interface TierStats {
  /** `"memory"` or the directory path. */
  name: string;
  /** Blocks held. */
  entries: number;
  /** Bytes held (for a directory: file sizes, headers included). */
  bytes: number;
  /** The byte cap. */
  capacity: number;
  /** Lookups served by this tier. */
  hits: number;
  /**
   * Lookups that reached this tier and missed. For directories, a lookup that misses every
   * directory counts against the one the block would be placed in.
   */
  misses: number;
  /** `hits / (hits + misses)`, 0 before any lookup. */
  hitRate: number;
  /** Directories: bytes free on the filesystem at the last reading (adjusted for our writes). */
  freeBytes?: number;
  /** Directories: size of the filesystem at the last reading. */
  totalBytes?: number;
  /** Directories: the share of the filesystem kept free. */
  minFreeRatio?: number;
}

/** Counters of a tiered cache, for `slayerfs status`. */
export interface CacheStats {
  /** The memory tier (if any) first, then the directories in order. */
  tiers: TierStats[];
  /** Lookups served by any tier (including blocks still in the write-behind queue). */
  hits: number;
  /** Lookups served by none (corrupt blocks included). */
  misses: number;
  /** `hits / (hits + misses)`, 0 before any lookup. */
  hitRate: number;
  /** Distinct blocks held in any tier or queued. */
  entries: number;
  /** Blocks waiting in the write-behind queue. */
  pendingWrites: number;
  /** Bytes waiting in the write-behind queue. */
  pendingBytes: number;
  /** Disk writes skipped (queue full, no room, or block larger than every directory). */
  droppedWrites: number;
  /** Disk blocks copied into memory. */
  promotions: number;
  /** Blocks written to disk when evicted from memory. */
  demotions: number;
  /** Blocks evicted from any tier (not counting deletes). */
  evictions: number;
  /** Disk blocks found corrupt and deleted. */
  corrupt: number;
  /** Disk errors reported to `onError`. */
  errors: number;
}
