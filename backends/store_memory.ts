/**
 * `MemoryBlockStore`: the `mem://` block store, objects in a `Map` in this process.
 *
 * Decisions: objects are copied in and out, so neither side can alias the other's bytes;
 * listing sorts the keys on each call (listing is for gc and tools, not the data path);
 * {@linkcode MemoryBlockStore.share} gives another handle on the same objects for in-process
 * remount tests.
 *
 * @module
 */

import {
  type BlockStore,
  type ListPage,
  NotFoundError,
  type ObjectInfo,
} from "../core/block_store.ts";
import type { StoreLimits } from "../core/block_store.ts";
import { compareKeys } from "./_overlay.ts";

/** The default page size of {@linkcode BlockStore.list} in the bundled stores. */
export const DEFAULT_LIST_LIMIT = 1000;

/**
 * A block store in memory.
 *
 * @example
 * ```ts
 * import { MemoryBlockStore } from "./store_memory.ts";
 * const store = new MemoryBlockStore();
 * await store.put("a/1", new Uint8Array([1, 2, 3]));
 * const bytes = await store.get("a/1", 1, 1);
 * if (bytes[0] !== 2) throw new Error("unexpected");
 * ```
 */
export class MemoryBlockStore implements BlockStore {
  /** `mem://` plus the name given. */
  readonly url: string;
  /** 64 requests in flight. */
  readonly limits: StoreLimits = { concurrency: 64 };
  /** Each object's bytes and when it was put. */
  #objects = new Map<string, { data: Uint8Array; mtime: number }>();

  /** Creates an empty store; `name` only appears in {@linkcode MemoryBlockStore.url}. */
  constructor(name = "") {
    this.url = `mem://${name}`;
  }

  /** A new handle on the same objects. */
  share(): MemoryBlockStore {
    const other = new MemoryBlockStore(this.url.slice("mem://".length));
    other.#objects = this.#objects;
    return other;
  }

  /** How many objects the store holds. */
  get size(): number {
    return this.#objects.size;
  }

  /** Stores a copy of `data` under `key`. */
  put(key: string, data: Uint8Array): Promise<void> {
    this.#objects.set(key, { data: data.slice(), mtime: Date.now() });
    return Promise.resolve();
  }

  /** Reads a copy of the range; throws {@linkcode NotFoundError} for a missing key. */
  get(key: string, offset = 0, length?: number): Promise<Uint8Array> {
    const data = this.#objects.get(key)?.data;
    if (data === undefined) return Promise.reject(new NotFoundError(key));
    const end = length === undefined ? data.length : Math.min(data.length, offset + length);
    return Promise.resolve(data.slice(Math.min(offset, data.length), Math.max(offset, end)));
  }

  /** The object's size, or `undefined`. */
  head(key: string): Promise<ObjectInfo | undefined> {
    const o = this.#objects.get(key);
    return Promise.resolve(o && { key, size: o.data.length, mtime: o.mtime });
  }

  /** Deletes keys; missing ones are ignored. */
  delete(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.#objects.delete(key);
    return Promise.resolve();
  }

  /** Lists keys under `prefix`, ascending, one page at a time. */
  list(prefix: string, options?: { startAfter?: string; limit?: number }): Promise<ListPage> {
    const startAfter = options?.startAfter;
    const limit = options?.limit ?? DEFAULT_LIST_LIMIT;
    const keys: string[] = [];
    for (const key of this.#objects.keys()) {
      if (key.startsWith(prefix) && (startAfter === undefined || key > startAfter)) keys.push(key);
    }
    keys.sort(compareKeys);
    const objects = keys.slice(0, limit).map((key) => {
      const o = this.#objects.get(key)!;
      return { key, size: o.data.length, mtime: o.mtime };
    });
    return Promise.resolve({ objects, truncated: keys.length > limit });
  }

  /** Nothing to release; the objects stay for other handles. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
