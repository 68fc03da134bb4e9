/**
 * Helpers of the block layer (`core/data.ts`) that need only its public parts: walking the
 * blocks of a file range, fetching them into the cache, and deleting freed slices.
 *
 * @module
 */

import type { BlockStore } from "./block_store.ts";
import type { BlockCacheLike } from "./cache/mod.ts";
import type { FreedSlice } from "./meta/mod.ts";
import { blockKey, freedSliceKeys, type SliceRecord } from "./slice.ts";
import type { Ino, SliceId } from "./types.ts";

/** A stored block of a file range. */
export interface BlockRef {
  /** Its slice. */
  id: SliceId;
  /** Its index in the slice. */
  index: number;
  /** Its raw length. */
  blockLen: number;
  /** Its object key. */
  key: string;
}

/** The stored blocks holding bytes `[off, off+len)` of `ino`, in file order. */
export async function* blocksOf(
  data: {
    readonly chunkSize: number;
    readonly blockSize: number;
    segments(ino: Ino, chunk: number): Promise<SliceRecord[]>;
  },
  ino: Ino,
  off: number,
  len: number,
): AsyncGenerator<BlockRef> {
  const cs = data.chunkSize;
  const bs = data.blockSize;
  const end = off + len;
  for (let c = Math.floor(off / cs); c * cs < end; c++) {
    const base = c * cs;
    for (const s of await data.segments(ino, c)) {
      if (s.id === 0) continue;
      const lo = Math.max(off, base + s.pos);
      const hi = Math.min(end, base + s.pos + s.len);
      for (let p = lo; p < hi;) {
        const inSlice = s.off + (p - base - s.pos);
        const index = Math.floor(inSlice / bs);
        const blockLen = Math.min(bs, s.size - index * bs);
        yield { id: s.id, index, blockLen, key: blockKey(s.id, index, blockLen) };
        p += (index + 1) * bs - inSlice;
      }
    }
  }
}

/**
 * Fetches the blocks of `[off, off+len)` of `ino` into `data`'s cache (`DataEngine.warm`);
 * returns how many it fetched.
 */
export async function warmBlocks(
  data: Parameters<typeof blocksOf>[0] & {
    readonly cache: BlockCacheLike;
    getBlock(id: SliceId, index: number, len: number): Promise<Uint8Array>;
  },
  ino: Ino,
  off: number,
  len: number,
): Promise<number> {
  const tasks: Promise<unknown>[] = [];
  for await (const b of blocksOf(data, ino, off, len)) {
    if (data.cache.has(b.key)) continue;
    // Background fetches wait for room in the cache's write-behind queue, so that they are
    // kept rather than dropped and fetched again when the reader gets there.
    await data.cache.room?.(b.blockLen);
    if (!data.cache.has(b.key)) tasks.push(data.getBlock(b.id, b.index, b.blockLen));
  }
  await Promise.all(tasks);
  return tasks.length;
}

/**
 * Deletes the blocks of freed slices (1,000 keys per request) and their cached copies, calls
 * `forget` with each slice id, then clears the slices' garbage entries in the metadata.
 */
export async function deleteSlices(
  data: {
    readonly blockSize: number;
    readonly cache: BlockCacheLike;
    readonly store: BlockStore;
    readonly meta: { clearGarbage(ids: readonly SliceId[]): Promise<void> };
  },
  freed: readonly FreedSlice[],
  forget: (id: SliceId) => void,
): Promise<void> {
  if (freed.length === 0) return;
  const keys: string[] = [];
  for (const f of freed) {
    for (const key of freedSliceKeys(f, data.blockSize)) {
      if (key.startsWith("chunks/")) await data.cache.delete(key);
      keys.push(key);
    }
    forget(f.id);
  }
  for (let i = 0; i < keys.length; i += 1000) await data.store.delete(keys.slice(i, i + 1000));
  await data.meta.clearGarbage(freed.map((f) => f.id));
}

/** Deletes the blocks of every slice left in the garbage list (1,000 at a time); how many. */
export async function collectGarbage(
  meta: { listGarbage(limit: number): Promise<FreedSlice[]> },
  remove: (batch: FreedSlice[]) => Promise<void>,
): Promise<number> {
  let n = 0;
  for (;;) {
    const batch = await meta.listGarbage(1000);
    if (batch.length === 0) return n;
    await remove(batch);
    n += batch.length;
  }
}
