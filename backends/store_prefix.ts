/**
 * `PrefixBlockStore`: a decorator that keeps every key of a store under a fixed prefix, so that
 * several filesystems (or tests) can share one bucket or directory.
 *
 * @module
 */

import {
  type BlockStore,
  type ListPage,
  NotFoundError,
  type ObjectInfo,
  type StoreLimits,
} from "../core/block_store.ts";

/**
 * A block store whose keys all live under `prefix` in `inner`. Closing it closes `inner`.
 *
 * @example
 * ```ts
 * import { MemoryBlockStore } from "./store_memory.ts";
 * import { PrefixBlockStore } from "./store_prefix.ts";
 * const inner = new MemoryBlockStore();
 * const store = new PrefixBlockStore(inner, "vol1/");
 * await store.put("a", new Uint8Array([1]));
 * if ((await inner.head("vol1/a"))?.size !== 1) throw new Error("unexpected");
 * ```
 */
export class PrefixBlockStore implements BlockStore {
  /** The inner store's URL with the prefix appended. */
  readonly url: string;
  /** The prefix prepended to every key. */
  readonly prefix: string;
  readonly #inner: BlockStore;

  /** Wraps `inner`; `prefix` usually ends with `/`. */
  constructor(inner: BlockStore, prefix: string) {
    this.#inner = inner;
    this.prefix = prefix;
    this.url = inner.url.endsWith("/") || prefix === ""
      ? inner.url + prefix
      : `${inner.url}/${prefix}`;
  }

  /** The inner store's limits. */
  get limits(): StoreLimits {
    return this.#inner.limits;
  }

  /** Stores `data` under the prefixed key. */
  put(key: string, data: Uint8Array): Promise<void> {
    return this.#inner.put(this.prefix + key, data);
  }

  /** Reads from the prefixed key; a {@linkcode NotFoundError} names the unprefixed key. */
  async get(
    key: string,
    offset?: number,
    length?: number,
    into?: Uint8Array,
  ): Promise<Uint8Array> {
    try {
      return await this.#inner.get(this.prefix + key, offset, length, into);
    } catch (err) {
      if (err instanceof NotFoundError) throw new NotFoundError(key, { cause: err });
      throw err;
    }
  }

  /** The object's size, or `undefined`. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    const info = await this.#inner.head(this.prefix + key);
    return info === undefined ? undefined : { ...info, key };
  }

  /** Deletes the prefixed keys. */
  delete(keys: readonly string[]): Promise<void> {
    return this.#inner.delete(keys.map((key) => this.prefix + key));
  }

  /** Lists keys under `prefix` (within this store's prefix), unprefixed. */
  async list(prefix: string, options?: { startAfter?: string; limit?: number }): Promise<ListPage> {
    const inner: { startAfter?: string; limit?: number } = {};
    if (options?.startAfter !== undefined) inner.startAfter = this.prefix + options.startAfter;
    if (options?.limit !== undefined) inner.limit = options.limit;
    const page = await this.#inner.list(this.prefix + prefix, inner);
    const cut = this.prefix.length;
    return {
      objects: page.objects.map((o) => ({ ...o, key: o.key.slice(cut) })),
      truncated: page.truncated,
    };
  }

  /** Closes the inner store. */
  close(): Promise<void> {
    return this.#inner.close();
  }
}
