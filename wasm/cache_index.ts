/**
 * The cache index: a hash table in Wasm memory from a 64-bit block key to a cache slot, with
 * S3-FIFO eviction. See `assembly/cache.ts` for the layout and the policy.
 *
 * @module
 */

import { type EngineExports, instantiateEngine } from "./_engine.ts";
import { xxh3_64 } from "./xxh3.ts";

/** Where a cached block lives. */
export interface Slot {
  /** Storage tier (0..255), e.g. 0 = memory, 1 = local disk. */
  tier: number;
  /** Location within the tier (an integer below 2^40, e.g. a byte offset or a slot number). */
  location: number;
  /** Size in bytes (below 2^32); counts against `maxBytes`. */
  size: number;
}

/** An entry evicted by {@linkcode CacheIndex.insert}: the caller should drop its data. */
export interface Evicted extends Slot {
  /** The evicted block's key. */
  key: bigint;
}

/** Limits of a {@linkcode CacheIndex}. */
export interface CacheIndexOptions {
  /** Most entries held at once (1..2^27). */
  maxEntries: number;
  /** Most bytes (sum of slot sizes) held at once. */
  maxBytes: number;
  /** Share of the small (probation) FIFO, in percent; 10 by default, as in the S3-FIFO paper. */
  smallPercent?: number;
}

const REC = 28;
const MAX_LOCATION = 2 ** 40 - 1;
const EVICT_CAP = 256;
const EVICT_REC = 24;
const F_LIVE = 8;
const TWO_32 = 0x100000000;
const MAX_ENTRIES = 2 ** 27;
const NO_EVICTIONS: readonly Evicted[] = Object.freeze([]);
const encoder = new TextEncoder();

/**
 * The 64-bit key of a block name: XXH3-64 of its UTF-8 bytes.
 *
 * @example
 * ```ts
 * import { blockKey } from "./mod.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(blockKey("chunks/1/0_0_4096"), blockKey("chunks/1/0_0_4096"));
 * ```
 */
export function blockKey(name: string): bigint {
  return xxh3_64(encoder.encode(name));
}

/**
 * A block cache index with O(1) get, insert and remove, held in its own Wasm memory
 * (about 34 bytes per entry at full size: a 28-byte record, 4-byte buckets at a load factor of at
 * most 0.8 and a 2-byte ghost slot per two entries).
 *
 * Eviction is S3-FIFO: new keys go to a small FIFO; only keys accessed again before they leave it
 * reach the main FIFO, and main entries that are accessed get another round. A one-pass scan
 * therefore cannot flush hot blocks. Keys evicted from the small FIFO are remembered (as
 * fingerprints) and go straight to main when inserted again.
 *
 * @example
 * ```ts
 * import { CacheIndex } from "./mod.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const index = new CacheIndex({ maxEntries: 2, maxBytes: 1 << 20 });
 * index.insert(1n, { tier: 0, location: 0, size: 4096 });
 * index.insert(2n, { tier: 1, location: 8192, size: 4096 });
 * deepEqual(index.get(2n), { tier: 1, location: 8192, size: 4096 });
 * const evicted = index.insert(3n, { tier: 0, location: 4096, size: 100 });
 * deepEqual(evicted.map((e) => e.key), [1n]); // 1 was never read again
 * equal(index.size, 2);
 * equal(index.frequency(2n), 1);
 * ```
 */
export class CacheIndex {
  readonly #ex: EngineExports;
  readonly #recBase: number;
  readonly #evictBuf: number;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  #buffer: ArrayBufferLike;
  #u8: Uint8Array;
  #u32: Uint32Array;
  #u64: BigUint64Array;

  /** Creates an empty index with its own Wasm memory. */
  constructor(opts: CacheIndexOptions) {
    const { maxEntries, maxBytes, smallPercent = 10 } = opts;
    if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > MAX_ENTRIES) {
      throw new RangeError(
        `maxEntries must be an integer in 1..${MAX_ENTRIES}, got "${maxEntries}"`,
      );
    }
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new RangeError(`maxBytes must be a positive safe integer, got "${maxBytes}"`);
    }
    if (!Number.isInteger(smallPercent) || smallPercent < 1 || smallPercent > 90) {
      throw new RangeError(`smallPercent must be an integer in 1..90, got "${smallPercent}"`);
    }
    this.#ex = instantiateEngine();
    if (this.#ex.cacheInit(maxEntries, BigInt(maxBytes), smallPercent) !== 0) {
      throw new RangeError(`Cannot allocate a cache index for ${maxEntries} entries`);
    }
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
    this.#recBase = this.#ex.cacheRecBase();
    this.#evictBuf = this.#ex.cacheEvictBuf();
    this.#buffer = this.#ex.memory.buffer;
    this.#u8 = new Uint8Array(this.#buffer);
    this.#u32 = new Uint32Array(this.#buffer);
    this.#u64 = new BigUint64Array(this.#buffer);
  }

  #views(): void {
    const buffer = this.#ex.memory.buffer;
    if (buffer === this.#buffer) return;
    this.#buffer = buffer;
    this.#u8 = new Uint8Array(buffer);
    this.#u32 = new Uint32Array(buffer);
    this.#u64 = new BigUint64Array(buffer);
  }

  #slot(id: number): Slot {
    this.#views();
    const r = this.#recBase + id * REC;
    const u8 = this.#u8;
    return {
      tier: u8[r + 13]!,
      location: this.#u32[(r + 8) >>> 2]! + u8[r + 12]! * TWO_32,
      size: this.#u32[(r + 16) >>> 2]!,
    };
  }

  /** The slot of `key`, counting an access (for eviction and {@linkcode frequency}). */
  get(key: bigint): Slot | undefined {
    const id = this.#ex.cacheGet(key);
    return id === 0 ? undefined : this.#slot(id);
  }

  /** The slot of `key` without counting an access. */
  peek(key: bigint): Slot | undefined {
    const id = this.#ex.cachePeek(key);
    return id === 0 ? undefined : this.#slot(id);
  }

  /** Whether `key` is present (not an access). */
  has(key: bigint): boolean {
    return this.#ex.cachePeek(key) !== 0;
  }

  /**
   * Inserts `key` (or replaces its slot, keeping its access history), then evicts until the index
   * is within `maxEntries` and `maxBytes`. Returns the evicted entries (possibly `key` itself when
   * nothing else is left to evict); the caller must delete their data.
   */
  insert(key: bigint, slot: Slot): readonly Evicted[] {
    const { tier, location, size } = slot;
    if (!Number.isInteger(tier) || tier < 0 || tier > 255) {
      throw new RangeError(`Slot tier must be an integer in 0..255, got "${tier}"`);
    }
    if (!Number.isInteger(location) || location < 0 || location > MAX_LOCATION) {
      throw new RangeError(`Slot location must be an integer in 0..2^40-1, got "${location}"`);
    }
    if (!Number.isInteger(size) || size < 0 || size > 0xffffffff || size > this.#maxBytes) {
      throw new RangeError(`Slot size must be an integer in 0..${this.#maxBytes}, got "${size}"`);
    }
    let n = this.#ex.cacheInsert(key, location, size, tier);
    if (n === 0) return NO_EVICTIONS;
    if (n < 0) {
      throw new RangeError(`Cannot grow the cache index memory for entry ${this.size + 1}`);
    }
    this.#views();
    const out: Evicted[] = [];
    while (true) {
      for (let i = 0; i < n; i++) {
        const e = this.#evictBuf + i * EVICT_REC;
        const w = e >>> 2;
        out.push({
          key: this.#u64[e >>> 3]!,
          tier: this.#u32[w + 5]!,
          location: this.#u32[w + 2]! + this.#u32[w + 3]! * TWO_32,
          size: this.#u32[w + 4]!,
        });
      }
      if (n < EVICT_CAP) return out;
      n = this.#ex.cacheEvict();
    }
  }

  /** Removes `key`; true if it was present. Its data is the caller's to delete. */
  remove(key: bigint): boolean {
    return this.#ex.cacheRemove(key) !== 0;
  }

  /** Accesses of `key` counted by {@linkcode get} since it was inserted (saturates at 255). */
  frequency(key: bigint): number {
    const id = this.#ex.cachePeek(key);
    if (id === 0) return 0;
    this.#views();
    return this.#u8[this.#recBase + id * REC + 15]!;
  }

  /** Number of entries. */
  get size(): number {
    return this.#ex.cacheCount() >>> 0;
  }

  /** Sum of the entries' sizes. */
  get bytes(): number {
    return Number(this.#ex.cacheBytes());
  }

  /** The entry limit. */
  get maxEntries(): number {
    return this.#maxEntries;
  }

  /** The byte limit. */
  get maxBytes(): number {
    return this.#maxBytes;
  }

  /** Bytes of Wasm memory this index holds. */
  get memoryBytes(): number {
    return this.#ex.memory.buffer.byteLength;
  }

  /** All entries, in no particular order (do not modify the index while iterating). */
  *entries(): IterableIterator<[bigint, Slot]> {
    const end = this.#ex.cacheRecEnd();
    for (let id = 1; id < end; id++) {
      this.#views();
      const r = this.#recBase + id * REC;
      if ((this.#u8[r + 14]! & F_LIVE) === 0) continue;
      const key = BigInt(this.#u32[r >>> 2]!) | (BigInt(this.#u32[(r >>> 2) + 1]!) << 32n);
      yield [key, this.#slot(id)];
    }
  }

  /** Same as {@linkcode entries}. */
  [Symbol.iterator](): IterableIterator<[bigint, Slot]> {
    return this.entries();
  }
}
