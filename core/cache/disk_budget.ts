/**
 * {@linkcode DiskBudget}: the free space of one local filesystem, shared by everything SlayerFS
 * keeps on it — disk cache directories and the writeback staging directory. The cache holds clean
 * blocks (already in the store) and gives them back on demand; the staging directory holds the
 * only copy of blocks not yet uploaded, so its writes come first.
 *
 * - A budget keeps `minFreeRatio` of the filesystem free (10% by default, like JuiceFS's
 *   `--free-space-ratio`).
 * - A staged write first {@linkcode DiskBudget.wait}s (announcing the bytes it needs, which the
 *   cache then leaves free), then {@linkcode DiskBudget.claim}s them: if the filesystem cannot hold
 *   them above the reserve, the budget asks its {@linkcode SpaceYielder}s (the cache directories
 *   on that filesystem) to delete clean blocks, and looks again. A false claim means the room must
 *   come from elsewhere (uploads of staged blocks): the caller waits and tries again.
 * - A cache write asks {@linkcode DiskBudget.shortfall}: the bytes to delete first so that the
 *   write keeps the reserve and the room claimed or awaited by staged writes.
 * - Free space comes from `statvfs(3)` ({@linkcode statFreeSpace}), cached for `ttlMs` and adjusted
 *   by {@linkcode DiskBudget.used} for the files written and deleted meanwhile.
 *
 * {@linkcode DiskBudget.perFilesystem} gives one budget per filesystem (`st_dev`) for a set of
 * directories, so that a cache and a staging directory on the same disk share one.
 *
 * @example
 * ```ts
 * import { DiskBudget } from "./disk_budget.ts";
 * import { equal } from "node:assert/strict";
 *
 * let cached = 60; // bytes of a cache on a 100-byte disk with 30 free
 * const budget = new DiskBudget("/cache", {
 *   freeSpace: () => Promise.resolve({ total: 100, free: 100 - 10 - cached }),
 *   ttlMs: 0,
 * });
 * budget.addYielder({
 *   yieldSpace(bytes) {
 *     const freed = Math.min(bytes, cached);
 *     cached -= freed;
 *     return Promise.resolve(freed);
 *   },
 * });
 * budget.wait(50);
 * equal(await budget.claim(50), true); // the cache gave 30 bytes: 80 free, 10 kept
 * budget.unwait(50);
 * budget.release(50, true);
 * equal(cached, 30);
 * ```
 *
 * @module
 */

import { dirname } from "node:path";
import { type FreeSpace, statFreeSpace } from "./free_space.ts";

const MiB = 1 << 20;

/** Holds clean data on a filesystem and deletes some of it when asked: a disk cache directory. */
export interface SpaceYielder {
  /**
   * Deletes clean data (least useful first) until `bytes` are freed or none is left; resolves
   * with the bytes freed once they are deleted.
   */
  yieldSpace(bytes: number): Promise<number>;
}

/** Options of a {@linkcode DiskBudget}. */
export interface DiskBudgetOptions {
  /** Share of the filesystem kept free (0 <= ratio < 1); 0.1 by default. */
  minFreeRatio?: number;
  /** Reads the free space of the filesystem holding a path; {@linkcode statFreeSpace} by default. */
  freeSpace?: (path: string) => Promise<FreeSpace>;
  /** How long a free-space reading is reused, in ms (2000). */
  ttlMs?: number;
  /** Receives the first failure to read the free space (until a reading works again). */
  onError?: (error: Error) => void;
}

/** The free space of one filesystem, shared by the cache and the staging directories on it. */
export class DiskBudget {
  /** A directory on the filesystem (it may not exist yet: its nearest parent is read then). */
  readonly path: string;
  /** Share of the filesystem kept free. */
  readonly minFreeRatio: number;
  readonly #freeSpace: (path: string) => Promise<FreeSpace>;
  readonly #ttlMs: number;
  readonly #onError: ((error: Error) => void) | undefined;
  readonly #yielders = new Set<SpaceYielder>();
  #fs: FreeSpace | undefined;
  #fsAt = 0;
  #failed = false;
  /** Bytes claimed and not yet written (or given up). */
  #reserved = 0;
  /** Bytes staged writes wait for. */
  #demand = 0;

  /** A budget for the filesystem holding `path`. */
  constructor(path: string, opts: DiskBudgetOptions = {}) {
    const { minFreeRatio = 0.1, ttlMs = 2000 } = opts;
    if (!(minFreeRatio >= 0 && minFreeRatio < 1)) {
      throw new RangeError(`minFreeRatio must be in [0, 1), got "${minFreeRatio}"`);
    }
    this.path = path;
    this.minFreeRatio = minFreeRatio;
    this.#freeSpace = opts.freeSpace ?? statFreeSpace;
    this.#ttlMs = ttlMs;
    this.#onError = opts.onError;
  }

  /**
   * One budget per filesystem among `paths` (by the `st_dev` of each path, or of its nearest
   * existing parent), by path: directories on the same filesystem share a budget.
   */
  static async perFilesystem(
    paths: readonly string[],
    opts: DiskBudgetOptions = {},
  ): Promise<Map<string, DiskBudget>> {
    const byDev = new Map<number, DiskBudget>();
    const out = new Map<string, DiskBudget>();
    for (const path of paths) {
      const dev = await deviceOf(path);
      let budget = byDev.get(dev);
      if (budget === undefined) {
        budget = new DiskBudget(path, opts);
        byDev.set(dev, budget);
      }
      out.set(path, budget);
    }
    return out;
  }

  /**
   * `share` of the room a directory may take on its filesystem: its free space plus the bytes of
   * the files already under `path` (so that a full cache keeps its size across restarts), rounded
   * down to whole MiB, at least 1 MiB. The default cap of a cache directory.
   */
  static async shareOfFreeSpace(
    path: string,
    share: number,
    freeSpace: (path: string) => Promise<FreeSpace> = statFreeSpace,
  ): Promise<number> {
    const { free } = await freeSpace(await existingParent(path));
    const room = share * (free + await bytesUnder(path));
    return Math.max(MiB, Math.floor(room / MiB) * MiB);
  }

  /** The last free-space reading, adjusted for writes and deletes since; undefined if unknown. */
  get reading(): FreeSpace | undefined {
    return this.#fs;
  }

  /** Bytes claimed by staged writes and not yet written, plus those they wait for. */
  get pending(): number {
    return this.#reserved + this.#demand;
  }

  /** Adds a holder of clean data that {@linkcode claim} may ask for room; returns its removal. */
  addYielder(yielder: SpaceYielder): () => void {
    this.#yielders.add(yielder);
    return () => this.#yielders.delete(yielder);
  }

  /** Drops the reading: the next one reads the free space again (the filesystem said it is full). */
  refresh(): void {
    this.#fsAt = -Infinity;
  }

  /** Records `bytes` written to the filesystem (negative: deleted) since the last reading. */
  used(bytes: number): void {
    if (this.#fs) this.#fs.free -= bytes;
  }

  /** Announces a staged write of `bytes`: cache writes leave them free until {@linkcode unwait}. */
  wait(bytes: number): void {
    this.#demand += bytes;
  }

  /** Ends a {@linkcode wait}. */
  unwait(bytes: number): void {
    this.#demand -= bytes;
  }

  /**
   * Claims room for `bytes` more on the filesystem above the reserve, asking the yielders to
   * delete clean data if needed. True if claimed (then call {@linkcode release} once written or
   * given up), false if the filesystem cannot hold them now. True when the free space is unknown.
   */
  async claim(bytes: number): Promise<boolean> {
    let fresh = false;
    for (;;) {
      const fs = await this.#read(fresh);
      if (fs === undefined) break;
      const short = this.minFreeRatio * fs.total + this.#reserved + bytes - fs.free;
      if (short <= 0) break;
      let freed = 0;
      for (const y of this.#yielders) {
        if (freed >= short) break;
        freed += await y.yieldSpace(short - freed);
      }
      // Nothing more to give: look once more at the real free space, then give up.
      if (freed <= 0) {
        if (fresh) return false;
        fresh = true;
      }
    }
    this.#reserved += bytes;
    return true;
  }

  /**
   * Counts a cache write of `bytes` in progress (room already made, see {@linkcode shortfall}) as
   * claimed, so that claims and other cache writes meanwhile do not count its bytes as free; call
   * {@linkcode release} once it is written or given up.
   */
  hold(bytes: number): void {
    this.#reserved += bytes;
  }

  /** Ends a {@linkcode claim} or {@linkcode hold} of `bytes`; `written`: they are now on the filesystem. */
  release(bytes: number, written: boolean): void {
    this.#reserved -= bytes;
    if (written) this.used(bytes);
  }

  /**
   * The bytes to delete from the filesystem before writing `bytes` of cache data, so that it keeps
   * the reserve and the room of staged writes (0 if none, undefined if the free space is unknown).
   */
  async shortfall(bytes: number): Promise<number | undefined> {
    if (this.minFreeRatio === 0 && this.pending === 0) return 0;
    const fs = await this.#read(false);
    if (fs === undefined) return undefined;
    return Math.max(0, this.minFreeRatio * fs.total + this.pending + bytes - fs.free);
  }

  async #read(fresh: boolean): Promise<FreeSpace | undefined> {
    const now = Date.now();
    if (!fresh && this.#fs && now - this.#fsAt < this.#ttlMs) return this.#fs;
    try {
      const { free, total } = await this.#freeSpace(await existingParent(this.path));
      this.#fs = { free, total };
      this.#fsAt = now;
      this.#failed = false;
    } catch (err) {
      if (!this.#failed) {
        this.#onError?.(new Error(`Cannot read the free space of "${this.path}"`, { cause: err }));
      }
      this.#failed = true;
      this.#fs = undefined;
    }
    return this.#fs;
  }
}

/** `path`, or its nearest parent that exists. */
async function existingParent(path: string): Promise<string> {
  for (let p = path;; p = dirname(p)) {
    try {
      await Deno.stat(p);
      return p;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound) || dirname(p) === p) throw err;
    }
  }
}

/** Bytes of the files under `path` (0 if it does not exist). */
async function bytesUnder(path: string): Promise<number> {
  let bytes = 0;
  try {
    for await (const e of Deno.readDir(path)) {
      const p = `${path}/${e.name}`;
      if (e.isDirectory) bytes += await bytesUnder(p);
      else if (e.isFile) bytes += await Deno.stat(p).then((s) => s.size, () => 0);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return bytes;
}

async function deviceOf(path: string): Promise<number> {
  return (await Deno.stat(await existingParent(path))).dev;
}
