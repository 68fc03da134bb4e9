/**
 * `MemoryKvEngine`: the `mem://` metadata engine, a transactional ordered map in this process.
 *
 * Decisions:
 * - Keys live in a chunked sorted list ({@linkcode SortedKeys}) beside a `Map` of values, so a
 *   prefix scan starts with a binary search and reads only what it returns.
 * - Transactions run one at a time (a promise-chain mutex), which makes them serializable;
 *   writes are buffered in the transaction and applied synchronously at commit, so a `fn` that
 *   throws applies nothing and a reader never sees half a commit.
 * - Values are copied on `set` and on every read: neither side can alias the engine's bytes.
 *   Committed values up to 1 KiB are kept as byte strings rather than `Uint8Array`s: V8 keeps
 *   a million small strings far more cheaply than a million typed arrays (each of which the
 *   garbage collector must track), which keeps large in-memory filesystems fast.
 * - {@linkcode MemoryKvEngine.share} gives another handle on the same data, so a test can close
 *   and "remount" in one process.
 *
 * @module
 */

import type { KvEngine, KvPair, KvTxn, ScanOptions, TxnOptions } from "../core/kv.ts";
import { Errno, FsError } from "../core/errno.ts";
import { Mutex } from "./_mutex.ts";
import { type PendingWrites, scanWithOverlay } from "./_overlay.ts";
import { SortedKeys } from "./_sorted_keys.ts";
import { bytesToByteString, byteStringToBytes } from "../core/_bytes.ts";

const EMPTY = new Uint8Array(0);

/** Values up to this size are kept as byte strings (see the module notes). */
const SMALL_VALUE = 1024;

/** A stored value: a byte string when small, else a private copy of the bytes. */
type Stored = string | Uint8Array;

function store(value: Uint8Array): Stored {
  if (value.length > SMALL_VALUE) return value;
  return bytesToByteString(value);
}

function load(stored: Stored): Uint8Array {
  return typeof stored === "string" ? byteStringToBytes(stored) : stored.slice();
}

/** The data and lock that handles of one memory engine share. */
class MemoryKvData {
  readonly keys = new SortedKeys();
  readonly values = new Map<string, Stored>();
  readonly mutex = new Mutex();

  get(key: string): Uint8Array | undefined {
    const stored = this.values.get(key);
    return stored === undefined ? undefined : load(stored);
  }

  scan(prefix: string, lower: string, limit: number | undefined, keysOnly: boolean): KvPair[] {
    const out: KvPair[] = [];
    const max = limit ?? Infinity;
    if (max <= 0) return out;
    for (const key of this.keys.from(lower)) {
      if (!key.startsWith(prefix)) break;
      out.push([key, keysOnly ? EMPTY : load(this.values.get(key)!)]);
      if (out.length >= max) break;
    }
    return out;
  }

  apply(pending: PendingWrites): void {
    for (const [key, value] of pending) {
      if (value === null) {
        if (this.values.delete(key)) this.keys.delete(key);
      } else {
        if (!this.values.has(key)) this.keys.add(key);
        this.values.set(key, store(value));
      }
    }
  }
}

/** One transaction: reads see the committed data overlaid with this transaction's writes. */
class MemoryTxn implements KvTxn {
  readonly #data: MemoryKvData;
  readonly #readOnly: boolean;
  readonly pending: PendingWrites = new Map();
  done = false;

  constructor(data: MemoryKvData, readOnly: boolean) {
    this.#data = data;
    this.#readOnly = readOnly;
  }

  #check(): void {
    if (this.done) throw new Error("Transaction is already finished");
  }

  #checkWrite(): void {
    this.#check();
    if (this.#readOnly) throw new FsError(Errno.EROFS, "Write in a read-only transaction");
  }

  get(key: string): Promise<Uint8Array | undefined> {
    this.#check();
    const mine = this.pending.get(key);
    if (mine !== undefined) return Promise.resolve(mine === null ? undefined : mine.slice());
    return Promise.resolve(this.#data.get(key));
  }

  getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    this.#check();
    return Promise.resolve(keys.map((key) => {
      const mine = this.pending.get(key);
      if (mine !== undefined) return mine === null ? undefined : mine.slice();
      return this.#data.get(key);
    }));
  }

  set(key: string, value: Uint8Array): void {
    this.#checkWrite();
    this.pending.set(key, value.slice());
  }

  delete(key: string): void {
    this.#checkWrite();
    this.pending.set(key, null);
  }

  scan(prefix: string, options?: ScanOptions): Promise<KvPair[]> {
    this.#check();
    const keysOnly = options?.keysOnly === true;
    return Promise.resolve(
      scanWithOverlay(
        this.pending,
        prefix,
        options,
        (lower, limit) => this.#data.scan(prefix, lower, limit, keysOnly),
      ),
    );
  }
}

/**
 * The in-memory metadata engine (scheme `"mem"`).
 *
 * @example
 * ```ts
 * import { MemoryKvEngine } from "./kv_memory.ts";
 * const kv = new MemoryKvEngine();
 * await kv.txn(async (tx) => tx.set("a", new Uint8Array([1])));
 * const value = await kv.txn((tx) => tx.get("a"));
 * if (value?.[0] !== 1) throw new Error("unexpected");
 * await kv.close();
 * ```
 */
export class MemoryKvEngine implements KvEngine {
  /** Always `"mem"`. */
  readonly scheme = "mem";
  #data: MemoryKvData;
  #closed = false;

  /** Creates an empty engine. */
  constructor() {
    this.#data = new MemoryKvData();
  }

  /** How many keys the engine holds (committed). */
  get size(): number {
    return this.#data.values.size;
  }

  /**
   * A new handle on the same data and lock. Closing one handle leaves the others (and the
   * data) usable, which lets tests close and reopen an engine in one process.
   */
  share(): MemoryKvEngine {
    const other = new MemoryKvEngine();
    other.#data = this.#data;
    return other;
  }

  /** Runs `fn` in a serializable transaction; its writes apply only if it resolves. */
  txn<T>(fn: (tx: KvTxn) => Promise<T>, options?: TxnOptions): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('Metadata engine "mem" is closed'));
    const data = this.#data;
    return data.mutex.run(async () => {
      const tx = new MemoryTxn(data, options?.readOnly === true);
      try {
        const result = await fn(tx);
        data.apply(tx.pending);
        return result;
      } finally {
        tx.done = true;
      }
    });
  }

  /** Waits for running transactions and closes this handle; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#data.mutex.idle();
  }
}
