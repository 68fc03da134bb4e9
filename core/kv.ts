/**
 * The metadata engine interface: a transactional, ordered key-value store.
 *
 * The core keeps all filesystem metadata (inodes, directory entries, chunk slice lists, xattrs,
 * counters) as keys in one of these engines and changes them only inside {@linkcode KvEngine.txn}.
 * Anything that gives serializable multi-key transactions and ordered prefix scans fits: the
 * embedded SQLite engine and the memory engine today; Redis (WATCH/MULTI or Lua over sorted sets),
 * PostgreSQL (SERIALIZABLE over one table) and TiKV-style stores later, without core changes.
 *
 * Rules for engines:
 * - A transaction sees its own writes; it commits atomically or not at all.
 * - An engine may run `fn` more than once (optimistic retry after a conflict), so `fn` must have no
 *   side effects other than through `tx`.
 * - Keys are strings whose chars are all in 0..255 ("byte strings"); they compare as byte strings.
 *   Values are opaque bytes; the engine must not keep a reference to a value passed to `set` past
 *   the commit (the core may reuse it).
 *
 * @module
 */

/** One key and its value from a scan. */
export type KvPair = readonly [key: string, value: Uint8Array];

/** The operations available inside a transaction. */
export interface KvTxn {
  /** The value of `key`, or `undefined`. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** The values of many keys at once, in order. */
  getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]>;
  /** Sets `key` (visible to later reads of this transaction). */
  set(key: string, value: Uint8Array): void;
  /** Deletes `key` (a no-op if absent). */
  delete(key: string): void;
  /**
   * Keys starting with `prefix`, ascending, with their values; at most `limit` pairs, starting
   * after `startAfter` when given.
   */
  scan(prefix: string, options?: ScanOptions): Promise<KvPair[]>;
}

/** Options of {@linkcode KvTxn.scan}. */
export interface ScanOptions {
  /** Only keys greater than this one. */
  startAfter?: string;
  /** At most this many pairs (default: all). */
  limit?: number;
  /** Only the keys are needed: values may be returned empty. */
  keysOnly?: boolean;
}

/** Options of {@linkcode KvEngine.txn}. */
export interface TxnOptions {
  /** The transaction only reads; engines may use a snapshot and skip locking. */
  readOnly?: boolean;
}

/** A metadata engine. */
export interface KvEngine {
  /** The engine's scheme name, e.g. `"sqlite3"` or `"mem"`. */
  readonly scheme: string;
  /**
   * Requests sent to the server so far (network engines; for benchmarks that print round trips
   * per operation). Embedded engines leave it undefined.
   */
  readonly roundTrips?: number;
  /** Runs `fn` in a serializable transaction and returns what it returns. */
  txn<T>(fn: (tx: KvTxn) => Promise<T>, options?: TxnOptions): Promise<T>;
  /** Flushes and closes; idempotent. */
  close(): Promise<void>;
}
