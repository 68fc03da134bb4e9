/**
 * What `slayerfs status` shows of a `Vfs` ({@linkcode vfsStats}): its open files and handles, its
 * block cache's counters, the predictor's, and the files of the hottest cached blocks.
 *
 * @module
 */

import type { CacheStats } from "./cache/mod.ts";
import type { DataEngine } from "./data.ts";
import type { Meta } from "./meta/mod.ts";
import type { Predictor } from "./predict.ts";
import { parseBlockKey } from "./slice.ts";
import type { Ino } from "./types.ts";
import type { OpenFiles } from "./_open_files.ts";

/** The statistics of one mount. */
export interface VfsStats {
  /** Open inodes. */
  openFiles: number;
  /** Open handles. */
  handles: number;
  /** Bytes in the memory block cache. */
  cacheBytes: number;
  /** Block reads the cache answered. */
  cacheHits: number;
  /** Block reads that went to the store. */
  cacheMisses: number;
  /** Objects fetched from the store for reads. */
  storeGets: number;
  /** Bytes of the objects fetched from the store for reads. */
  storeGetBytes: number;
  /** Windows read-around handed to the kernel's page cache, and their bytes. */
  readAround?: { windows: number; bytes: number };
  /** The predictor's counters, when it runs. */
  predictor?: { recorded: number; replays: number; prefetchedBlocks: number };
  /** Files read at random filled into the disk cache tier, and the blocks fetched for them. */
  randomFill: { files: number; blocks: number };
  /** The cache's per-tier counters, for a cache that reports them. */
  cache?: CacheStats;
  /** The files with the most cached blocks, with such a cache. */
  hottestFiles?: Array<{ ino: Ino; frequency: number }>;
}

/** The statistics of the mount of `data`, `predictor` and `open`. */
export function vfsStats(
  data: DataEngine<Meta>,
  predictor: Predictor | undefined,
  open: OpenFiles,
): VfsStats {
  const cache = data.cache;
  const out: VfsStats = {
    openFiles: open.fileCount,
    handles: open.handleCount,
    cacheBytes: cache.bytes,
    cacheHits: cache.hits,
    cacheMisses: cache.misses,
    storeGets: data.fetched.objects,
    storeGetBytes: data.fetched.bytes,
    ...(predictor ? { predictor: { ...predictor.stats } } : {}),
    randomFill: { ...data.randomFill.stats },
  };
  const stats = cache.stats?.();
  if (stats !== undefined) {
    out.cache = stats;
    // Hot blocks → their files (by the slice id in the block key).
    const byIno = new Map<Ino, number>();
    for (const { key, frequency } of cache.hottest?.(200) ?? []) {
      const id = parseBlockKey(key)?.id;
      const ino = id === undefined ? undefined : data.ownerOf(id);
      if (ino !== undefined) byIno.set(ino, (byIno.get(ino) ?? 0) + frequency);
    }
    out.hottestFiles = [...byIno].sort((a, b) => b[1] - a[1]).slice(0, 10)
      .map(([ino, frequency]) => ({ ino, frequency }));
  }
  return out;
}
