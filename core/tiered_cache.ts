/**
 * The block cache tiers of the data path: a memory tier and zero or more local disk directories,
 * each indexed by the Wasm S3-FIFO {@linkcode CacheIndex}. Blocks are immutable (a key always maps
 * to the same bytes), so the cache never invalidates, it only evicts and deletes.
 *
 * ## Decisions
 *
 * - **One index per tier.** The memory tier and every directory have their own `CacheIndex`
 *   (tier 0 = memory, tier 1 + i = `dirs[i]`), so each cap is enforced by its own index. A JS map
 *   from key to entry sits beside them: it holds the memory tier's buffers (a memory hit is one map
 *   lookup plus one Wasm call to count the access) and the key names the 64-bit index keys stand for.
 * - **Placement.** `put()` stores a block in memory (unless `fromWrite` and a disk tier exists, so a
 *   large write stream does not churn memory) and queues it for the disk tiers (write-behind, one
 *   writer, a bounded queue: when full the disk copy is skipped, never the caller blocked). A block
 *   goes to one directory, chosen from its key hash weighted by capacity, the others as fallbacks.
 *   Memory and disk are inclusive: a block may be in both.
 * - **Migration.** A disk hit copies the block into memory once the directory's index counted
 *   `promoteThreshold` accesses (default 2). A block evicted from memory that is not on disk is
 *   written to disk (demoted) if it was hit more than once, otherwise dropped. Blocks evicted from a
 *   directory are deleted.
 * - **Caps.** Memory bytes and directory bytes (file sizes, headers included) are the indexes'
 *   `maxBytes`; a disk block is entered in its index, and whatever that evicts deleted, before its
 *   file is written, so the directory never holds more than its cap. Before each disk write the
 *   directory's filesystem must keep `minFreeRatio` (default 0.1) of its size free after the write;
 *   if not, the least-accessed blocks of that directory are deleted first (with a little headroom),
 *   and the write is skipped if that cannot help. Free space comes from `statvfs(3)` through FFI
 *   (`df` as a fallback), cached for `freeSpaceTtlMs` and adjusted for our own writes and deletes.
 * - **Files.** `<dir>/<first 2 hex digits of xxh3(key)>/<escaped key>`: a 20-byte header (magic
 *   `SFC1`, key length u16, flags u16, data length u32, XXH3-64 of the data u64; little endian), the
 *   key, then the data. Written to a `.`-prefixed temp file in the same folder, then renamed, with no
 *   fsync: a torn or garbage file after a crash fails the size, key or checksum check, is deleted and
 *   counts as a miss, so the caller fetches the block again from the store.
 * - **Restart.** The disk index is not persisted: `open()` rebuilds it by scanning the directories
 *   (reading each file's header, oldest first), deleting leftover temp files and files that do not
 *   match their name. Access counts start again from zero.
 * - **Memory.** Cached buffers are shared, not copied: callers must not modify a buffer passed to
 *   `put()` or returned by `get()` (returned buffers may be views into a larger file buffer). Each
 *   cached block costs about 150 bytes of JS heap for its entry besides the Wasm index. Index sizes
 *   (entries) are the capacity over 4 KiB for memory and over 64 KiB for directories, at least 4096.
 *
 * @module
 */

import { blockKey as hashKey, CacheIndex, xxh3_64 } from "../wasm/mod.ts";

/** A local disk cache directory. */
export interface CacheDirOptions {
  /** The directory (created if missing). */
  path: string;
  /** Most bytes of cached files (headers included) kept in it. */
  capacityBytes: number;
  /**
   * Share of its filesystem to keep free (0 <= ratio < 1); 0.1 by default. Cached blocks are
   * deleted, least accessed first, to keep it.
   */
  minFreeRatio?: number;
}

/** Free and total bytes of a filesystem, as available to unprivileged users. */
export interface FreeSpace {
  /** Bytes available (`f_bavail * f_frsize`). */
  free: number;
  /** Size of the filesystem (`f_blocks * f_frsize`). */
  total: number;
}

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
  /** Reads the free space of the filesystem holding a path; {@linkcode statFreeSpace} by default. */
  freeSpace?: (path: string) => Promise<FreeSpace>;
  /** Receives disk errors and corrupt blocks (none of which fail a call); `console.error` by default. */
  onError?: (error: Error) => void;
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

/** Counters of a {@linkcode TieredCache}, for `slayerfs status`. */
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

interface DiskTier {
  readonly path: string;
  readonly tier: number;
  readonly capacity: number;
  readonly minFreeRatio: number;
  readonly index: CacheIndex;
  readonly subdirs: Set<string>;
  hits: number;
  misses: number;
  fs: FreeSpace | undefined;
  fsAt: number;
  fsFailed: boolean;
}

interface Entry {
  readonly key: string;
  readonly hash: bigint;
  /** Hits since the block entered the cache, across tiers. */
  hits: number;
  /** The block in the memory tier. */
  mem: Uint8Array | undefined;
  /** The block while queued for (or being written to) disk. */
  pending: Uint8Array | undefined;
  /** The directory whose index holds the block (its file may still be being written). */
  disk: DiskTier | undefined;
  /** Size of the disk file. */
  diskSize: number;
}

const HEADER = 20;
const MAGIC = 0x31434653; // "SFC1" little endian
const MAX_KEY_BYTES = 4096;
const MAX_NAME = 200;
const MAX_INDEX_ENTRIES = 1 << 22;
const MIN_INDEX_ENTRIES = 4096;
const MAX_QUEUE_ENTRIES = 4096;
const SCAN_CONCURRENCY = 8;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * A tiered block cache: memory, then local disk directories; see the module documentation for
 * the policy.
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
export class TieredCache {
  readonly #memoryBytes: number;
  readonly #mem: CacheIndex | undefined;
  readonly #dirs: DiskTier[];
  readonly #dirsCapacity: number;
  readonly #promoteThreshold: number;
  readonly #writeBehindBytes: number;
  readonly #freeSpaceTtlMs: number;
  readonly #freeSpace: (path: string) => Promise<FreeSpace>;
  readonly #onError: (error: Error) => void;
  readonly #entries = new Map<string, Entry>();
  readonly #byHash = new Map<bigint, Entry>();
  readonly #reads = new Map<Entry, Promise<Uint8Array | undefined>>();
  readonly #background = new Set<Promise<void>>();
  #queue: Array<{ e: Entry; data: Uint8Array }> = [];
  #queueBytes = 0;
  #draining = false;
  #drainDone: Promise<void> = Promise.resolve();
  #writing: { e: Entry; done: Promise<void> } | undefined;
  #closed = false;
  #memHits = 0;
  #memMisses = 0;
  #hits = 0;
  #misses = 0;
  #dropped = 0;
  #promotions = 0;
  #demotions = 0;
  #evictions = 0;
  #corrupt = 0;
  #errors = 0;

  private constructor(opts: TieredCacheOptions) {
    const {
      memoryBytes,
      dirs = [],
      promoteThreshold = 2,
      writeBehindBytes = 64 << 20,
      freeSpaceTtlMs = 2000,
    } = opts;
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
    const seen = new Set<string>();
    this.#dirs = dirs.map((d, i) => {
      const { path, capacityBytes, minFreeRatio = 0.1 } = d;
      if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 1) {
        throw new RangeError(
          `Cache dir capacity must be a positive integer, got "${capacityBytes}"`,
        );
      }
      if (!(minFreeRatio >= 0 && minFreeRatio < 1)) {
        throw new RangeError(`minFreeRatio must be in [0, 1), got "${minFreeRatio}"`);
      }
      if (seen.has(path)) throw new RangeError(`Cache dir "${path}" is listed twice`);
      seen.add(path);
      return {
        path,
        tier: i + 1,
        capacity: capacityBytes,
        minFreeRatio,
        index: new CacheIndex({
          maxEntries: indexEntries(capacityBytes, 65536),
          maxBytes: capacityBytes,
        }),
        subdirs: new Set<string>(),
        hits: 0,
        misses: 0,
        fs: undefined,
        fsAt: 0,
        fsFailed: false,
      };
    });
    if (this.#dirs.length > 254) throw new RangeError(`At most 254 cache dirs, got ${dirs.length}`);
    this.#dirsCapacity = this.#dirs.reduce((n, d) => n + d.capacity, 0);
    this.#promoteThreshold = promoteThreshold;
    this.#writeBehindBytes = writeBehindBytes;
    this.#freeSpaceTtlMs = freeSpaceTtlMs;
    this.#freeSpace = opts.freeSpace ?? statFreeSpace;
    this.#onError = opts.onError ?? ((e) => console.error(`slayerfs: block cache: ${e.message}`));
  }

  /**
   * Opens a cache: creates the directories and rebuilds their indexes from the files in them
   * (see the module documentation). Memory-only when `dirs` is empty.
   */
  static async open(opts: TieredCacheOptions): Promise<TieredCache> {
    const cache = new TieredCache(opts);
    for (const dir of cache.#dirs) await cache.#scan(dir);
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
    this.#misses++;
    if (this.#dirs.length > 0) this.#placement(e?.hash ?? hashKey(key))[0]!.misses++;
    return Promise.resolve(undefined);
  }

  /**
   * Caches a block read from the store, or with `fromWrite` one just written to it (which skips
   * the memory tier when there is a disk tier). Returns at once: the disk copy is written behind,
   * or skipped if the queue is full. Idempotent per key. `raw` is kept, not copied.
   */
  put(key: string, raw: Uint8Array, opts?: { fromWrite?: boolean }): void {
    if (this.#closed) return;
    let e = this.#entries.get(key);
    if (e === undefined) {
      const hash = hashKey(key);
      if (this.#byHash.has(hash)) return; // a 64-bit hash collision: leave the newcomer uncached
      e = { key, hash, hits: 0, mem: undefined, pending: undefined, disk: undefined, diskSize: 0 };
      this.#entries.set(key, e);
      this.#byHash.set(hash, e);
    }
    const toMemory = this.#mem !== undefined && raw.byteLength <= this.#memoryBytes &&
      !(opts?.fromWrite && this.#dirs.length > 0);
    // Queue first: the memory index may evict the newcomer at once (S3-FIFO probation).
    if (e.disk === undefined && e.pending === undefined) this.#enqueue(e, raw);
    if (toMemory && e.mem === undefined) this.#memInsert(e, raw);
    this.#gc(e);
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
    e.pending = undefined;
    const dir = e.disk;
    if (dir !== undefined) {
      dir.index.remove(e.hash);
      e.disk = undefined;
    }
    this.#gc(e);
    const writing = this.#writing;
    if (writing?.e === e) await writing.done;
    if (dir !== undefined) await this.#unlink(dir, e);
  }

  /** Waits until the write-behind queue is empty and background deletes are done. */
  async flush(): Promise<void> {
    while (this.#draining || this.#background.size > 0) {
      await this.#drainDone;
      await Promise.all(this.#background);
    }
  }

  /** Stops caching new blocks and waits for pending disk writes. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  /** Same as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Bytes held in memory and on disk. */
  get bytes(): number {
    return (this.#mem?.bytes ?? 0) + this.#dirs.reduce((n, d) => n + d.index.bytes, 0);
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
    for (const d of this.#dirs) {
      const t = tierStats(d.path, d.index, d.hits, d.misses);
      t.minFreeRatio = d.minFreeRatio;
      if (d.fs) {
        t.freeBytes = d.fs.free;
        t.totalBytes = d.fs.total;
      }
      tiers.push(t);
    }
    return {
      tiers,
      hits: this.#hits,
      misses: this.#misses,
      hitRate: rate(this.#hits, this.#misses),
      entries: this.#entries.size,
      pendingWrites: this.#queue.length,
      pendingBytes: this.#queueBytes,
      droppedWrites: this.#dropped,
      promotions: this.#promotions,
      demotions: this.#demotions,
      evictions: this.#evictions,
      corrupt: this.#corrupt,
      errors: this.#errors,
    };
  }

  /**
   * The `n` cached keys with the most hits (counted since the block entered the cache, across
   * tiers; reset by a restart), most first; keys never hit are left out.
   */
  hottest(n: number): Array<{ key: string; frequency: number }> {
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
      const v = this.#byHash.get(x.key);
      if (v?.mem === undefined) continue;
      const block = v.mem;
      v.mem = undefined;
      this.#evictions++;
      if (
        v.disk === undefined && v.pending === undefined && v.hits > 1 && this.#enqueue(v, block)
      ) {
        this.#demotions++;
      }
      this.#gc(v);
    }
  }

  // --- disk tiers --------------------------------------------------------------------------

  async #getDisk(e: Entry, dir: DiskTier): Promise<Uint8Array | undefined> {
    dir.index.get(e.hash);
    let read = this.#reads.get(e);
    if (read === undefined) {
      read = this.#readDisk(e, dir);
      this.#reads.set(e, read);
      const r = read;
      r.then(() => this.#reads.get(e) === r && this.#reads.delete(e));
    }
    const data = await read;
    if (data === undefined) {
      dir.misses++;
      this.#misses++;
      return undefined;
    }
    dir.hits++;
    this.#hits++;
    e.hits++;
    if (
      e.mem === undefined && this.#mem !== undefined && this.#entries.get(e.key) === e &&
      data.byteLength <= this.#memoryBytes &&
      dir.index.frequency(e.hash) >= this.#promoteThreshold
    ) {
      this.#promotions++;
      this.#memInsert(e, data);
    }
    return data;
  }

  async #readDisk(e: Entry, dir: DiskTier): Promise<Uint8Array | undefined> {
    const path = filePath(dir, e);
    let buf: Uint8Array;
    try {
      buf = await Deno.readFile(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) this.#report(`Cannot read "${path}"`, err);
      this.#dropDiskEntry(e, dir);
      return undefined;
    }
    const block = decodeBlockFile(buf, e.key);
    if (typeof block === "string") {
      this.#corrupt++;
      this.#report(`Dropped corrupt cached block "${e.key}" in "${path}": ${block}`);
      if (this.#dropDiskEntry(e, dir)) this.#track(this.#unlink(dir, e));
      return undefined;
    }
    return block;
  }

  /** Forgets `e`'s disk copy in `dir` if it is still there; true if it was. */
  #dropDiskEntry(e: Entry, dir: DiskTier): boolean {
    if (e.disk !== dir) return false;
    dir.index.remove(e.hash);
    e.disk = undefined;
    this.#gc(e);
    return true;
  }

  #enqueue(e: Entry, data: Uint8Array): boolean {
    if (this.#dirs.length === 0 || this.#closed) return false;
    if (
      this.#queueBytes + data.byteLength > this.#writeBehindBytes ||
      this.#queue.length >= MAX_QUEUE_ENTRIES
    ) {
      this.#dropped++;
      return false;
    }
    e.pending = data;
    this.#queue.push({ e, data });
    this.#queueBytes += data.byteLength;
    if (!this.#draining) {
      this.#draining = true;
      this.#drainDone = this.#drain();
    }
    return true;
  }

  async #drain(): Promise<void> {
    try {
      for (;;) {
        const item = this.#queue.shift();
        if (item === undefined) return;
        this.#queueBytes -= item.data.byteLength;
        if (item.e.pending !== item.data) continue; // deleted meanwhile
        const done = this.#write(item.e, item.data).catch((err) =>
          this.#report(`Cannot cache block "${item.e.key}"`, err)
        );
        this.#writing = { e: item.e, done };
        await done;
        this.#writing = undefined;
        if (item.e.pending === item.data) {
          item.e.pending = undefined;
          this.#gc(item.e);
        }
      }
    } finally {
      this.#draining = false;
    }
  }

  /** Writes a queued block to the first directory with room for it. */
  async #write(e: Entry, data: Uint8Array): Promise<void> {
    const keyBytes = encoder.encode(e.key);
    const size = HEADER + keyBytes.length + data.byteLength;
    if (keyBytes.length > MAX_KEY_BYTES) {
      this.#dropped++;
      return;
    }
    for (const dir of this.#placement(e.hash)) {
      if (size > dir.capacity || !(await this.#makeRoom(dir, size))) continue;
      if (e.pending !== data || this.#entries.get(e.key) !== e) return; // deleted meanwhile
      const evicted = dir.index.insert(e.hash, { tier: dir.tier, location: 0, size });
      e.disk = dir;
      e.diskSize = size;
      const deletes: Promise<void>[] = [];
      for (const x of evicted) {
        if (x.key === e.hash) e.disk = undefined;
        else deletes.push(this.#evictDisk(dir, x.key));
      }
      await Promise.all(deletes);
      if (e.disk !== dir) continue;
      const path = filePath(dir, e);
      try {
        await this.#writeFile(dir, path, keyBytes, data);
      } catch (err) {
        this.#dropDiskEntry(e, dir);
        throw err;
      }
      if (dir.fs) dir.fs.free -= size;
      // Evicted or deleted while its file was being written: delete it now.
      if (e.disk !== dir || this.#entries.get(e.key) !== e) await this.#unlinkPath(dir, path, size);
      return;
    }
    this.#dropped++;
  }

  async #writeFile(
    dir: DiskTier,
    path: string,
    keyBytes: Uint8Array,
    data: Uint8Array,
  ): Promise<void> {
    const slash = path.lastIndexOf("/");
    const sub = path.slice(0, slash);
    if (!dir.subdirs.has(sub)) {
      await Deno.mkdir(sub, { recursive: true });
      dir.subdirs.add(sub);
    }
    const head = new Uint8Array(HEADER + keyBytes.length);
    const v = new DataView(head.buffer);
    v.setUint32(0, MAGIC, true);
    v.setUint16(4, keyBytes.length, true);
    v.setUint16(6, 0, true);
    v.setUint32(8, data.byteLength, true);
    v.setBigUint64(12, xxh3_64(data), true);
    head.set(keyBytes, HEADER);
    const tmp = `${sub}/.${crypto.randomUUID()}.tmp`;
    try {
      const f = await Deno.open(tmp, { write: true, createNew: true });
      try {
        await writeAll(f, head);
        await writeAll(f, data);
      } finally {
        f.close();
      }
      await Deno.rename(tmp, path);
    } catch (err) {
      await Deno.remove(tmp).catch(() => {});
      throw err;
    }
  }

  /** Deletes the file of an entry the index of `dir` evicted. */
  async #evictDisk(dir: DiskTier, hash: bigint): Promise<void> {
    const e = this.#byHash.get(hash);
    if (e === undefined || e.disk !== dir) return;
    e.disk = undefined;
    this.#evictions++;
    this.#gc(e);
    await this.#unlink(dir, e);
  }

  #unlink(dir: DiskTier, e: Entry): Promise<void> {
    return this.#unlinkPath(dir, filePath(dir, e), e.diskSize);
  }

  async #unlinkPath(dir: DiskTier, path: string, size: number): Promise<void> {
    try {
      await Deno.remove(path);
      if (dir.fs) dir.fs.free += size;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) this.#report(`Cannot delete "${path}"`, err);
    }
  }

  /**
   * Makes sure writing `size` more bytes to `dir` keeps its free-space ratio, deleting the least
   * accessed blocks of `dir` if needed. False if the write must be skipped.
   */
  async #makeRoom(dir: DiskTier, size: number): Promise<boolean> {
    if (dir.minFreeRatio === 0) return true;
    const fs = await this.#readFreeSpace(dir);
    if (fs === undefined) return true; // unknown: rely on the byte cap
    const floor = dir.minFreeRatio * fs.total;
    const shortBy = floor - (fs.free - size);
    if (shortBy <= 0) return true;
    const mine = dir.index.bytes;
    // Without the write, we may still have to give space back.
    const target = mine >= shortBy ? shortBy + Math.floor(mine / 64) : floor - fs.free;
    if (target > 0) {
      const victims: Array<{ hash: bigint; frequency: number; size: number }> = [];
      for (const [hash, slot] of dir.index.entries()) {
        victims.push({ hash, frequency: dir.index.frequency(hash), size: slot.size });
      }
      victims.sort((a, b) => a.frequency - b.frequency);
      let freed = 0;
      const deletes: Promise<void>[] = [];
      for (const v of victims) {
        if (freed >= target) break;
        dir.index.remove(v.hash);
        freed += v.size;
        deletes.push(this.#evictDisk(dir, v.hash));
      }
      await Promise.all(deletes);
    }
    return mine >= shortBy;
  }

  async #readFreeSpace(dir: DiskTier): Promise<FreeSpace | undefined> {
    const now = Date.now();
    if (dir.fs && now - dir.fsAt < this.#freeSpaceTtlMs) return dir.fs;
    try {
      const { free, total } = await this.#freeSpace(dir.path);
      dir.fs = { free, total };
      dir.fsAt = now;
      dir.fsFailed = false;
    } catch (err) {
      if (!dir.fsFailed) this.#report(`Cannot read the free space of "${dir.path}"`, err);
      dir.fsFailed = true;
      dir.fs = undefined;
    }
    return dir.fs;
  }

  /** The directories to try for a block, the preferred one (by hash, weighted by capacity) first. */
  #placement(hash: bigint): DiskTier[] {
    const dirs = this.#dirs;
    if (dirs.length <= 1) return dirs;
    let x = Number(hash & 0xffffffffn) / 2 ** 32 * this.#dirsCapacity;
    let i = 0;
    while (i < dirs.length - 1 && x >= dirs[i]!.capacity) x -= dirs[i++]!.capacity;
    return [...dirs.slice(i), ...dirs.slice(0, i)];
  }

  /** Rebuilds the index of `dir` from its files, oldest first. */
  async #scan(dir: DiskTier): Promise<void> {
    await Deno.mkdir(dir.path, { recursive: true });
    const found: Array<{ e: Entry; mtime: number }> = [];
    const files: string[] = [];
    for await (const d of Deno.readDir(dir.path)) {
      if (!d.isDirectory || !/^[0-9a-f]{2}$/.test(d.name)) continue;
      const sub = `${dir.path}/${d.name}`;
      dir.subdirs.add(sub);
      for await (const f of Deno.readDir(sub)) {
        if (f.isFile) files.push(`${sub}/${f.name}`);
      }
    }
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const path = files[next++]!;
        const name = path.slice(path.lastIndexOf("/") + 1);
        const head = name.startsWith(".")
          ? undefined
          : await readHeader(path).catch(() => undefined);
        if (head === undefined) {
          await Deno.remove(path).catch(() => {});
          continue;
        }
        const hash = hashKey(head.key);
        if (this.#byHash.has(hash) || filePath(dir, { key: head.key, hash }) !== path) {
          await Deno.remove(path).catch(() => {});
          continue;
        }
        const e: Entry = {
          key: head.key,
          hash,
          hits: 0,
          mem: undefined,
          pending: undefined,
          disk: dir,
          diskSize: head.size,
        };
        this.#entries.set(e.key, e);
        this.#byHash.set(hash, e);
        found.push({ e, mtime: head.mtime });
      }
    };
    await Promise.all(Array.from({ length: SCAN_CONCURRENCY }, worker));
    found.sort((a, b) => a.mtime - b.mtime);
    const deletes: Promise<void>[] = [];
    for (const { e } of found) {
      if (e.disk !== dir) continue;
      const evicted = dir.index.insert(e.hash, { tier: dir.tier, location: 0, size: e.diskSize });
      for (const x of evicted) deletes.push(this.#evictDisk(dir, x.key));
    }
    await Promise.all(deletes);
    if (dir.index.size > 0 || dir.minFreeRatio > 0) await this.#makeRoom(dir, 0);
  }

  // --- helpers -----------------------------------------------------------------------------

  #gc(e: Entry): void {
    if (e.mem !== undefined || e.pending !== undefined || e.disk !== undefined) return;
    if (this.#entries.get(e.key) === e) {
      this.#entries.delete(e.key);
      this.#byHash.delete(e.hash);
    }
  }

  #track(p: Promise<void>): void {
    this.#background.add(p);
    p.finally(() => this.#background.delete(p));
  }

  #report(message: string, cause?: unknown): void {
    this.#errors++;
    try {
      this.#onError(new Error(message, cause === undefined ? undefined : { cause }));
    } catch {
      // a failing logger must not break the cache
    }
  }
}

// --- files -----------------------------------------------------------------------------------

function indexEntries(capacity: number, perEntry: number): number {
  return Math.min(MAX_INDEX_ENTRIES, Math.max(MIN_INDEX_ENTRIES, Math.ceil(capacity / perEntry)));
}

function rate(hits: number, misses: number): number {
  return hits + misses === 0 ? 0 : hits / (hits + misses);
}

function tierStats(name: string, index: CacheIndex, hits: number, misses: number): TierStats {
  return {
    name,
    entries: index.size,
    bytes: index.bytes,
    capacity: index.maxBytes,
    hits,
    misses,
    hitRate: rate(hits, misses),
  };
}

/**
 * The file name of a key: bytes other than `A-Z a-z 0-9 . _ -` escaped as `%XX` (a leading `.`
 * too, so that only temp files start with a dot), `/` written as `+`; long names are cut and end
 * with the key's hash.
 */
function fileName(key: string, hash: bigint): string {
  let out = "";
  for (const b of encoder.encode(key)) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9_-]/.test(c) || (c === "." && out !== "")) out += c;
    else if (c === "/") out += "+";
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  if (out.length > MAX_NAME) out = `${out.slice(0, MAX_NAME - 17)}~${hash.toString(16)}`;
  return out;
}

function filePath(dir: DiskTier, e: { key: string; hash: bigint }): string {
  const sub = (e.hash >> 56n).toString(16).padStart(2, "0");
  return `${dir.path}/${sub}/${fileName(e.key, e.hash)}`;
}

/** The data of a cached block file, or why it is not valid. */
function decodeBlockFile(buf: Uint8Array, key: string): Uint8Array | string {
  if (buf.length < HEADER) return `file of ${buf.length} bytes is shorter than its header`;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (v.getUint32(0, true) !== MAGIC) return "bad magic";
  const keyLen = v.getUint16(4, true);
  const dataLen = v.getUint32(8, true);
  if (buf.length !== HEADER + keyLen + dataLen) {
    return `size ${buf.length} does not match header (${HEADER + keyLen + dataLen})`;
  }
  let stored: string;
  try {
    stored = decoder.decode(buf.subarray(HEADER, HEADER + keyLen));
  } catch {
    return "key is not UTF-8";
  }
  if (stored !== key) return `file holds key "${stored}"`;
  const data = buf.subarray(HEADER + keyLen);
  if (xxh3_64(data) !== v.getBigUint64(12, true)) return "checksum mismatch";
  return data;
}

/** The key, size and mtime of a cached block file, if its header is sound. */
async function readHeader(
  path: string,
): Promise<{ key: string; size: number; mtime: number } | undefined> {
  const f = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(HEADER);
    if (!(await readFull(f, head))) return undefined;
    const v = new DataView(head.buffer);
    if (v.getUint32(0, true) !== MAGIC) return undefined;
    const keyLen = v.getUint16(4, true);
    const size = HEADER + keyLen + v.getUint32(8, true);
    const keyBytes = new Uint8Array(keyLen);
    if (keyLen > MAX_KEY_BYTES || !(await readFull(f, keyBytes))) return undefined;
    const st = await f.stat();
    if (st.size !== size) return undefined;
    return { key: decoder.decode(keyBytes), size, mtime: st.mtime?.getTime() ?? 0 };
  } finally {
    f.close();
  }
}

async function readFull(f: Deno.FsFile, buf: Uint8Array): Promise<boolean> {
  let off = 0;
  while (off < buf.length) {
    const n = await f.read(buf.subarray(off));
    if (n === null) return false;
    off += n;
  }
  return true;
}

async function writeAll(f: Deno.FsFile, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) off += await f.write(buf.subarray(off));
}

// --- free space ------------------------------------------------------------------------------

const LIBC_SYMBOLS = {
  // int statvfs(const char *path, struct statvfs *buf)
  statvfs: { parameters: ["buffer", "buffer"], result: "i32", nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

let libc: Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | null | undefined;

function openLibc(): Deno.DynamicLibrary<typeof LIBC_SYMBOLS> | null {
  if (libc === undefined) {
    try {
      libc = Deno.dlopen(Deno.env.get("SLAYERFS_LIBC") ?? "libc.so.6", LIBC_SYMBOLS);
    } catch {
      libc = null; // no FFI permission or no glibc: use df
    }
  }
  return libc;
}

/**
 * Free and total bytes of the filesystem holding `path`: `statvfs(3)` from libc through FFI
 * (`SLAYERFS_LIBC` overrides the library path), or `df -Pk` when FFI is unavailable.
 *
 * @example
 * ```ts
 * import { statFreeSpace } from "./tiered_cache.ts";
 * import { ok } from "node:assert/strict";
 *
 * const { free, total } = await statFreeSpace(Deno.cwd());
 * ok(total > 0 && free <= total);
 * ```
 */
export async function statFreeSpace(path: string): Promise<FreeSpace> {
  const lib = openLibc();
  if (lib !== null) {
    const buf = new Uint8Array(128); // struct statvfs is 112 bytes on 64-bit glibc
    const cpath = encoder.encode(`${path}\0`);
    if ((await lib.symbols.statvfs(cpath, buf)) !== 0) {
      throw new Error(`statvfs failed for "${path}"`);
    }
    const v = new DataView(buf.buffer);
    const frsize = Number(v.getBigUint64(8, true)); // f_frsize
    return {
      total: Number(v.getBigUint64(16, true)) * frsize, // f_blocks
      free: Number(v.getBigUint64(32, true)) * frsize, // f_bavail
    };
  }
  const out = await new Deno.Command("df", { args: ["-Pk", path], stdout: "piped", stderr: "null" })
    .output();
  const fields = new TextDecoder().decode(out.stdout).trim().split("\n")[1]?.trim().split(/\s+/);
  const total = Number(fields?.[1]) * 1024;
  const free = Number(fields?.[3]) * 1024;
  if (!out.success || !Number.isFinite(total) || !Number.isFinite(free)) {
    throw new Error(`df failed for "${path}"`);
  }
  return { free, total };
}
