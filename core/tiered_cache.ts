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
 *   `promoteThreshold` accesses (default 2); after a ranged read the whole block is read and
 *   verified in the background, the range itself is served from disk. Those background reads run
 *   one at a time and copy at most the memory tier's size per 10 s, so a working set larger than
 *   memory is served by ranged reads instead of thrashing whole blocks through memory. A block
 *   evicted from memory that is not on disk is written to disk (demoted) if it was hit more than
 *   once, otherwise dropped. Blocks evicted from a directory are deleted.
 * - **Caps.** Memory bytes and directory bytes (file sizes, headers included) are the indexes'
 *   `maxBytes`; a disk block is entered in its index, and whatever that evicts deleted, before its
 *   file is written, so the directory never holds more than its cap. Before each disk write the
 *   directory's filesystem must keep `minFreeRatio` (default 0.1) of its size free after the write;
 *   if not, the least-accessed blocks of that directory are deleted first (with a little headroom),
 *   and the write is skipped if that cannot help. Free space comes from `statvfs(3)` through FFI
 *   (`df` as a fallback), cached for `freeSpaceTtlMs` and adjusted for our own writes and deletes.
 * - **Files.** `<dir>/<first 2 hex digits of xxh3(key)>/<escaped key>`: a 20-byte header (magic
 *   `SFC2`, key length u16, log2 of the segment size u8 (16), a zero byte, data length u32, XXH3-64
 *   of the header, key and table with this field zeroed u64; little endian), the key, a table of
 *   XXH3-64s (u64 each), one per 64 KiB segment of the data (the last one may be short), then the
 *   data, which therefore starts at `20 + key length + 8 * ceil(data length / 64 KiB)`. Written to
 *   a `.`-prefixed temp file in the same folder, then renamed, with no fsync: a torn or garbage file
 *   after a crash fails the size, key or checksum checks, is deleted and counts as a miss, so the
 *   caller fetches the block again from the store. Files of the older format (`SFC1`, one checksum
 *   over the whole block) fail the magic check and are deleted when the cache opens.
 * - **Ranged reads.** `getRange()` reads from disk only the segments covering the range (and, on
 *   the first read of a block, its header and table, in parallel; the table is then kept on the
 *   entry) and verifies each segment. Files are opened with libc `open`/`pread` through FFI, each
 *   call one hop to a worker thread, and up to 128 descriptors stay open in an LRU; a descriptor
 *   is closed when its file is evicted, deleted or found corrupt (after the reads using it end,
 *   so a descriptor number is never reused under a read) and on `close()`. Without FFI each ranged
 *   read opens the file with Deno.
 * - **Restart.** The disk index is not persisted: `open()` rebuilds it by scanning the directories
 *   (reading and verifying each file's header, key and table, oldest first), deleting leftover temp
 *   files and files that do not match their name. Access counts start again from zero.
 * - **Memory.** Cached buffers are shared, not copied: callers must not modify a buffer passed to
 *   `put()` or returned by `get()` or `getRange()` (returned buffers may be views into a larger
 *   buffer). Each cached block costs about 150 bytes of JS heap for its entry besides the Wasm
 *   index, plus about 100 bytes and 8 per 64 KiB once its checksum table was read. Index sizes
 *   (entries) are the capacity over 4 KiB for memory and over 64 KiB for directories, at least 4096.
 *
 * @module
 */

import { blockKey as hashKey, CacheIndex, xxh3_64 } from "../wasm/mod.ts";
import { CACHE_SEGMENT, segmentSums } from "./block_codec.ts";

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
  /**
   * Whether ranged disk reads go through libc (`open`/`pread` by FFI, with up to 128 files kept
   * open); true by default. False, or when FFI is unavailable, opens the file with Deno for each
   * ranged read (slower).
   */
  ffi?: boolean;
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
  /** The layout and checksum table of the disk file, once read. */
  table: BlockTable | undefined;
}

/** Where the data of a block file starts, its length and the checksums of its segments. */
interface BlockTable {
  readonly dataOffset: number;
  readonly dataLength: number;
  /** XXH3-64 of each segment, u64 little endian. */
  readonly sums: DataView;
}

/** A file descriptor of the LRU of open block files. */
interface OpenFile {
  readonly e: Entry;
  /** Resolves to the descriptor, or -1 if `open` failed. */
  readonly opening: Promise<number>;
  /** The descriptor once open and until closed, else -1. */
  fd: number;
  /** Reads in flight on the descriptor. */
  users: number;
  /** Out of the LRU: closed when its last user is done. */
  retired: boolean;
}

/** Reads up to `buf.length` bytes at `pos`, fewer only at end of file; rejects on an error. */
type ReadAt = (buf: Uint8Array, pos: number) => Promise<number>;

const HEADER = 20;
const MAGIC = 0x32434653; // "SFC2" little endian
const SEGMENT = CACHE_SEGMENT; // a power of two
const SEGMENT_SHIFT = 31 - Math.clz32(SEGMENT);
const MAX_OPEN_FILES = 128;
const PROMOTE_WINDOW_MS = 10_000; // see #promoteLater
const O_RDONLY_CLOEXEC = 0o2000000; // O_RDONLY | O_CLOEXEC on Linux
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
  readonly #lib: Libc | null;
  /** Open block files, least recently used first. */
  readonly #files = new Map<Entry, OpenFile>();
  readonly #background = new Set<Promise<void>>();
  #queue: Array<{ e: Entry; data: Uint8Array; sums: Uint8Array | undefined }> = [];
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
  // Promotions after ranged reads: one whole-block read at a time, and at most the memory tier's
  // size per PROMOTE_WINDOW_MS, so that a working set larger than memory (random reads over a big
  // file) does not turn every ranged read into a whole-block read that memory evicts at once.
  #promoting = false;
  #roomWaiters: Array<{ bytes: number; resolve: () => void }> = [];
  #promoteWindowStart = 0;
  #promotedInWindow = 0;
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
    this.#lib = this.#dirs.length > 0 && opts.ffi !== false ? openLibc() : null;
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
    this.#miss(e, key);
    return Promise.resolve(undefined);
  }

  /**
   * Bytes `[offset, offset + length)` of the block of `key`, or undefined; hits and misses count
   * as for {@linkcode get}. From memory or the write-behind queue a view of the cached block; from
   * disk only the 64 KiB segments covering the range are read and verified (a corrupt block is
   * deleted and reported as a miss), and a block read often enough is copied into memory in the
   * background. The range must lie within the block (else a RangeError).
   */
  getRange(key: string, offset: number, length: number): Promise<Uint8Array | undefined> {
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
    if (e?.disk !== undefined) return this.#getDiskRange(e, e.disk, offset, length);
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
    let e = this.#entries.get(key);
    if (e === undefined) {
      const hash = hashKey(key);
      if (this.#byHash.has(hash)) return; // a 64-bit hash collision: leave the newcomer uncached
      e = {
        key,
        hash,
        hits: 0,
        mem: undefined,
        pending: undefined,
        disk: undefined,
        diskSize: 0,
        table: undefined,
      };
      this.#entries.set(key, e);
      this.#byHash.set(hash, e);
    }
    const toMemory = this.#mem !== undefined && raw.byteLength <= this.#memoryBytes &&
      !(opts?.fromWrite && this.#dirs.length > 0);
    // Queue first: the memory index may evict the newcomer at once (S3-FIFO probation).
    if (e.disk === undefined && e.pending === undefined && !opts?.memoryOnly) {
      this.#enqueue(e, raw, opts?.segmentSums);
    }
    if (toMemory && e.mem === undefined) this.#memInsert(e, raw);
    this.#gc(e);
  }

  /** True when there is a disk tier: {@linkcode put} can use precomputed segment checksums. */
  get wantsSegmentSums(): boolean {
    return this.#dirs.length > 0;
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
      this.#forgetFile(e);
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

  /**
   * Stops caching new blocks, waits for pending disk writes and closes the open block files.
   * Idempotent; lookups still work (without keeping files open).
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#wakeRoomWaiters();
    await this.flush();
    for (const f of [...this.#files.values()]) this.#retire(f);
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
    dir.index.get(e.hash); // counts the access
    const data = this.#countDisk(e, dir, await this.#readWhole(e, dir));
    if (data && dir.index.frequency(e.hash) >= this.#promoteThreshold) this.#promote(e, data);
    return data;
  }

  async #getDiskRange(
    e: Entry,
    dir: DiskTier,
    offset: number,
    length: number,
  ): Promise<Uint8Array | undefined> {
    dir.index.get(e.hash); // counts the access
    const data = this.#countDisk(e, dir, await this.#readRange(e, dir, offset, length));
    if (data) this.#promoteLater(e, dir);
    return data;
  }

  /** Counts a disk-tier lookup (`data` undefined: a miss) and returns `data`. */
  #countDisk(e: Entry, dir: DiskTier, data: Uint8Array | undefined): Uint8Array | undefined {
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
    if (this.#dirs.length > 0) this.#placement(e?.hash ?? hashKey(key))[0]!.misses++;
  }

  /** Copies a block just read from disk into the memory tier, if it fits and is still cached. */
  #promote(e: Entry, data: Uint8Array): void {
    if (
      e.mem === undefined && this.#mem !== undefined && this.#entries.get(e.key) === e &&
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
  #promoteLater(e: Entry, dir: DiskTier): void {
    if (
      e.mem !== undefined || this.#mem === undefined || this.#reads.has(e) || e.disk !== dir ||
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
    this.#track(
      this.#readWhole(e, dir).then((data) => {
        if (data !== undefined) this.#promote(e, data);
      }).finally(() => this.#promoting = false),
    );
  }

  /** The whole block of `e` from `dir`, verified; concurrent reads of a block share one. */
  #readWhole(e: Entry, dir: DiskTier): Promise<Uint8Array | undefined> {
    let read = this.#reads.get(e);
    if (read === undefined) {
      read = this.#readDisk(e, dir);
      this.#reads.set(e, read);
      const r = read;
      r.then(() => this.#reads.get(e) === r && this.#reads.delete(e));
    }
    return read;
  }

  async #readDisk(e: Entry, dir: DiskTier): Promise<Uint8Array | undefined> {
    const path = filePath(dir, e);
    let buf: Uint8Array;
    try {
      buf = await Deno.readFile(path);
    } catch (err) {
      this.#readFailed(e, dir, path, err);
      return undefined;
    }
    const block = decodeBlockFile(buf, e.key);
    if (typeof block === "string") {
      this.#dropCorrupt(e, dir, path, block);
      return undefined;
    }
    if (e.disk === dir) e.table = block.table;
    return block.data;
  }

  /**
   * Bytes `[offset, offset + length)` of the block of `e` from its file in `dir`, verified:
   * through a descriptor of the LRU (libc), else a Deno file handle.
   */
  async #readRange(
    e: Entry,
    dir: DiskTier,
    offset: number,
    length: number,
  ): Promise<Uint8Array | undefined> {
    const path = filePath(dir, e);
    const lib = this.#lib;
    if (lib !== null) {
      const f = this.#acquire(lib, e, path);
      try {
        const fd = await f.opening;
        if (fd >= 0) {
          const readAt = (buf: Uint8Array, pos: number) => preadFull(lib, fd, buf, pos);
          return await this.#readVerified(e, dir, path, readAt, offset, length);
        }
        this.#retire(f); // let Deno tell why it cannot be opened
      } finally {
        this.#release(f);
      }
    }
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (err) {
      this.#readFailed(e, dir, path, err);
      return undefined;
    }
    try {
      return await this.#readVerified(e, dir, path, seekReader(file), offset, length);
    } finally {
      file.close();
    }
  }

  /**
   * Reads the segments of `e`'s file covering `[offset, offset + length)` (and its header and
   * table if not known yet, in parallel) and verifies them; a corrupt or unreadable file is
   * dropped.
   */
  async #readVerified(
    e: Entry,
    dir: DiskTier,
    path: string,
    readAt: ReadAt,
    offset: number,
    length: number,
  ): Promise<Uint8Array | undefined> {
    let table = e.table;
    const dataOffset = table?.dataOffset ??
      dataOffsetOf(encoder.encode(e.key).length, e.diskSize);
    const dataLength = table?.dataLength ?? e.diskSize - dataOffset;
    if (offset + length > dataLength) {
      throw new RangeError(
        `Range ${offset}+${length} is beyond block "${e.key}" of ${dataLength} bytes`,
      );
    }
    if (length === 0) return new Uint8Array(0);
    const first = Math.floor(offset / SEGMENT);
    const start = first * SEGMENT;
    const end = Math.min(dataLength, Math.ceil((offset + length) / SEGMENT) * SEGMENT);
    const buf = new Uint8Array(end - start);
    const prefix = table === undefined ? new Uint8Array(dataOffset) : undefined;
    const reads = [readAt(buf, dataOffset + start)];
    if (prefix !== undefined) reads.push(readAt(prefix, 0));
    const got = await settleReads(reads);
    let why: string | undefined;
    if (typeof got === "string") why = got;
    else if (got[0]! < buf.length || (prefix !== undefined && got[1]! < prefix.length)) {
      why = "file is shorter than its header says";
    }
    if (why === undefined && prefix !== undefined) {
      const head = decodePrefix(prefix);
      if (typeof head === "string") why = head;
      else if (head.key !== e.key) why = `file holds key "${head.key}"`;
      else if (head.table.dataLength !== dataLength) why = "size does not match header";
      else table = head.table;
    }
    why ??= verifySegments(table!, buf, first);
    if (why !== undefined) {
      this.#dropCorrupt(e, dir, path, why);
      return undefined;
    }
    if (prefix !== undefined && e.disk === dir) e.table = table;
    return buf.subarray(offset - start, offset - start + length);
  }

  /** A file that cannot be opened or read: dropped (reported unless it vanished). */
  #readFailed(e: Entry, dir: DiskTier, path: string, err: unknown): void {
    if (!(err instanceof Deno.errors.NotFound)) this.#report(`Cannot read "${path}"`, err);
    this.#dropDiskEntry(e, dir);
  }

  /** Counts, reports and deletes a corrupt block file, unless it was dropped meanwhile. */
  #dropCorrupt(e: Entry, dir: DiskTier, path: string, why: string): void {
    if (e.disk !== dir) return;
    this.#corrupt++;
    this.#report(`Dropped corrupt cached block "${e.key}" in "${path}": ${why}`);
    if (this.#dropDiskEntry(e, dir)) this.#track(this.#unlink(dir, e));
  }

  /** Forgets `e`'s disk copy in `dir` if it is still there; true if it was. */
  #dropDiskEntry(e: Entry, dir: DiskTier): boolean {
    if (e.disk !== dir) return false;
    dir.index.remove(e.hash);
    e.disk = undefined;
    this.#forgetFile(e);
    this.#gc(e);
    return true;
  }

  // --- open files --------------------------------------------------------------------------

  /** The open file of `e` from the LRU, opened if needed; to be released after use. */
  #acquire(lib: Libc, e: Entry, path: string): OpenFile {
    let f = this.#files.get(e);
    if (f !== undefined) {
      this.#files.delete(e);
      this.#files.set(e, f);
    } else {
      const opening = lib.symbols.open(encoder.encode(`${path}\0`), O_RDONLY_CLOEXEC, 0).then(
        (fd) => (file.fd = fd),
        () => -1,
      );
      const file: OpenFile = { e, opening, fd: -1, users: 0, retired: this.#closed };
      f = file;
      if (!this.#closed) {
        this.#files.set(e, f);
        if (this.#files.size > MAX_OPEN_FILES) this.#retire(this.#files.values().next().value!);
      }
    }
    f.users++;
    return f;
  }

  #release(f: OpenFile): void {
    f.users--;
    if (f.retired && f.users === 0) this.#closeFd(f);
  }

  /** Takes `f` out of the LRU; its descriptor is closed once no read uses it. */
  #retire(f: OpenFile): void {
    if (this.#files.get(f.e) === f) this.#files.delete(f.e);
    f.retired = true;
    if (f.users === 0) this.#closeFd(f);
  }

  #closeFd(f: OpenFile): void {
    if (f.fd >= 0) this.#lib?.symbols.close(f.fd);
    f.fd = -1;
  }

  /** Closes the open file of `e` (after its reads) and forgets its table: its file is going. */
  #forgetFile(e: Entry): void {
    e.table = undefined;
    const f = this.#files.get(e);
    if (f !== undefined) this.#retire(f);
  }

  #enqueue(e: Entry, data: Uint8Array, sums?: Uint8Array): boolean {
    if (this.#dirs.length === 0 || this.#closed) return false;
    if (
      this.#queueBytes + data.byteLength > this.#writeBehindBytes ||
      this.#queue.length >= MAX_QUEUE_ENTRIES
    ) {
      this.#dropped++;
      return false;
    }
    e.pending = data;
    this.#queue.push({ e, data, sums });
    this.#queueBytes += data.byteLength;
    if (!this.#draining) {
      this.#draining = true;
      this.#drainDone = this.#drain();
    }
    return true;
  }

  /**
   * Resolves once the write-behind queue has room for `bytes` more (at once without a disk tier).
   * Background fetches (prefetch, predictive replay) wait here, so that what they fetch reaches
   * the disk tier instead of being dropped by a full queue and fetched again later.
   */
  room(bytes: number): Promise<void> {
    if (this.#hasRoom(bytes)) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push({ bytes, resolve }));
  }

  #hasRoom(bytes: number): boolean {
    return this.#dirs.length === 0 || this.#closed ||
      (this.#queueBytes + bytes <= this.#writeBehindBytes &&
        this.#queue.length < MAX_QUEUE_ENTRIES);
  }

  #wakeRoomWaiters(): void {
    while (this.#roomWaiters.length > 0 && this.#hasRoom(this.#roomWaiters[0]!.bytes)) {
      this.#roomWaiters.shift()!.resolve();
    }
  }

  async #drain(): Promise<void> {
    try {
      for (;;) {
        const item = this.#queue.shift();
        if (item === undefined) return;
        this.#queueBytes -= item.data.byteLength;
        this.#wakeRoomWaiters();
        if (item.e.pending !== item.data) continue; // deleted meanwhile
        const done = this.#write(item.e, item.data, item.sums).catch((err) =>
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
      this.#wakeRoomWaiters();
    }
  }

  /** Writes a queued block to the first directory with room for it. */
  async #write(e: Entry, data: Uint8Array, sums?: Uint8Array): Promise<void> {
    const keyBytes = encoder.encode(e.key);
    const size = dataOffsetFor(keyBytes.length, data.byteLength) + data.byteLength;
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
        await this.#writeFile(dir, path, keyBytes, data, sums);
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
    sums?: Uint8Array,
  ): Promise<void> {
    const slash = path.lastIndexOf("/");
    const sub = path.slice(0, slash);
    if (!dir.subdirs.has(sub)) {
      await Deno.mkdir(sub, { recursive: true });
      dir.subdirs.add(sub);
    }
    const head = encodePrefix(keyBytes, data, sums);
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
    this.#forgetFile(e);
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
          table: undefined,
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

function segmentCount(dataLength: number): number {
  return Math.ceil(dataLength / SEGMENT);
}

/** Where the data starts in a block file. */
function dataOffsetFor(keyLength: number, dataLength: number): number {
  return HEADER + keyLength + 8 * segmentCount(dataLength);
}

/** Where the data starts in a sound block file of `fileSize` bytes (inverts the file layout). */
function dataOffsetOf(keyLength: number, fileSize: number): number {
  const rest = Math.max(0, fileSize - HEADER - keyLength); // 8 bytes per segment + the data
  return HEADER + keyLength + 8 * Math.ceil(rest / (SEGMENT + 8));
}

/**
 * The header, key and checksum table of a block file holding `data`. `sums` are the segments'
 * checksums if the caller already has them ({@linkcode segmentSums}, e.g. from a codec worker).
 */
function encodePrefix(keyBytes: Uint8Array, data: Uint8Array, sums?: Uint8Array): Uint8Array {
  const n = segmentCount(data.byteLength);
  const head = new Uint8Array(dataOffsetFor(keyBytes.length, data.byteLength));
  const v = new DataView(head.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint16(4, keyBytes.length, true);
  v.setUint8(6, SEGMENT_SHIFT);
  v.setUint32(8, data.byteLength, true);
  head.set(keyBytes, HEADER);
  const table = HEADER + keyBytes.length;
  head.set(sums?.byteLength === 8 * n ? sums : segmentSums(data), table);
  v.setBigUint64(12, xxh3_64(head), true); // over the prefix with this field still zero
  return head;
}

/** The lengths a block file header declares, or why it is not valid. */
function parseHeader(
  buf: Uint8Array,
): { keyLength: number; dataLength: number; dataOffset: number } | string {
  if (buf.length < HEADER) return `file of ${buf.length} bytes is shorter than its header`;
  const v = new DataView(buf.buffer, buf.byteOffset, HEADER);
  if (v.getUint32(0, true) !== MAGIC) return "bad magic";
  if (v.getUint8(6) !== SEGMENT_SHIFT || v.getUint8(7) !== 0) return "unknown segment size";
  const keyLength = v.getUint16(4, true);
  if (keyLength > MAX_KEY_BYTES) return `key of ${keyLength} bytes`;
  const dataLength = v.getUint32(8, true);
  return { keyLength, dataLength, dataOffset: dataOffsetFor(keyLength, dataLength) };
}

/**
 * The key and checksum table of a block file from its bytes up to its data (at least), or why
 * they are not valid. The table is copied, not a view of `buf`.
 */
function decodePrefix(buf: Uint8Array): { key: string; table: BlockTable } | string {
  const head = parseHeader(buf);
  if (typeof head === "string") return head;
  const { keyLength, dataLength, dataOffset } = head;
  if (buf.length < dataOffset) return `file of ${buf.length} bytes is shorter than its header`;
  const prefix = buf.slice(0, dataOffset);
  const v = new DataView(prefix.buffer);
  const stored = v.getBigUint64(12, true);
  v.setBigUint64(12, 0n, true);
  if (xxh3_64(prefix) !== stored) return "header checksum mismatch";
  let key: string;
  try {
    key = decoder.decode(prefix.subarray(HEADER, HEADER + keyLength));
  } catch {
    return "key is not UTF-8";
  }
  const sums = new DataView(prefix.buffer, HEADER + keyLength, dataOffset - HEADER - keyLength);
  return { key, table: { dataOffset, dataLength, sums } };
}

/** Why `data` (segments `first`, `first + 1`... of a block) does not match `table`, if not. */
function verifySegments(table: BlockTable, data: Uint8Array, first: number): string | undefined {
  for (let at = 0, i = first; at < data.length; at += SEGMENT, i++) {
    if (xxh3_64(data.subarray(at, at + SEGMENT)) !== table.sums.getBigUint64(8 * i, true)) {
      return `checksum mismatch in segment ${i}`;
    }
  }
  return undefined;
}

/** The data and table of a whole cached block file, or why it is not valid. */
function decodeBlockFile(
  buf: Uint8Array,
  key: string,
): { data: Uint8Array; table: BlockTable } | string {
  const got = decodePrefix(buf);
  if (typeof got === "string") return got;
  const { dataOffset, dataLength } = got.table;
  if (buf.length !== dataOffset + dataLength) {
    return `size ${buf.length} does not match header (${dataOffset + dataLength})`;
  }
  if (got.key !== key) return `file holds key "${got.key}"`;
  const data = buf.subarray(dataOffset);
  const why = verifySegments(got.table, data, 0);
  return why ?? { data, table: got.table };
}

/** The key, size and mtime of a cached block file, if its header, key and table are sound. */
async function readHeader(
  path: string,
): Promise<{ key: string; size: number; mtime: number } | undefined> {
  const f = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(HEADER);
    if (!(await readFull(f, head))) return undefined;
    const h = parseHeader(head);
    if (typeof h === "string") return undefined;
    const prefix = new Uint8Array(h.dataOffset);
    prefix.set(head);
    if (!(await readFull(f, prefix.subarray(HEADER)))) return undefined;
    const got = decodePrefix(prefix);
    if (typeof got === "string") return undefined;
    const size = h.dataOffset + h.dataLength;
    const st = await f.stat();
    if (st.size !== size) return undefined;
    return { key: got.key, size, mtime: st.mtime?.getTime() ?? 0 };
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

/** Reads through a Deno file handle: seek, then read, one read at a time. */
function seekReader(f: Deno.FsFile): ReadAt {
  let last: Promise<unknown> = Promise.resolve();
  return (buf, pos) => {
    const read = last.then(async () => {
      await f.seek(pos, Deno.SeekMode.Start);
      let off = 0;
      while (off < buf.length) {
        const n = await f.read(buf.subarray(off));
        if (n === null) break;
        off += n;
      }
      return off;
    });
    last = read.catch(() => {});
    return read;
  };
}

const RWF_NOWAIT = 0x8;
const iovec = new BigUint64Array(2);

/**
 * `pread(2)` until `buf` is full or the file ends; the bytes read. What the page cache holds is
 * read at once on this thread (`preadv2` with `RWF_NOWAIT`, which never waits for the disk): an
 * off-thread call costs more than copying cached pages. The rest is read off the thread.
 */
async function preadFull(lib: Libc, fd: number, buf: Uint8Array, pos: number): Promise<number> {
  let off = 0;
  if (buf.length > 0) {
    iovec[0] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
    iovec[1] = BigInt(buf.length);
    const n = Number(lib.symbols.preadv2(fd, iovec, 1, BigInt(pos), RWF_NOWAIT));
    if (n > 0) off = n; // -1 (EAGAIN: not cached; or an error the call below reports)
  }
  while (off < buf.length) {
    const rest = buf.subarray(off);
    const n = Number(await lib.symbols.pread(fd, rest, BigInt(rest.length), BigInt(pos + off)));
    if (n < 0) throw new Error(`pread of ${buf.length - off} bytes at ${pos + off} failed`);
    if (n === 0) break;
    off += n;
  }
  return off;
}

/** How many bytes each read got, or why one failed; waits for every read to end. */
async function settleReads(reads: Promise<number>[]): Promise<number[] | string> {
  const got: number[] = [];
  let why: string | undefined;
  for (const r of await Promise.allSettled(reads)) {
    if (r.status === "fulfilled") got.push(r.value);
    else why ??= `cannot read it: ${r.reason instanceof Error ? r.reason.message : r.reason}`;
  }
  return why ?? got;
}

async function writeAll(f: Deno.FsFile, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) off += await f.write(buf.subarray(off));
}

// --- free space ------------------------------------------------------------------------------

const LIBC_SYMBOLS = {
  // int statvfs(const char *path, struct statvfs *buf)
  statvfs: { parameters: ["buffer", "buffer"], result: "i32", nonblocking: true },
  // int open(const char *path, int flags, mode_t mode)
  open: { parameters: ["buffer", "i32", "u32"], result: "i32", nonblocking: true },
  // ssize_t pread(int fd, void *buf, size_t count, off_t offset)
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize", nonblocking: true },
  // ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags): on the
  // calling thread, only with RWF_NOWAIT (never blocks)
  preadv2: { parameters: ["i32", "buffer", "i32", "i64", "i32"], result: "isize" },
  // int close(int fd): on the calling thread, as it is quick for a file opened read-only and the
  // descriptor must be gone before the number can be handed out again
  close: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>;

let libc: Libc | null | undefined;

function openLibc(): Libc | null {
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
