/**
 * The entries of a tiered cache, shared by its tiers: one {@linkcode Entry} per cached key, found
 * by key or by the 64-bit hash its indexes use, and the state of each cache directory.
 *
 * @example
 * ```ts
 * import { type Entry, EntryTable } from "./_entries.ts";
 * import { equal } from "node:assert/strict";
 *
 * const table = new EntryTable();
 * const e: Entry = table.add("k", 1n)!;
 * equal(table.byHash(1n), e);
 * table.gc(e); // in no tier: forgotten
 * equal(table.byKey.has("k"), false);
 * ```
 *
 * @module
 */

import type { CacheIndex } from "../../wasm/mod.ts";
import type { TierStats } from "./types.ts";
import type { BlockTable } from "./_block_file.ts";
import type { DiskBudget } from "./disk_budget.ts";

/** A local cache directory: its index and counters. */
export interface DiskDir {
  /** The directory. */
  readonly path: string;
  /** Its tier number in the indexes (1 + its position; 0 is memory). */
  readonly tier: number;
  /** Most bytes of files kept in it. */
  readonly capacity: number;
  /** Share of its filesystem kept free. */
  readonly minFreeRatio: number;
  /** The free space of its filesystem, maybe shared with other directories on it. */
  readonly budget: DiskBudget;
  /** The S3-FIFO index of its blocks (sizes are file sizes). */
  readonly index: CacheIndex;
  /** Its subfolders known to exist. */
  readonly subdirs: Set<string>;
  /** Lookups it served. */
  hits: number;
  /** Lookups that missed it (see `TierStats.misses`). */
  misses: number;
}

/** A cached key and where its block is. */
export interface Entry {
  /** The key. */
  readonly key: string;
  /** The key's 64-bit hash, its key in the indexes. */
  readonly hash: bigint;
  /** Hits since the block entered the cache, across tiers. */
  hits: number;
  /** The block in the memory tier. */
  mem: Uint8Array | undefined;
  /** The block while queued for (or being written to) disk. */
  pending: Uint8Array | undefined;
  /** The directory whose index holds the block (its file may still be being written). */
  disk: DiskDir | undefined;
  /** Size of the disk file. */
  diskSize: number;
  /** The layout and checksum table of the disk file, once read. */
  table: BlockTable | undefined;
}

/** The entries of a cache by key and by hash. */
export class EntryTable {
  /** Entries by key. */
  readonly byKey: Map<string, Entry> = new Map();
  readonly #byHash = new Map<bigint, Entry>();

  /** The entry of `hash`, if any. */
  byHash(hash: bigint): Entry | undefined {
    return this.#byHash.get(hash);
  }

  /**
   * A new entry for `key` (held by no tier yet), or undefined when another key has the same hash
   * (a 64-bit collision: the newcomer stays uncached).
   */
  add(key: string, hash: bigint, disk?: DiskDir, diskSize = 0): Entry | undefined {
    if (this.#byHash.has(hash)) return undefined;
    const e: Entry = {
      key,
      hash,
      hits: 0,
      mem: undefined,
      pending: undefined,
      disk,
      diskSize,
      table: undefined,
    };
    this.byKey.set(key, e);
    this.#byHash.set(hash, e);
    return e;
  }

  /** Whether `e` is still the entry of its key (not deleted meanwhile). */
  live(e: Entry): boolean {
    return this.byKey.get(e.key) === e;
  }

  /** Forgets `e` if no tier holds it any more. */
  gc(e: Entry): void {
    if (e.mem !== undefined || e.pending !== undefined || e.disk !== undefined) return;
    if (this.byKey.get(e.key) === e) {
      this.byKey.delete(e.key);
      this.#byHash.delete(e.hash);
    }
  }
}

const MAX_INDEX_ENTRIES = 1 << 22;
const MIN_INDEX_ENTRIES = 4096;

/** Entries of an index for `capacity` bytes of blocks of about `perEntry` bytes. */
export function indexEntries(capacity: number, perEntry: number): number {
  return Math.min(MAX_INDEX_ENTRIES, Math.max(MIN_INDEX_ENTRIES, Math.ceil(capacity / perEntry)));
}

/** The counters of one tier. */
export function tierStats(
  name: string,
  index: CacheIndex,
  hits: number,
  misses: number,
): TierStats {
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

/** `hits / (hits + misses)`, 0 before any lookup. */
export function rate(hits: number, misses: number): number {
  return hits + misses === 0 ? 0 : hits / (hits + misses);
}
