/**
 * The block layer: reads and writes slices as blocks in a {@linkcode BlockStore}, with a memory
 * block cache, a cache of resolved chunk slice lists, and deletion of freed slices.
 *
 * @module
 */

import type { BlockStore } from "./block_store.ts";
import { Errno, FsError } from "./errno.ts";
import type { FreedSlice, Meta } from "./meta.ts";
import { blockKey, resolveSegments, sliceBlocks, type SliceRecord } from "./slice.ts";
import type { Ino, SliceId } from "./types.ts";

/** Options of the block layer. */
export interface DataOptions {
  /** Bytes of whole blocks kept in memory (default 128 MiB). */
  cacheBytes?: number;
  /** Uploads in flight per file (default: the store's concurrency). */
  uploadConcurrency?: number;
}

/** A least-recently-used cache of whole blocks, bounded in bytes. */
export class BlockCache {
  #map = new Map<string, Uint8Array>();
  #bytes = 0;
  readonly capacity: number;
  hits = 0;
  misses = 0;

  /** Creates a cache of `capacity` bytes. */
  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** The cached block, refreshed as most recently used. */
  get(key: string): Uint8Array | undefined {
    const v = this.#map.get(key);
    if (v) {
      this.#map.delete(key);
      this.#map.set(key, v);
      this.hits++;
    } else {
      this.misses++;
    }
    return v;
  }

  /** Caches a block, evicting the least recently used ones to stay under capacity. */
  put(key: string, value: Uint8Array): void {
    if (value.byteLength > this.capacity) return;
    this.delete(key);
    this.#map.set(key, value);
    this.#bytes += value.byteLength;
    for (const [k, v] of this.#map) {
      if (this.#bytes <= this.capacity) break;
      this.#map.delete(k);
      this.#bytes -= v.byteLength;
    }
  }

  /** Drops a block. */
  delete(key: string): void {
    const v = this.#map.get(key);
    if (v) {
      this.#map.delete(key);
      this.#bytes -= v.byteLength;
    }
  }

  /** Bytes cached. */
  get bytes(): number {
    return this.#bytes;
  }
}

/** Reads and writes file data as slices of blocks. */
export class DataEngine {
  readonly store: BlockStore;
  readonly meta: Meta;
  readonly blockSize: number;
  readonly chunkSize: number;
  readonly cache: BlockCache;
  readonly uploadConcurrency: number;
  #inflight = new Map<string, Promise<Uint8Array>>();
  #segments = new Map<Ino, Map<number, SliceRecord[]>>();
  #segmentCount = 0;
  #generation = 0;

  /** Creates the block layer of a volume. */
  constructor(store: BlockStore, meta: Meta, options: DataOptions = {}) {
    this.store = store;
    this.meta = meta;
    this.blockSize = meta.format.blockSize;
    this.chunkSize = meta.format.chunkSize;
    this.cache = new BlockCache(options.cacheBytes ?? 128 << 20);
    this.uploadConcurrency = options.uploadConcurrency ?? Math.max(2, store.limits.concurrency);
  }

  /** Stores block `index` of slice `id`. */
  async putBlock(id: SliceId, index: number, data: Uint8Array): Promise<void> {
    await this.store.put(blockKey(id, index, data.byteLength), data);
  }

  /** A whole block, from the cache or the store (concurrent misses share one fetch). */
  getBlock(id: SliceId, index: number, len: number): Promise<Uint8Array> {
    const key = blockKey(id, index, len);
    const hit = this.cache.get(key);
    if (hit) return Promise.resolve(hit);
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.store.get(key).then((data) => {
        if (data.byteLength !== len) {
          throw new FsError(Errno.EIO, `Block "${key}" has ${data.byteLength} bytes, not ${len}`);
        }
        this.cache.put(key, data);
        return data;
      }, (err) => {
        throw new FsError(Errno.EIO, `Cannot read block "${key}": ${err}`, { cause: err });
      }).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  /**
   * Copies bytes `[off, off+len)` of slice `id` (of `size` bytes) into `dst` at `dstOff`.
   * Small reads of uncached blocks fetch only the range; larger ones fetch whole blocks.
   */
  async readSlice(
    id: SliceId,
    size: number,
    off: number,
    len: number,
    dst: Uint8Array,
    dstOff: number,
  ): Promise<void> {
    const bs = this.blockSize;
    const tasks: Promise<void>[] = [];
    let pos = off;
    while (pos < off + len) {
      const index = Math.floor(pos / bs);
      const blockLen = Math.min(bs, size - index * bs);
      const inBlock = pos - index * bs;
      const n = Math.min(off + len - pos, blockLen - inBlock);
      const at = dstOff + (pos - off);
      const key = blockKey(id, index, blockLen);
      const cached = this.cache.get(key);
      if (cached) {
        dst.set(cached.subarray(inBlock, inBlock + n), at);
      } else if (n < bs / 4 && !this.#inflight.has(key)) {
        tasks.push(
          this.store.get(key, inBlock, n).then((part) => {
            if (part.byteLength !== n) {
              throw new FsError(Errno.EIO, `Block "${key}" is shorter than expected`);
            }
            dst.set(part, at);
          }, (err) => {
            if (err instanceof FsError) throw err;
            throw new FsError(Errno.EIO, `Cannot read block "${key}": ${err}`, { cause: err });
          }),
        );
      } else {
        tasks.push(
          this.getBlock(id, index, blockLen).then((b) => {
            dst.set(b.subarray(inBlock, inBlock + n), at);
          }),
        );
      }
      pos += n;
    }
    await Promise.all(tasks);
  }

  /** The resolved segments of one chunk (cached until {@linkcode invalidate}). */
  async segments(ino: Ino, chunk: number): Promise<SliceRecord[]> {
    let perIno = this.#segments.get(ino);
    const hit = perIno?.get(chunk);
    if (hit) return hit;
    const gen = this.#generation;
    const segs = resolveSegments(await this.meta.readChunk(ino, chunk));
    if (gen !== this.#generation) return segs; // changed meanwhile: do not cache
    perIno = this.#segments.get(ino);
    if (this.#segmentCount > 65536) {
      this.#segments.clear();
      this.#segmentCount = 0;
    }
    if (!perIno) this.#segments.set(ino, perIno = new Map());
    perIno.set(chunk, segs);
    this.#segmentCount++;
    return segs;
  }

  /** Forgets cached slice lists of `ino` (after it changed). */
  invalidate(ino: Ino): void {
    this.#generation++;
    const perIno = this.#segments.get(ino);
    if (perIno) {
      this.#segmentCount -= perIno.size;
      this.#segments.delete(ino);
    }
  }

  /** Reads committed data of `ino` in `[off, off+len)` into `out` (zeros for holes). */
  async readCommitted(ino: Ino, off: number, len: number, out: Uint8Array): Promise<void> {
    const cs = this.chunkSize;
    const end = off + len;
    const tasks: Promise<void>[] = [];
    for (let c = Math.floor(off / cs); c * cs < end; c++) {
      const base = c * cs;
      const segs = await this.segments(ino, c);
      for (const s of segs) {
        if (s.id === 0) continue;
        const lo = Math.max(off, base + s.pos);
        const hi = Math.min(end, base + s.pos + s.len);
        if (hi <= lo) continue;
        tasks.push(
          this.readSlice(s.id, s.size, s.off + (lo - base - s.pos), hi - lo, out, lo - off),
        );
      }
    }
    await Promise.all(tasks);
  }

  /** Deletes the blocks of freed slices, then forgets them in the metadata. */
  async deleteSlices(freed: readonly FreedSlice[]): Promise<void> {
    if (freed.length === 0) return;
    const keys: string[] = [];
    for (const f of freed) {
      for (const [i, len] of sliceBlocks(f.size, this.blockSize)) {
        const key = blockKey(f.id, i, len);
        this.cache.delete(key);
        keys.push(key);
      }
    }
    for (let i = 0; i < keys.length; i += 1000) await this.store.delete(keys.slice(i, i + 1000));
    await this.meta.clearGarbage(freed.map((f) => f.id));
  }

  /** Deletes the blocks of every slice left in the garbage list (e.g. after a crash). */
  async collectGarbage(): Promise<number> {
    let n = 0;
    for (;;) {
      const batch = await this.meta.listGarbage(1000);
      if (batch.length === 0) return n;
      await this.deleteSlices(batch);
      n += batch.length;
    }
  }
}
