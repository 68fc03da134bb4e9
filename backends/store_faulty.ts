/**
 * `FaultyBlockStore`: a fault-injection decorator for tests. It fails chosen calls with a chosen
 * error before they reach the inner store, and can add latency to every call.
 *
 * @module
 */

import type { BlockStore, ListPage, ObjectInfo, StoreLimits } from "../core/block_store.ts";
import { Errno, FsError } from "../core/errno.ts";

/** The block store operations. */
export type StoreOp = "put" | "get" | "head" | "delete" | "list";

/** One call as fault rules see it: `keys` holds the key, the deleted keys or the list prefix. */
export interface StoreCall {
  /** The operation. */
  readonly op: StoreOp;
  /** The key of `put`/`get`/`head`, the keys of `delete`, the prefix of `list`. */
  readonly keys: readonly string[];
}

/** The error a rule throws: an error, or a function making one for the call. */
export type FaultError = Error | ((call: StoreCall) => Error);

/** Options of {@linkcode FaultyBlockStore}. */
export interface FaultyBlockStoreOptions {
  /** Milliseconds added before every call (default 0). */
  latencyMs?: number;
}

interface Rule {
  match: (call: StoreCall) => boolean;
  error: FaultError | undefined;
  remaining: number;
}

/**
 * A block store that fails on demand.
 *
 * @example
 * ```ts
 * import { FaultyBlockStore } from "./store_faulty.ts";
 * import { MemoryBlockStore } from "./store_memory.ts";
 * const store = new FaultyBlockStore(new MemoryBlockStore());
 * store.failNext(1, undefined, (call) => call.op === "put");
 * const failed = await store.put("a", new Uint8Array(1)).then(() => false, () => true);
 * await store.put("a", new Uint8Array(1)); // the fault was used up
 * if (!failed || store.counts.put !== 2) throw new Error("unexpected");
 * ```
 */
export class FaultyBlockStore implements BlockStore {
  /** The inner store's URL. */
  readonly url: string;
  /** Milliseconds added before every call; may be changed at any time. */
  latencyMs: number;
  /** How many calls of each operation were made (failed ones included). */
  readonly counts: Record<StoreOp, number> = { put: 0, get: 0, head: 0, delete: 0, list: 0 };
  readonly #inner: BlockStore;
  #rules: Rule[] = [];

  /** Wraps `inner`. */
  constructor(inner: BlockStore, options: FaultyBlockStoreOptions = {}) {
    this.#inner = inner;
    this.url = inner.url;
    this.latencyMs = options.latencyMs ?? 0;
  }

  /** The inner store's limits. */
  get limits(): StoreLimits {
    return this.#inner.limits;
  }

  /**
   * Fails the next `count` calls that `match` accepts (all calls by default) with `error`
   * (default: an `EIO` {@linkcode FsError}).
   */
  failNext(count = 1, error?: FaultError, match: (call: StoreCall) => boolean = () => true): void {
    if (count > 0) this.#rules.push({ match, error, remaining: count });
  }

  /** Fails every call that `match` accepts until the returned function is called. */
  failWhen(match: (call: StoreCall) => boolean, error?: FaultError): () => void {
    const rule: Rule = { match, error, remaining: Infinity };
    this.#rules.push(rule);
    return () => {
      this.#rules = this.#rules.filter((r) => r !== rule);
    };
  }

  /** Removes every fault rule. */
  clearFaults(): void {
    this.#rules = [];
  }

  async #enter(op: StoreOp, keys: readonly string[]): Promise<void> {
    this.counts[op]++;
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    const call: StoreCall = { op, keys };
    const rule = this.#rules.find((r) => r.remaining > 0 && r.match(call));
    if (rule === undefined) return;
    if (--rule.remaining === 0) this.#rules = this.#rules.filter((r) => r !== rule);
    const error = rule.error;
    if (error === undefined) {
      throw new FsError(Errno.EIO, `Injected fault in ${op} of "${keys.join('", "')}"`);
    }
    throw typeof error === "function" ? error(call) : error;
  }

  /** Stores `data` unless a fault hits. */
  async put(key: string, data: Uint8Array): Promise<void> {
    await this.#enter("put", [key]);
    return await this.#inner.put(key, data);
  }

  /** Reads unless a fault hits. */
  async get(key: string, offset?: number, length?: number): Promise<Uint8Array> {
    await this.#enter("get", [key]);
    return await this.#inner.get(key, offset, length);
  }

  /** The object's size unless a fault hits. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    await this.#enter("head", [key]);
    return await this.#inner.head(key);
  }

  /** Deletes unless a fault hits. */
  async delete(keys: readonly string[]): Promise<void> {
    await this.#enter("delete", keys);
    return await this.#inner.delete(keys);
  }

  /** Lists unless a fault hits (rules see the prefix as the only key). */
  async list(prefix: string, options?: { startAfter?: string; limit?: number }): Promise<ListPage> {
    await this.#enter("list", [prefix]);
    return await this.#inner.list(prefix, options);
  }

  /** Closes the inner store. */
  close(): Promise<void> {
    return this.#inner.close();
  }
}
