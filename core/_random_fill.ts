/**
 * Random fill: a file read at random is fetched whole into the disk cache tier, in the background,
 * so that its later reads are disk hits rather than store round trips (s3fs keeps what it
 * downloads of an open file locally, to the same effect). Part of the block layer
 * (`core/data.ts`), which owns one {@linkcode RandomFill}.
 *
 * ## Decisions
 *
 * - **When.** After {@linkcode RandomFillOptions.reads} random reads (32 by default) of one inode
 *   since its last {@linkcode RandomFill.invalidate}, with a disk cache tier (remote storage), and
 *   for a file of at most {@linkcode RandomFillOptions.maxBytes} (the mount's `random_fill`). A
 *   random 4 KiB read costs a ranged GET of 64 KiB, and the block it falls in is fetched behind it
 *   anyway (`#fillBehind` in `core/data.ts`), but that one block at a time, within the readahead
 *   limit: on a 1 GiB file the reads waited on the store for seconds. A file read at random once
 *   is usually read at random again: fetching all of it costs its size once.
 * - **How.** Every block of the file not cached and not in flight, in file order, at most
 *   {@linkcode RandomFillOptions.parallel} at once, each after the cache's write-behind queue has
 *   room for it and for those in flight (`room`), so a fetched block reaches the disk tier instead
 *   of being dropped. The reads' own segments are fetched as before, beside the fill (the store's
 *   connection pool, 32 for S3, has more slots than the fill takes), but the whole block a random
 *   read falls in is not fetched behind it while its file fills (those fetches competed with the
 *   fill's). 4 at once by default, as many as the fill-behind's: on s3rver (`bench/README.md`)
 *   8 or 16 did not end the slow phase sooner (the server moved ~200 MiB/s at any concurrency)
 *   and raised the daemon's peak RSS by 50-130 MiB. Errors are ignored: the read that needs a
 *   block reports them.
 * - **How many.** One file fills at a time (a second waits for more random reads), and a file is
 *   filled once until it changes: {@linkcode RandomFill.invalidate} (the inode's data changed)
 *   stops its fill and lets a later one start.
 *
 * @module
 */

import type { BlockCacheLike } from "./cache/mod.ts";
import type { SliceRecord } from "./slice.ts";
import type { Ino, SliceId } from "./types.ts";
import { blocksOf } from "./_data_blocks.ts";

/** Settings of a {@linkcode RandomFill}. */
export interface RandomFillOptions {
  /**
   * The largest file filled, in bytes; 0 turns the fill off. Default: a quarter of the disk
   * tiers' capacity, at most 8 GiB.
   */
  maxBytes?: number;
  /** Blocks of a file fetched at once (default 4, at most the store's concurrency). */
  parallel?: number;
  /** Random reads of a file that start its fill (default 32). */
  reads?: number;
}

/** What the fill needs of the block layer (`DataEngine`). */
export interface FillHost {
  /** The volume's chunk size. */
  readonly chunkSize: number;
  /** The volume's block size. */
  readonly blockSize: number;
  /** The block cache. */
  readonly cache: BlockCacheLike;
  /** The block store's limits. */
  readonly store: { readonly limits: { readonly concurrency: number } };
  /** The resolved segments of a chunk. */
  segments(ino: Ino, chunk: number): Promise<SliceRecord[]>;
  /** Fetches a whole block into the cache. */
  getBlock(id: SliceId, index: number, len: number): Promise<Uint8Array>;
  /** Whether a fetch of block `key` is in flight. */
  fetching(key: string): boolean;
}

/** Counters of the fill, for `slayerfs status`. */
export interface RandomFillStats {
  /** Fills started. */
  files: number;
  /** Blocks the fills fetched. */
  blocks: number;
}

/** Files filled at once. */
const MAX_FILES = 1;
/** Inodes remembered (read counts, filled files) before they are forgotten wholesale. */
const MAX_TRACKED = 10_000;
const GiB = 2 ** 30;

/** Fills files read at random into the disk cache tier (see the module notes). */
export class RandomFill {
  /** Counters since the mount. */
  readonly stats: RandomFillStats = { files: 0, blocks: 0 };
  readonly #host: FillHost;
  readonly #options: RandomFillOptions;
  /** Random reads per inode since its last invalidation, until its fill starts. */
  #reads = new Map<Ino, number>();
  /** Fills running, by inode. */
  #jobs = new Map<Ino, { stopped: boolean }>();
  /** Inodes filled (or too large to be), until invalidated. */
  #done = new Set<Ino>();

  /** The fill of `host`'s files. */
  constructor(host: FillHost, options: RandomFillOptions = {}) {
    this.#host = host;
    this.#options = options;
  }

  /** The largest file filled (see {@linkcode RandomFillOptions.maxBytes}). */
  maxBytes(): number {
    if (this.#options.maxBytes !== undefined) return this.#options.maxBytes;
    let disk = 0;
    for (const t of this.#host.cache.stats?.().tiers ?? []) {
      if (t.name !== "memory") disk += t.capacity;
    }
    return Math.min(8 * GiB, Math.floor(disk / 4));
  }

  /** Whether `ino` is being filled. */
  filling(ino: Ino | undefined): boolean {
    return ino !== undefined && this.#jobs.has(ino);
  }

  /**
   * Notes a random read of `ino`, a file of `size` bytes; starts its fill at the
   * {@linkcode RandomFillOptions.reads}th.
   */
  read(ino: Ino, size: number): void {
    if (!this.#host.cache.wantsSegmentSums || this.#options.maxBytes === 0) return;
    if (this.#jobs.has(ino) || this.#done.has(ino)) return;
    if (this.#reads.size >= MAX_TRACKED && !this.#reads.has(ino)) this.#reads.clear();
    const n = (this.#reads.get(ino) ?? 0) + 1;
    this.#reads.set(ino, n);
    if (n < (this.#options.reads ?? 32) || this.#jobs.size >= MAX_FILES) return;
    this.#reads.delete(ino);
    if (this.#done.size >= MAX_TRACKED) this.#done.clear();
    if (size <= 0 || size > this.maxBytes()) {
      this.#done.add(ino);
      return;
    }
    const job = { stopped: false };
    this.#jobs.set(ino, job);
    this.stats.files++;
    this.#fill(ino, size, job).catch(() => {}).finally(() => {
      if (this.#jobs.get(ino) === job) this.#jobs.delete(ino);
      if (!job.stopped) this.#done.add(ino);
    });
  }

  /** Forgets what was counted of `ino` and stops its fill (its data changed). */
  invalidate(ino: Ino): void {
    this.#reads.delete(ino);
    this.#done.delete(ino);
    const job = this.#jobs.get(ino);
    if (job) {
      job.stopped = true;
      this.#jobs.delete(ino);
    }
  }

  /** Stops every fill (the block layer closes). */
  close(): void {
    for (const job of this.#jobs.values()) job.stopped = true;
    this.#jobs.clear();
  }

  /** Fetches the blocks of `[0, size)` of `ino` that are not cached or in flight. */
  async #fill(ino: Ino, size: number, job: { stopped: boolean }): Promise<void> {
    const host = this.#host;
    const parallel = Math.max(
      1,
      Math.min(this.#options.parallel ?? 4, host.store.limits.concurrency),
    );
    const running = new Set<Promise<void>>();
    let fetching = 0; // bytes
    const idle = (key: string) => !host.cache.has(key) && !host.fetching(key);
    try {
      for await (const b of blocksOf(host, ino, 0, size)) {
        if (job.stopped) return;
        if (!idle(b.key)) continue;
        while (running.size >= parallel) await Promise.race(running);
        // Room for this block and those in flight: none is dropped from a full queue.
        await host.cache.room?.(fetching + b.blockLen);
        // Again: the waits may have been long.
        if (job.stopped) return;
        if (!idle(b.key)) continue;
        fetching += b.blockLen;
        const p: Promise<void> = host.getBlock(b.id, b.index, b.blockLen).then(
          () => void this.stats.blocks++,
          () => {},
        ).finally(() => {
          fetching -= b.blockLen;
          running.delete(p);
        });
        running.add(p);
      }
    } finally {
      await Promise.all(running);
    }
  }
}
