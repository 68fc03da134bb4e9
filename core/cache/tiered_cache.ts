/**
 * The tiering policy of the block cache: a memory tier and zero or more disk directories
 * ({@linkcode DiskTiers}), lookups through them, placement of new blocks, promotion of hot disk
 * blocks into memory and demotion of blocks evicted from memory, and the counters. See the design
 * notes in `mod.ts`.
 *
 * @module
 */

import { blockKey as hashKey, CacheIndex } from "../../wasm/mod.ts";
import { type CacheDirOptions, DiskTiers } from "./_disk_tiers.ts";
import { type DiskDir, type Entry, EntryTable, indexEntries, rate, tierStats } from "./_entries.ts";
import type { FreeSpace } from "./free_space.ts";
import type { BlockCacheLike, CacheStats, HotBlock, TierStats } from "./types.ts";

export type { CacheDirOptions };

/** Options of {@linkcode TieredCache.open}. */
export interface TieredCacheOptions {
  /** Bytes of the memory tier; 0 for none. */
  memoryBytes: number;
  /** Disk tiers; none for a memory-only cache. */
  dirs?: CacheDirOptions[];
  /** Accesses counted by a directory's index at which a disk hit copies the block into memory (2). */
  promoteThreshold?: number;
  /** Most bytes waiting in the write-behind queue (64 MiB); disk writes beyond it are skipped. */
  writeBehindBytes?: number;
  /** How long a free-space reading is reused, in ms (2000). */
  freeSpaceTtlMs?: number;
  /** Reads the free space of the filesystem holding a path; `statFreeSpace` by default. */
  freeSpace?: (path: string) => Promise<FreeSpace>;
  /**
   * Receives disk errors and corrupt blocks (none of which fail a call); by default they are
   * logged as warnings (LogTape category `["slayerfs", "cache"]`).
   */
  onError?: (error: Error) => void;
  /**
   * Whether ranged disk reads go through libc (`open`/`pread` by FFI, with up to 1,024 files kept
   * open); true by default. False, or when FFI is unavailable, opens the file with Deno for each
   * ranged read (slower).
   */
  ffi?: boolean;
}

const PROMOTE_WINDOW_MS = 10_000; // see #promoteLater

/**
 * A tiered block cache: memory, then local disk directories; see the design notes in `mod.ts`
 * for the policy.
 *
 * @example
 * ```ts
 * import { TieredCache } from "./tiered_cache.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * await using cache = await TieredCache.open({ memoryBytes: 1 << 20 });
 * cache.put("chunks/0/1/7_0_3", new Uint8Array([1, 2, 3]));
 * deepEqual(await cache.get("chunks/0/1/7_0_3"), new Uint8Array([1, 2, 3]));
 * equal(cache.getSync("chunks/0/1/7_0_3")?.length, 3);
 * equal(await cache.get("chunks/0/1/8_0_3"), undefined);
 * equal(cache.stats().hits, 2);
 * ```
 */
export class TieredCache implements BlockCacheLike {
  readonly #memoryBytes: number;
  readonly #mem: CacheIndex | undefined;
  readonly #disk: DiskTiers;
  readonly #promoteThreshold: number;
  readonly #table = new EntryTable();
  /** The table's map by key, for the lookups of the hot paths. */
  readonly #entries = this.#table.byKey;
  #closed = false;
  #memHits = 0;
  #memMisses = 0;
  #hits = 0;
  #misses = 0;
  #promotions = 0;
  // Promotions after ranged reads: one whole-block read at a time, and at most the memory tier's
  // size per PROMOTE_WINDOW_MS, so that a working set larger than memory (random reads over a big
  // file) does not turn every ranged read into a whole-block read that memory evicts at once.
  // A flag rather than p-limit(1): a promotion that finds one under way is skipped, not queued.
  #promoting = false;
  #promoteWindowStart = 0;
  #promotedInWindow = 0;
  #demotions = 0;
  #evictions = 0;

  private constructor(opts: TieredCacheOptions) {
    const { memoryBytes, dirs = [], promoteThreshold = 2 } = opts;
    if (!Number.isSafeInteger(memoryBytes) || memoryBytes < 0) {
      throw new RangeError(`memoryBytes must be a non-negative integer, got "${memoryBytes}"`);
    }
    if (!Number.isInteger(promoteThreshold) || promoteThreshold < 1) {
      throw new RangeError(
        `promoteThreshold must be a positive integer, got "${promoteThreshold}"`,
      );
    }
    this.#memoryBytes = memoryBytes;
    this.#mem = memoryBytes > 0
      ? new CacheIndex({
        maxEntries: indexEntries(memoryBytes, 4096),
        maxBytes: memoryBytes,
        // A large probation queue, so blocks fetched by readahead live until they are read.
        smallPercent: 50,
      })
      : undefined;
    this.#disk = new DiskTiers({ ...opts, dirs }, this.#table);
    this.#promoteThreshold = promoteThreshold;
  }

  /**
   * Opens a cache: creates the directories and rebuilds their indexes from the files in them
   * (see the design notes). Memory-only when `dirs` is empty.
   */
  static async open(opts: TieredCacheOptions): Promise<TieredCache> {
    const cache = new TieredCache(opts);
    await cache.#disk.open();
    return cache;
  }

  /**
   * The block of `key` if it is in the memory tier (a hit), else undefined without counting a
   * miss: the synchronous fast path, to be followed by {@linkcode get} when it returns undefined.
   */
  getSync(key: string): Uint8Array | undefined {
    const e = this.#entries.get(key);
    if (e?.mem === undefined) return undefined;
    this.#mem!.get(e.hash);
    e.hits++;
    this.#memHits++;
    this.#hits++;
    return e.mem;
  }

  /**
   * The block of `key` from memory, the write-behind queue or disk, or undefined (a miss; a corrupt
   * or vanished disk block is deleted and also reported as a miss).
   */
  get(key: string): Promise<Uint8Array | undefined> {
    const e = this.#entries.get(key);
    if (e?.mem !== undefined) return Promise.resolve(this.getSync(key));
    if (this.#mem) this.#memMisses++;
    if (e?.pending !== undefined) {
      e.hits++;
      this.#hits++;
      return Promise.resolve(e.pending);
    }
    if (e?.disk !== undefined) return this.#getDisk(e, e.disk);
    this.#miss(e, key);
    return Promise.resolve(undefined);
  }

  /**
   * Bytes `[offset, offset + length)` of the block of `key`, or undefined; hits and misses count
   * as for {@linkcode get}. From memory or the write-behind queue a view of the cached block; from
   * disk only the 64 KiB segments covering the range are read and verified (a corrupt block is
   * deleted and reported as a miss), and a block read often enough is copied into memory in the
   * background. The range must lie within the block (else a RangeError). A range read from disk
   * within one segment is copied into `into` (`length` bytes), if given, instead of a new array.
   */
  getRange(
    key: string,
    offset: number,
    length: number,
    into?: Uint8Array,
  ): Promise<Uint8Array | undefined> {
    if (
      !Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0
    ) {
      return Promise.reject(new RangeError(`Bad range ${offset}+${length} of block "${key}"`));
    }
    const e = this.#entries.get(key);
    if (e?.mem !== undefined) return view(key, this.getSync(key)!, offset, length);
    if (this.#mem) this.#memMisses++;
    if (e?.pending !== undefined) {
      e.hits++;
      this.#hits++;
      return view(key, e.pending, offset, length);
    }
    if (e?.disk !== undefined) return this.#getDiskRange(e, e.disk, offset, length, into);
    this.#miss(e, key);
    return Promise.resolve(undefined);
  }

  /**
   * Caches a block read from the store, or with `fromWrite` one just written to it (which skips
   * the memory tier when there is a disk tier); with `memoryOnly` it never goes to disk (a block
   * that is cheap to read again, such as one inlined in the metadata). Returns at once: the disk
   * copy is written behind, or skipped if the queue is full. Idempotent per key. `raw` is kept, not
   * copied.
   */
  put(
    key: string,
    raw: Uint8Array,
    opts?: { fromWrite?: boolean; memoryOnly?: boolean; segmentSums?: Uint8Array },
  ): void {
    if (this.#closed) return;
    // A 64-bit hash collision (add() gives nothing): the newcomer stays uncached.
    const e = this.#entries.get(key) ?? this.#table.add(key, hashKey(key));
    if (e === undefined) return;
    const toMemory = this.#mem !== undefined && raw.byteLength <= this.#memoryBytes &&
      !(opts?.fromWrite && this.#disk.dirs.length > 0);
    // Queue first: the memory index may evict the newcomer at once (S3-FIFO probation).
    if (e.disk === undefined && e.pending === undefined && !opts?.memoryOnly) {
      this.#disk.enqueue(e, raw, opts?.segmentSums);
    }
    if (toMemory && e.mem === undefined) this.#memInsert(e, raw);
    this.#table.gc(e);
  }

  /** True when there is a disk tier: {@linkcode put} can use precomputed segment checksums. */
  get wantsSegmentSums(): boolean {
    return this.#disk.dirs.length > 0;
  }

  /** Whether a block is cached in any tier or queued (not an access). */
  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Drops a block from every tier (waiting for its file to be deleted). */
  async delete(key: string): Promise<void> {
    const e = this.#entries.get(key);
    if (e === undefined) return;
    if (e.mem !== undefined) {
      this.#mem!.remove(e.hash);
      e.mem = undefined;
    }
    await this.#disk.remove(e);
  }

  /**
   * Resolves once the write-behind queue has room for `bytes` more (at once without a disk tier).
   * Background fetches (prefetch, predictive replay) wait here, so that what they fetch reaches
   * the disk tier instead of being dropped by a full queue and fetched again later.
   */
  room(bytes: number): Promise<void> {
    return this.#disk.room(bytes);
  }

  /** Waits until the write-behind queue is empty and background reads and deletes are done. */
  flush(): Promise<void> {
    return this.#disk.flush();
  }

  /**
   * Stops caching new blocks, waits for pending disk writes and closes the open block files.
   * Idempotent; lookups still work (without keeping files open).
   */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#disk.close();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Bytes held in memory and on disk. */
  get bytes(): number {
    return (this.#mem?.bytes ?? 0) + this.#disk.bytes;
  }

  /** Lookups served by any tier. */
  get hits(): number {
    return this.#hits;
  }

  /** Lookups served by none. */
  get misses(): number {
    return this.#misses;
  }

  /** Counters per tier and overall. */
  stats(): CacheStats {
    const tiers: TierStats[] = [];
    if (this.#mem) {
      tiers.push(tierStats("memory", this.#mem, this.#memHits, this.#memMisses));
    }
    tiers.push(...this.#disk.tierStats());
    const disk = this.#disk.counters();
    return {
      tiers,
      hits: this.#hits,
      misses: this.#misses,
      hitRate: rate(this.#hits, this.#misses),
      entries: this.#entries.size,
      pendingWrites: disk.pendingWrites,
      pendingBytes: disk.pendingBytes,
      droppedWrites: disk.droppedWrites,
      promotions: this.#promotions,
      demotions: this.#demotions,
      evictions: this.#evictions + disk.evictions,
      corrupt: disk.corrupt,
      errors: disk.errors,
    };
  }

  /**
   * The `n` cached keys with the most hits (counted since the block entered the cache, across
   * tiers; reset by a restart), most first; keys never hit are left out.
   */
  hottest(n: number): HotBlock[] {
    const top: Entry[] = [];
    if (n <= 0) return [];
    for (const e of this.#entries.values()) {
      if (e.hits === 0) continue;
      if (top.length === n && e.hits <= top[n - 1]!.hits) continue;
      let i = top.length < n ? top.length : n - 1;
      while (i > 0 && top[i - 1]!.hits < e.hits) {
        top[i] = top[i - 1]!;
        i--;
      }
      top[i] = e;
    }
    return top.map((e) => ({ key: e.key, frequency: e.hits }));
  }

  // --- memory tier -------------------------------------------------------------------------

  #memInsert(e: Entry, data: Uint8Array): void {
    e.mem = data;
    const evicted = this.#mem!.insert(e.hash, { tier: 0, location: 0, size: data.byteLength });
    for (const x of evicted) {
      const v = this.#table.byHash(x.key);
      if (v?.mem === undefined) continue;
      const block = v.mem;
      v.mem = undefined;
      this.#evictions++;
      if (
        v.disk === undefined && v.pending === undefined && v.hits > 1 &&
        this.#disk.enqueue(v, block)
      ) {
        this.#demotions++;
      }
      this.#table.gc(v);
    }
  }

  // --- disk tiers --------------------------------------------------------------------------

  async #getDisk(e: Entry, dir: DiskDir): Promise<Uint8Array | undefined> {
    dir.index.get(e.hash); // counts the access
    const data = this.#countDisk(e, dir, await this.#disk.readWhole(e, dir));
    if (data && dir.index.frequency(e.hash) >= this.#promoteThreshold) this.#promote(e, data);
    return data;
  }

  async #getDiskRange(
    e: Entry,
    dir: DiskDir,
    offset: number,
    length: number,
    into?: Uint8Array,
  ): Promise<Uint8Array | undefined> {
    dir.index.get(e.hash); // counts the access
    const data = this.#countDisk(e, dir, await this.#disk.readRange(e, dir, offset, length, into));
    if (data) this.#promoteLater(e, dir);
    return data;
  }

  /** Counts a disk-tier lookup (`data` undefined: a miss) and returns `data`. */
  #countDisk(e: Entry, dir: DiskDir, data: Uint8Array | undefined): Uint8Array | undefined {
    if (data === undefined) {
      dir.misses++;
      this.#misses++;
    } else {
      dir.hits++;
      this.#hits++;
      e.hits++;
    }
    return data;
  }

  /** Counts a lookup that no tier served. */
  #miss(e: Entry | undefined, key: string): void {
    this.#misses++;
    if (this.#disk.dirs.length > 0) this.#disk.placement(e?.hash ?? hashKey(key))[0]!.misses++;
  }

  /** Copies a block just read from disk into the memory tier, if it fits and is still cached. */
  #promote(e: Entry, data: Uint8Array): void {
    if (
      e.mem === undefined && this.#mem !== undefined && this.#table.live(e) &&
      data.byteLength <= this.#memoryBytes
    ) {
      this.#promotions++;
      this.#memInsert(e, data);
    }
  }

  /**
   * After a ranged disk hit: once the directory counted enough accesses, reads the whole block in
   * the background and copies it into memory (unless a whole-block read is already under way, or
   * the promotion budget of this window is spent).
   */
  #promoteLater(e: Entry, dir: DiskDir): void {
    if (
      e.mem !== undefined || this.#mem === undefined || this.#disk.reading(e) || e.disk !== dir ||
      (e.table !== undefined && e.table.dataLength > this.#memoryBytes) ||
      dir.index.frequency(e.hash) < this.#promoteThreshold || this.#promoting
    ) {
      return;
    }
    const now = performance.now();
    if (now - this.#promoteWindowStart > PROMOTE_WINDOW_MS) {
      this.#promoteWindowStart = now;
      this.#promotedInWindow = 0;
    }
    const size = e.table?.dataLength ?? e.diskSize;
    if (this.#promotedInWindow + size > this.#memoryBytes) return;
    this.#promotedInWindow += size;
    this.#promoting = true;
    this.#disk.track(
      this.#disk.readWhole(e, dir).then((data) => {
        if (data !== undefined) this.#promote(e, data);
      }).finally(() => this.#promoting = false),
    );
  }
}

/** A view of `[offset, offset + length)` of a cached block, or a RangeError beyond its end. */
function view(
  key: string,
  block: Uint8Array,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  if (offset + length > block.byteLength) {
    return Promise.reject(
      new RangeError(
        `Range ${offset}+${length} is beyond block "${key}" of ${block.byteLength} bytes`,
      ),
    );
  }
  return Promise.resolve(block.subarray(offset, offset + length));
}
