/**
 * The disk tiers of a tiered cache: cache directories, the write-behind queue that fills them (one
 * writer), placement by key hash, eviction, the free-space reserve, whole and ranged reads of block
 * files, the scan that rebuilds the indexes at open. Design notes: `mod.ts`; `TieredCache` drives.
 *
 * @example
 * ```ts
 * import { DiskTiers } from "./_disk_tiers.ts";
 * import { EntryTable } from "./_entries.ts";
 * import { blockKey as hashKey } from "../../wasm/mod.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const path = await Deno.makeTempDir();
 * const table = new EntryTable();
 * const disk = new DiskTiers({ dirs: [{ path, capacityBytes: 1 << 20, minFreeRatio: 0 }] }, table);
 * await disk.open();
 * const e = table.add("k", hashKey("k"))!;
 * equal(disk.enqueue(e, new Uint8Array([1, 2, 3])), true);
 * await disk.flush();
 * deepEqual(await disk.readRange(e, e.disk!, 1, 2), new Uint8Array([2, 3]));
 * await disk.close();
 * await Deno.remove(path, { recursive: true });
 * ```
 *
 * @module
 */

import pLimit from "p-limit";
import { blockKey as hashKey, CacheIndex } from "../../wasm/mod.ts";
import { tryLoadLibc } from "../libc.ts";
import { getLog } from "../log.ts";
import { readRange } from "../_file_range.ts";
import { DIR_LOCK_NAME, makePrivateDir, PRIVATE_DIR_MODE, tightenMode } from "../_private_fs.ts";
import {
  dataOffsetFor,
  decodeBlockFile,
  filePath,
  MAX_KEY_BYTES,
  type ReadAt,
  readHeader,
  readSegments,
  writeBlockFile,
} from "./_block_file.ts";
import { type DiskDir, type Entry, type EntryTable, indexEntries, tierStats } from "./_entries.ts";
import { FdPool, seekReader } from "./_fd_pool.ts";
import { DiskBudget } from "./disk_budget.ts";
import type { FreeSpace } from "./free_space.ts";
import type { TierStats } from "./types.ts";

/** A local disk cache directory. */
export interface CacheDirOptions {
  /** The directory (created if missing). */
  path: string;
  /** Most bytes of cached files (headers included) kept in it. */
  capacityBytes: number;
  /**
   * Share of its filesystem to keep free (0 <= ratio < 1); 0.1 by default. Cached blocks are
   * deleted, least accessed first, to keep it. Ignored with a `budget` (which has its own).
   */
  minFreeRatio?: number;
  /**
   * The free space of its filesystem, shared with other directories on it (a writeback staging
   * directory): the cache leaves room for their writes and deletes blocks when they claim room.
   * By default the directory has a budget of its own.
   */
  budget?: DiskBudget;
}

/** Options of {@linkcode DiskTiers}: the disk part of `TieredCacheOptions`. */
export interface DiskTiersOptions {
  /** The directories, in order. */
  dirs: CacheDirOptions[];
  /** Most bytes waiting in the write-behind queue (64 MiB); disk writes beyond it are skipped. */
  writeBehindBytes?: number;
  /** How long a free-space reading is reused, in ms (2000). */
  freeSpaceTtlMs?: number;
  /** Reads the free space of the filesystem holding a path; `statFreeSpace` by default. */
  freeSpace?: (path: string) => Promise<FreeSpace>;
  /** Receives disk errors and corrupt blocks; logged as warnings by default. */
  onError?: (error: Error) => void;
  /** Whether ranged reads go through libc (true by default). */
  ffi?: boolean;
}

const MAX_QUEUE_ENTRIES = 4096;
const SCAN_CONCURRENCY = 8;
const encoder = new TextEncoder();
const log = getLog("cache");

/** The cache directories and their write-behind queue. */
export class DiskTiers {
  /** The directories, in order. */
  readonly dirs: DiskDir[];
  readonly #dirsCapacity: number;
  readonly #table: EntryTable;
  readonly #writeBehindBytes: number;
  readonly #onError: (error: Error) => void;
  readonly #reads = new Map<Entry, Promise<Uint8Array | undefined>>();
  /** Open block files; undefined without libc (ranged reads then open files with Deno). */
  readonly #fds: FdPool<Entry> | undefined;
  readonly #background = new Set<Promise<void>>();
  /** Removes this cache from the yielders of its budgets. */
  readonly #unyield: Array<() => void> = [];
  // The write-behind queue: one writer, bounded in bytes and entries, and a full queue drops the
  // disk copy rather than making the caller wait; p-limit's queue is unbounded and cannot drop.
  #queue: Array<{ e: Entry; data: Uint8Array; sums: Uint8Array | undefined }> = [];
  #queueBytes = 0;
  #draining = false;
  #drainDone: Promise<void> = Promise.resolve();
  #writing: { e: Entry; done: Promise<void> } | undefined;
  #roomWaiters: Array<{ bytes: number; resolve: () => void }> = [];
  #closed = false;
  #dropped = 0;
  #evictions = 0;
  #corrupt = 0;
  #errors = 0;

  /** Disk tiers over `opts.dirs` (checked, not created yet: see {@linkcode open}). */
  constructor(opts: DiskTiersOptions, table: EntryTable) {
    const { dirs, writeBehindBytes = 64 << 20, freeSpaceTtlMs = 2000 } = opts;
    this.#onError = opts.onError ?? ((error) => log.warn("{error}", { error }));
    const seen = new Set<string>();
    this.dirs = dirs.map((d, i) => {
      const { path, capacityBytes } = d;
      if (!Number.isSafeInteger(capacityBytes) || capacityBytes < 1) {
        throw new RangeError(
          `Cache dir capacity must be a positive integer, got "${capacityBytes}"`,
        );
      }
      const budget = d.budget ?? new DiskBudget(path, {
        ...(d.minFreeRatio !== undefined ? { minFreeRatio: d.minFreeRatio } : {}),
        ...(opts.freeSpace ? { freeSpace: opts.freeSpace } : {}),
        ttlMs: freeSpaceTtlMs,
        onError: (error) => this.#report(error.message, error.cause),
      });
      if (seen.has(path)) throw new RangeError(`Cache dir "${path}" is listed twice`);
      seen.add(path);
      return {
        path,
        tier: i + 1,
        capacity: capacityBytes,
        minFreeRatio: budget.minFreeRatio,
        budget,
        index: new CacheIndex({
          maxEntries: indexEntries(capacityBytes, 65536),
          maxBytes: capacityBytes,
        }),
        subdirs: new Set<string>(),
        hits: 0,
        misses: 0,
      };
    });
    if (this.dirs.length > 254) throw new RangeError(`At most 254 cache dirs, got ${dirs.length}`);
    this.#dirsCapacity = this.dirs.reduce((n, d) => n + d.capacity, 0);
    this.#table = table;
    this.#writeBehindBytes = writeBehindBytes;
    const lib = this.dirs.length > 0 && opts.ffi !== false ? tryLoadLibc() : null;
    this.#fds = lib !== null ? new FdPool(lib) : undefined;
  }

  /**
   * Creates the directories and rebuilds their indexes from the files in them; from then on the
   * directories give room to whoever claims it from their budgets.
   */
  async open(): Promise<void> {
    for (const dir of this.dirs) await this.#scan(dir);
    for (const budget of new Set(this.dirs.map((d) => d.budget))) {
      this.#unyield.push(budget.addYielder({ yieldSpace: (n) => this.#yieldSpace(budget, n) }));
    }
  }

  /** Bytes of the files in every directory. */
  get bytes(): number {
    return this.dirs.reduce((n, d) => n + d.index.bytes, 0);
  }

  /** Counters of each directory. */
  tierStats(): TierStats[] {
    return this.dirs.map((d) => {
      const fs = d.budget.reading;
      return {
        ...tierStats(d.path, d.index, d.hits, d.misses),
        minFreeRatio: d.minFreeRatio,
        ...(fs ? { freeBytes: fs.free, totalBytes: fs.total } : {}),
      };
    });
  }

  /** Counters of the queue and of the disk events. */
  counters(): {
    pendingWrites: number;
    pendingBytes: number;
    droppedWrites: number;
    evictions: number;
    corrupt: number;
    errors: number;
  } {
    return {
      pendingWrites: this.#queue.length,
      pendingBytes: this.#queueBytes,
      droppedWrites: this.#dropped,
      evictions: this.#evictions,
      corrupt: this.#corrupt,
      errors: this.#errors,
    };
  }

  /** The directories to try for a block, the preferred one (by hash, weighted by capacity) first. */
  placement(hash: bigint): DiskDir[] {
    const dirs = this.dirs;
    if (dirs.length <= 1) return dirs;
    let x = Number(hash & 0xffffffffn) / 2 ** 32 * this.#dirsCapacity;
    let i = 0;
    while (i < dirs.length - 1 && x >= dirs[i]!.capacity) x -= dirs[i++]!.capacity;
    return [...dirs.slice(i), ...dirs.slice(0, i)];
  }

  /** Keeps `p` (background disk work) for {@linkcode flush} to wait for. */
  track(p: Promise<void>): void {
    this.#background.add(p);
    p.finally(() => this.#background.delete(p));
  }

  /** Waits until the write-behind queue is empty and background work is done. */
  async flush(): Promise<void> {
    while (this.#draining || this.#background.size > 0) {
      await this.#drainDone;
      await Promise.all(this.#background);
    }
  }

  /** Stops queueing, waits for pending writes and closes the open block files. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const unyield of this.#unyield.splice(0)) unyield();
    this.#wakeRoomWaiters();
    await this.flush();
    this.#fds?.close();
  }

  /** Forgets the disk copy of `e` (and its queued copy) and deletes its file. */
  async remove(e: Entry): Promise<void> {
    e.pending = undefined;
    const dir = e.disk;
    if (dir !== undefined) {
      dir.index.remove(e.hash);
      e.disk = undefined;
      this.#forgetFile(e);
    }
    this.#table.gc(e);
    const writing = this.#writing;
    if (writing?.e === e) await writing.done;
    if (dir !== undefined) await this.#unlink(dir, e);
  }

  // --- reads -------------------------------------------------------------------------------

  /** Whether a whole-block read of `e` is under way. */
  reading(e: Entry): boolean {
    return this.#reads.has(e);
  }

  /** The whole block of `e` from `dir`, verified; concurrent reads of a block share one. */
  readWhole(e: Entry, dir: DiskDir): Promise<Uint8Array | undefined> {
    let read = this.#reads.get(e);
    if (read === undefined) {
      read = this.#readDisk(e, dir);
      this.#reads.set(e, read);
      const r = read;
      r.then(() => this.#reads.get(e) === r && this.#reads.delete(e));
    }
    return read;
  }

  async #readDisk(e: Entry, dir: DiskDir): Promise<Uint8Array | undefined> {
    const path = filePath(dir.path, e);
    let buf: Uint8Array;
    try {
      buf = await readRange(path, 0);
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
   * Bytes `[offset, offset+length)` of `e`'s block from its file in `dir`, verified, through a
   * pooled descriptor (libc) or a Deno file; RangeError past its end. `into`: see `readSegments`.
   */
  async readRange(
    e: Entry,
    dir: DiskDir,
    offset: number,
    length: number,
    into?: Uint8Array,
  ): Promise<Uint8Array | undefined> {
    const path = filePath(dir.path, e);
    const fds = this.#fds;
    if (fds !== undefined) {
      const f = fds.acquire(e, path);
      try {
        const fd = await f.opening;
        if (fd >= 0) {
          return await this.#readVerified(e, dir, path, fds.readerOf(fd), offset, length, into);
        }
        fds.retire(f); // let Deno tell why it cannot be opened
      } finally {
        fds.release(f);
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
      return await this.#readVerified(e, dir, path, seekReader(file), offset, length, into);
    } finally {
      file.close();
    }
  }

  /** {@linkcode readSegments} of `e`'s file; a corrupt or unreadable file is dropped. */
  async #readVerified(
    e: Entry,
    dir: DiskDir,
    path: string,
    readAt: ReadAt,
    offset: number,
    length: number,
    into?: Uint8Array,
  ): Promise<Uint8Array | undefined> {
    const file = { key: e.key, size: e.diskSize, table: e.table };
    const got = await readSegments(readAt, file, offset, length, into);
    if (typeof got === "string") {
      this.#dropCorrupt(e, dir, path, got);
      return undefined;
    }
    if (got.table !== undefined && e.disk === dir) e.table = got.table;
    return got.data;
  }

  /** A file that cannot be opened or read: dropped (reported unless it vanished). */
  #readFailed(e: Entry, dir: DiskDir, path: string, err: unknown): void {
    if (!(err instanceof Deno.errors.NotFound)) this.#report(`Cannot read "${path}"`, err);
    this.#dropDiskEntry(e, dir);
  }

  /** Counts, reports and deletes a corrupt block file, unless it was dropped meanwhile. */
  #dropCorrupt(e: Entry, dir: DiskDir, path: string, why: string): void {
    if (e.disk !== dir) return;
    this.#corrupt++;
    this.#report(`Dropped corrupt cached block "${e.key}" in "${path}": ${why}`);
    if (this.#dropDiskEntry(e, dir)) this.track(this.#unlink(dir, e));
  }

  /** Forgets `e`'s disk copy in `dir` if it is still there; true if it was. */
  #dropDiskEntry(e: Entry, dir: DiskDir): boolean {
    if (e.disk !== dir) return false;
    dir.index.remove(e.hash);
    e.disk = undefined;
    this.#forgetFile(e);
    this.#table.gc(e);
    return true;
  }

  /** Closes the open file of `e` (after its reads) and forgets its table: its file is going. */
  #forgetFile(e: Entry): void {
    e.table = undefined;
    this.#fds?.forget(e);
  }

  // --- write-behind queue ------------------------------------------------------------------

  /** Queues `data` of `e` for a disk tier; false (and counted as dropped) if the queue is full. */
  enqueue(e: Entry, data: Uint8Array, sums?: Uint8Array): boolean {
    if (this.dirs.length === 0 || this.#closed) return false;
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

  /** Resolves once the write-behind queue has room for `bytes` more (or is empty; no disk: now). */
  room(bytes: number): Promise<void> {
    bytes = Math.min(bytes, this.#writeBehindBytes);
    if (this.#hasRoom(bytes)) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push({ bytes, resolve }));
  }

  #hasRoom(bytes: number): boolean {
    return this.dirs.length === 0 || this.#closed ||
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
          this.#table.gc(item.e);
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
    if (keyBytes.length > MAX_KEY_BYTES) return void this.#dropped++;
    for (const dir of this.placement(e.hash)) {
      if (size > dir.capacity || !(await this.#makeRoom(dir, size))) continue;
      if (e.pending !== data || !this.#table.live(e)) return; // deleted meanwhile
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
      const path = filePath(dir.path, e);
      dir.budget.hold(size); // its bytes are not free while it is written
      try {
        const sub = path.slice(0, path.lastIndexOf("/"));
        if (!dir.subdirs.has(sub)) {
          await Deno.mkdir(sub, { recursive: true, mode: PRIVATE_DIR_MODE });
          dir.subdirs.add(sub);
        }
        await writeBlockFile(path, keyBytes, data, sums);
      } catch (err) {
        dir.budget.release(size, false);
        this.#dropDiskEntry(e, dir);
        throw err;
      }
      dir.budget.release(size, true);
      // Evicted or deleted while its file was being written: delete it now.
      if (e.disk !== dir || !this.#table.live(e)) await this.#unlinkPath(dir, path, size);
      return;
    }
    this.#dropped++;
  }

  // --- eviction and free space -------------------------------------------------------------

  /** Deletes the file of an entry the index of `dir` evicted. */
  async #evictDisk(dir: DiskDir, hash: bigint): Promise<void> {
    const e = this.#table.byHash(hash);
    if (e === undefined || e.disk !== dir) return;
    e.disk = undefined;
    this.#forgetFile(e);
    this.#evictions++;
    this.#table.gc(e);
    await this.#unlink(dir, e);
  }

  #unlink(dir: DiskDir, e: Entry): Promise<void> {
    return this.#unlinkPath(dir, filePath(dir.path, e), e.diskSize);
  }

  async #unlinkPath(dir: DiskDir, path: string, size: number): Promise<void> {
    try {
      await Deno.remove(path);
      dir.budget.used(-size);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) this.#report(`Cannot delete "${path}"`, err);
    }
  }

  /**
   * Makes sure writing `size` more bytes to `dir` keeps its filesystem's reserve and the room of
   * staged writes (see {@linkcode DiskBudget.shortfall}), deleting the least accessed blocks of
   * `dir` if needed. False if the write must be skipped.
   */
  async #makeRoom(dir: DiskDir, size: number): Promise<boolean> {
    const shortBy = await dir.budget.shortfall(size);
    if (shortBy === undefined || shortBy <= 0) return true; // unknown: rely on the byte cap
    const mine = dir.index.bytes;
    // Without the write, we may still have to give space back.
    const target = mine >= shortBy ? shortBy + Math.floor(mine / 64) : shortBy - size;
    if (target > 0) await this.#evictLeastAccessed([dir], target);
    return mine >= shortBy;
  }

  /** Deletes the least accessed blocks of the directories on `budget` to free `bytes`. */
  #yieldSpace(budget: DiskBudget, bytes: number): Promise<number> {
    return this.#evictLeastAccessed(this.dirs.filter((d) => d.budget === budget), bytes);
  }

  /** Deletes the least accessed blocks of `dirs` until `target` bytes are freed; the bytes freed. */
  async #evictLeastAccessed(dirs: DiskDir[], target: number): Promise<number> {
    const victims: Array<{ dir: DiskDir; hash: bigint; frequency: number; size: number }> = [];
    for (const dir of dirs) {
      for (const [hash, slot] of dir.index.entries()) {
        victims.push({ dir, hash, frequency: dir.index.frequency(hash), size: slot.size });
      }
    }
    victims.sort((a, b) => a.frequency - b.frequency);
    let freed = 0;
    const deletes: Promise<void>[] = [];
    for (const v of victims) {
      if (freed >= target) break;
      v.dir.index.remove(v.hash);
      freed += v.size;
      deletes.push(this.#evictDisk(v.dir, v.hash));
    }
    await Promise.all(deletes);
    return freed;
  }

  // --- scan --------------------------------------------------------------------------------

  /** Rebuilds the index of `dir` from its files, oldest first. */
  async #scan(dir: DiskDir): Promise<void> {
    await makePrivateDir(dir.path, (n) => /^[0-9a-f]{2}$/.test(n) || n === DIR_LOCK_NAME);
    const found: Array<{ e: Entry; mtime: number }> = [];
    const files: string[] = [];
    for await (const d of Deno.readDir(dir.path)) {
      if (!d.isDirectory || !/^[0-9a-f]{2}$/.test(d.name)) continue;
      const sub = `${dir.path}/${d.name}`;
      dir.subdirs.add(sub);
      await tightenMode(sub, PRIVATE_DIR_MODE); // ours, even in a shared --cache-dir
      for await (const f of Deno.readDir(sub)) {
        if (f.isFile) files.push(`${sub}/${f.name}`);
      }
    }
    await pLimit(SCAN_CONCURRENCY).map(files, async (path) => {
      const name = path.slice(path.lastIndexOf("/") + 1);
      const head = name.startsWith(".") ? undefined : await readHeader(path).catch(() => undefined);
      const hash = head === undefined ? 0n : hashKey(head.key);
      const e = head === undefined || filePath(dir.path, { key: head.key, hash }) !== path
        ? undefined
        : this.#table.add(head.key, hash, dir, head.size);
      if (e === undefined) await Deno.remove(path).catch(() => {});
      else found.push({ e, mtime: head!.mtime });
    });
    found.sort((a, b) => a.mtime - b.mtime);
    const deletes: Promise<void>[] = [];
    for (const { e } of found) {
      if (e.disk !== dir) continue;
      const evicted = dir.index.insert(e.hash, { tier: dir.tier, location: 0, size: e.diskSize });
      for (const x of evicted) deletes.push(this.#evictDisk(dir, x.key));
    }
    await Promise.all(deletes);
    await this.#makeRoom(dir, 0);
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
