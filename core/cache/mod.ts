/**
 * The block cache of the data path. {@linkcode BlockCacheLike} is what the block layer needs of a
 * cache; {@linkcode BlockCache} is the memory-only one (an LRU bounded in bytes), and
 * {@linkcode TieredCache} has a memory tier and zero or more local disk directories, each indexed
 * by the Wasm S3-FIFO `CacheIndex`. Blocks are immutable (a key always maps to the same bytes), so
 * the caches never invalidate, they only evict and delete.
 *
 * ## Files
 *
 * - `types.ts`: the cache interface and the status counters.
 * - `block_cache.ts`: the memory-only LRU.
 * - `tiered_cache.ts`: the tiering policy (get, put, promote, demote, stats).
 * - `_disk_tiers.ts`: the disk tiers (scan, write-behind queue, eviction, free space, reads).
 * - `_block_file.ts`: the on-disk block file format and its per-segment checksums.
 * - `_fd_pool.ts`: the pool of open block files and the `pread` reader.
 * - `_entries.ts`: the entries the tiers share.
 * - `free_space.ts`: `statvfs(3)` of a cache directory.
 * - `disk_budget.ts`: the free space of a filesystem, shared with a writeback staging directory.
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
 *   directory's filesystem must keep `minFreeRatio` (default 0.1) of its size free after the write,
 *   plus the room that staged writes on the same filesystem claimed or wait for; if not, the
 *   least-accessed blocks of that directory are deleted first (with a little headroom), and the
 *   write is skipped if that cannot help. Free space comes from `statvfs(3)` through FFI (`df` as a
 *   fallback), cached for `freeSpaceTtlMs` and adjusted for our own writes and deletes.
 * - **Sharing a disk.** A directory's {@linkcode DiskBudget} (its own by default, or one shared
 *   with a writeback staging directory on the same filesystem, as `slayerfs mount` does) tracks
 *   that free space. Cached blocks are clean copies, staged ones are not, so staged writes come
 *   first: when one claims room the filesystem lacks, the directories on that budget delete their
 *   least-accessed blocks until it fits (`yieldSpace`), and cache writes leave its room free.
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
 *   call one hop to a worker thread (or on the JS thread: when the page cache has the bytes, or
 *   when the FUSE loop has nothing else in hand, `core/_io_gate.ts`), and up to 1,024 descriptors
 *   stay open in an LRU; a range within one segment is read into a reused scratch buffer
 *   (`core/_scratch.ts`) and copied out; a descriptor
 *   is closed when its file is evicted, deleted or found corrupt (after the reads using it end,
 *   so a descriptor number is never reused under a read) and on `close()`. Without FFI each ranged
 *   read opens the file with Deno.
 * - **Memory only.** Without disk directories the block layer uses {@linkcode BlockCache}, an LRU
 *   of whole blocks bounded in bytes (lru-cache), which is cheaper per hit than the tiered cache.
 * - **Errors.** Disk errors and corrupt blocks never fail a call: they count as misses and go to
 *   the `onError` option, by default a warning of the `["slayerfs", "cache"]` logger (LogTape).
 * - **Restart.** The disk index is not persisted: `open()` rebuilds it by scanning the directories
 *   (reading and verifying each file's header, key and table, oldest first), deleting leftover temp
 *   files and files that do not match their name. Access counts start again from zero.
 * - **Memory.** Cached buffers are shared, not copied: callers must not modify a buffer passed to
 *   `put()` or returned by `get()` or `getRange()` (returned buffers may be views into a larger
 *   buffer). Each cached block costs about 150 bytes of JS heap for its entry besides the Wasm
 *   index, plus about 100 bytes and 8 per 64 KiB once its checksum table was read. Index sizes
 *   (entries) are the capacity over 4 KiB for memory and over 64 KiB for directories, at least 4096.
 *
 * @example
 * ```ts
 * import { BlockCache, TieredCache } from "./mod.ts";
 * import { equal } from "node:assert/strict";
 *
 * const memory = new BlockCache(1 << 20);
 * memory.put("chunks/0/0/1_0_3", new Uint8Array([1, 2, 3]));
 * equal(memory.getSync("chunks/0/0/1_0_3")?.length, 3);
 *
 * await using tiered = await TieredCache.open({ memoryBytes: 1 << 20 });
 * tiered.put("chunks/0/0/1_0_3", new Uint8Array([1, 2, 3]));
 * equal((await tiered.getRange("chunks/0/0/1_0_3", 1, 2))?.length, 2);
 * ```
 *
 * @module
 */

export { BlockCache } from "./block_cache.ts";
export { type CacheDirOptions, TieredCache, type TieredCacheOptions } from "./tiered_cache.ts";
export { DiskBudget, type DiskBudgetOptions, type SpaceYielder } from "./disk_budget.ts";
export { type FreeSpace, statFreeSpace } from "./free_space.ts";
export type { BlockCacheLike, CacheStats, HotBlock, TierStats } from "./types.ts";
