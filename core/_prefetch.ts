/**
 * Background fetches of the block layer (`core/data.ts`), which owns one {@linkcode Prefetcher}:
 * readahead of sequential reads, and the whole block behind a random read.
 *
 * ## Decisions
 *
 * - **Window.** A sequential read fetches up to `readaheadMax` bytes ahead of itself (its window
 *   grows from one block, `core/_open_files.ts`; the mount's `readahead`). With a disk tier the
 *   default is 48 blocks (192 MiB) and 12 fetches in flight (fewer if the store wants), without
 *   one 8 blocks (the memory cache's default 32 MiB) and 4: a fetched block must have somewhere
 *   to wait until it is read. On s3rver a cold sequential read went from ~260 to ~300 MiB/s with
 *   12 GETs in flight instead of 4 (`bench/README.md`): the server spends less CPU per byte when
 *   it has more requests at once.
 * - **Room.** Each readahead fetch first waits for room in the disk tier's write-behind queue for
 *   its block and those in flight, as the random fill does (`core/_random_fill.ts`): without
 *   that, a cold read dropped a few blocks in 40 from the full queue, and its next read fetched
 *   them from the store again.
 * - **Never in the way.** Blocks past the limit of fetches in flight are dropped rather than
 *   queued, so readahead never delays demand reads (the predictor's `warm` waits instead).
 * - **Behind a random read.** With a disk tier, the whole block a random read fell in is fetched
 *   behind it, so its later reads are disk hits; these share the count of fetches in flight but
 *   stop at 4, and are skipped while the file fills whole (the random fill gets there).
 *
 * @module
 */

import type { Ino, SliceId } from "./types.ts";
import { blocksOf } from "./_data_blocks.ts";
import type { FillHost } from "./_random_fill.ts";

/** Blocks a sequential read fetches ahead by default with a disk cache tier (192 MiB of 4 MiB). */
const READAHEAD_DISK_BLOCKS = 48;
/** Blocks a sequential read fetches ahead by default without a disk cache tier. */
const READAHEAD_MEMORY_BLOCKS = 8;
/** Readahead fetches in flight at once with a disk cache tier (at most the store's concurrency). */
const PREFETCH_DISK = 12;
/** Readahead fetches in flight at once without a disk cache tier. */
const PREFETCH_MEMORY = 4;
/** Fetches behind random reads in flight at once (at most the store's concurrency). */
const BEHIND = 4;

/** The block layer's background fetches. */
export class Prefetcher {
  /** The most a sequential read fetches ahead of itself, in bytes (0: nothing). */
  readonly readaheadMax: number;
  readonly #host: FillHost;
  readonly #limit: number;
  /** Fetches in flight (readahead and behind random reads). */
  #running = 0;
  /** Bytes of the readahead fetches in flight. */
  #bytes = 0;

  /**
   * Background fetches for `host` (what the random fill needs of the block layer too), reading
   * ahead `readahead` bytes (default: see the notes).
   */
  constructor(host: FillHost, readahead?: number) {
    if (readahead !== undefined && !(readahead >= 0)) {
      throw new RangeError(`Bad readahead ${readahead}`);
    }
    const disk = host.cache.wantsSegmentSums === true;
    this.#host = host;
    this.readaheadMax = readahead ??
      (disk ? READAHEAD_DISK_BLOCKS : READAHEAD_MEMORY_BLOCKS) * host.blockSize;
    this.#limit = Math.min(disk ? PREFETCH_DISK : PREFETCH_MEMORY, host.store.limits.concurrency);
  }

  /**
   * Starts fetching the blocks of `[off, off+len)` of `ino` into the cache without waiting
   * (readahead); errors are ignored (the read that needs the block reports them).
   */
  prefetch(ino: Ino, off: number, len: number): void {
    const host = this.#host;
    const idle = (key: string) => !host.cache.has(key) && !host.fetching(key);
    (async () => {
      for await (const b of blocksOf(host, ino, off, len)) {
        if (!idle(b.key)) continue;
        if (this.#running >= this.#limit) return;
        await host.cache.room?.(this.#bytes + b.blockLen);
        // Again: the wait may have been long.
        if (!idle(b.key)) continue;
        if (this.#running >= this.#limit) return;
        this.#running++;
        this.#bytes += b.blockLen;
        host.getBlock(b.id, b.index, b.blockLen).catch(() => {}).finally(() => {
          this.#running--;
          this.#bytes -= b.blockLen;
        });
      }
    })().catch(() => {});
  }

  /**
   * After a random read of a segmented block, fetches the whole block in the background when the
   * cache has a disk tier (remote storage), unless `filling()` (its file fills whole).
   */
  behind(id: SliceId, index: number, blockLen: number, key: string, filling: () => boolean): void {
    const host = this.#host;
    if (!host.cache.wantsSegmentSums || host.cache.has(key) || host.fetching(key)) return;
    if (filling()) return;
    if (this.#running >= Math.min(BEHIND, host.store.limits.concurrency)) return;
    this.#running++;
    host.getBlock(id, index, blockLen).catch(() => {}).finally(() => {
      this.#running--;
    });
  }
}
