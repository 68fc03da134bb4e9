/**
 * The PostgreSQL engine's transactions (private to `kv_postgres.ts`): an {@linkcode Attempt}
 * holds one pooled connection, pipelines `BEGIN` with the first statement and commits buffered
 * writes in one round trip; {@linkcode PgTxn} is the {@linkcode KvTxn} over it. The decisions are
 * in `kv_postgres.ts`.
 *
 * @module
 */

import type postgres from "postgres";
import { Buffer } from "node:buffer";
import type { KvPair, KvTxn, ScanOptions } from "../core/kv.ts";
import { Errno, FsError } from "../core/errno.ts";
import { prefixUpperBound, scanLowerBound } from "./_keys.ts";
import { type PendingWrites, scanWithOverlay } from "./_overlay.ts";
import { classify, type PgFailure } from "./_pg_errors.ts";

/** The table of keys and values. */
export const KV_TABLE = "slayerfs_kv";
/** The table of the schema version. */
export const SCHEMA_TABLE = "slayerfs_schema";
const EMPTY = new Uint8Array(0);

const BEGIN_WRITE = "BEGIN ISOLATION LEVEL SERIALIZABLE";
const BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
const SQL_GET = `SELECT value FROM ${KV_TABLE} WHERE key = $1`;
const SQL_GET_MANY = `SELECT key, value FROM ${KV_TABLE} WHERE key = ANY($1::bytea[])`;
const SQL_UPSERT = `INSERT INTO ${KV_TABLE} (key, value) SELECT * FROM unnest($1::bytea[], ` +
  `$2::bytea[]) ON CONFLICT (key) DO UPDATE SET value = excluded.value`;
const SQL_DELETE = `DELETE FROM ${KV_TABLE} WHERE key = ANY($1::bytea[])`;

function scanSql(bounded: boolean, keysOnly: boolean): string {
  return `SELECT key${keysOnly ? "" : ", value"} FROM ${KV_TABLE} WHERE key >= $1${
    bounded ? " AND key < $2" : ""
  } ORDER BY key LIMIT $${bounded ? 3 : 2}`;
}

const SCANS = [
  scanSql(false, false),
  scanSql(true, false),
  scanSql(false, true),
  scanSql(true, true),
];

/** A postgres.js client. */
export type Sql = ReturnType<typeof postgres>;
/** A connection reserved for one transaction. */
export type Reserved = Awaited<ReturnType<Sql["reserve"]>>;
type Row = Record<string, string>;
/** postgres.js's connection object, as its `onexecute` query option hands it out. */
type PgConnection = { onclose: ((err?: unknown) => void) | null };

/** `\x` and the hex of a byte-string key (throws on a char above 255). */
function keyHex(key: string): string {
  for (let i = 0; i < key.length; i++) {
    if (key.charCodeAt(i) > 0xff) throw new TypeError(`Key has a char above 255 at ${i}`);
  }
  return "\\x" + Buffer.from(key, "latin1").toString("hex");
}

function valueHex(value: Uint8Array): string {
  return "\\x" + Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex");
}

/** A `bytea[]` literal of already hex-encoded (`\x...`) elements. */
function byteaArray(hexes: readonly string[]): string {
  return "{" + hexes.map((h) => `"\\${h}"`).join(",") + "}";
}

function keyOf(hex: string): string {
  return Buffer.from(hex.slice(2), "hex").toString("latin1");
}

function valueOf(hex: string): Uint8Array {
  const buf = Buffer.from(hex.slice(2), "hex");
  return new Uint8Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** What an attempt needs of its engine. */
export interface PoolAccess {
  /** A connection of the pool, for one transaction. */
  reserve(): Promise<Reserved>;
  /** Counts one round trip that a transaction waited for. */
  countRoundTrip(): void;
}

/** One attempt of a transaction: its connection, its `BEGIN`, the first failure it saw. */
export class Attempt {
  readonly #pool: PoolAccess;
  readonly #readOnly: boolean;
  #reserving: Promise<Reserved> | undefined;
  #conn: Reserved | undefined;
  #pgConn: PgConnection | undefined;
  #begun = false;
  /** Committed, rolled back or given up: nothing more is sent. */
  #ended = false;
  /** The connection was dropped: never send on it, never give it back. */
  #dead = false;
  /** The first retryable failure any statement of this attempt met. */
  failure: { kind: PgFailure; error: unknown } | undefined;

  constructor(pool: PoolAccess, readOnly: boolean) {
    this.#pool = pool;
    this.#readOnly = readOnly;
  }

  readonly #onExecute = (c: PgConnection): boolean => {
    if (this.#pgConn === undefined) {
      this.#pgConn = c;
      c.onclose = () => {
        this.#dead = true;
      };
    }
    return true;
  };

  #note(err: unknown): void {
    const kind = classify(err);
    if (kind === "outage") this.#dead ||= !(err instanceof Error && err.name === "PostgresError");
    if (kind !== "other" && this.failure === undefined) this.failure = { kind, error: err };
  }

  #send(text: string, params: unknown[] = []): Promise<Row[]> {
    if (this.#ended) return Promise.reject(new Error("Transaction is already finished"));
    if (this.#dead) {
      const err = Object.assign(new Error("connection lost"), { code: "CONNECTION_CLOSED" });
      this.#note(err);
      return Promise.reject(err);
    }
    const q = this.#conn!.unsafe(text, params as never[], {
      prepare: true,
      onexecute: this.#onExecute,
    } as never);
    (q as unknown as { execute(): void }).execute();
    return (q as unknown as Promise<Row[]>).catch((err) => {
      this.#note(err);
      throw err;
    });
  }

  async #connection(): Promise<void> {
    if (this.#conn !== undefined) return;
    if (this.#ended) throw new Error("Transaction is already finished");
    this.#reserving ??= this.#pool.reserve();
    const conn = await this.#reserving.catch((err) => {
      this.#note(err);
      throw err;
    });
    if (this.#ended) {
      // The attempt was given up while the connection was on its way (see `abort`).
      throw new Error("Transaction is already finished");
    }
    this.#conn = conn;
  }

  /** Sends `BEGIN` if not yet sent; the statements that follow are pipelined behind it. */
  #begin(): Promise<unknown> | undefined {
    if (this.#begun) return undefined;
    this.#begun = true;
    const begin = this.#send(this.#readOnly ? BEGIN_READ : BEGIN_WRITE);
    begin.catch(() => {});
    return begin;
  }

  /** Runs one statement in the transaction (one round trip). */
  async query(text: string, params: unknown[]): Promise<Row[]> {
    await this.#connection();
    const begin = this.#begin();
    const rows = this.#send(text, params);
    this.#pool.countRoundTrip();
    if (begin === undefined) return await rows;
    return (await Promise.all([begin, rows]))[1];
  }

  /** Applies `pending` and commits (one round trip), or just ends a transaction that wrote nothing. */
  async commit(pending: PendingWrites): Promise<void> {
    if (pending.size === 0) {
      if (this.#begun) this.#finish("COMMIT");
      else this.#release();
      return;
    }
    await this.#connection();
    const setKeys: string[] = [];
    const setValues: string[] = [];
    const deletes: string[] = [];
    for (const [key, value] of pending) {
      if (value === null) deletes.push(keyHex(key));
      else {
        setKeys.push(keyHex(key));
        setValues.push(valueHex(value));
      }
    }
    const sent: Promise<unknown>[] = [];
    const begin = this.#begin();
    if (begin !== undefined) sent.push(begin);
    if (setKeys.length) {
      sent.push(this.#send(SQL_UPSERT, [byteaArray(setKeys), byteaArray(setValues)]));
    }
    if (deletes.length) sent.push(this.#send(SQL_DELETE, [byteaArray(deletes)]));
    const commit = this.#send("COMMIT");
    sent.push(commit);
    this.#pool.countRoundTrip();
    const results = await Promise.allSettled(sent);
    const failed = results.find((r) => r.status === "rejected");
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    const tag = ((await commit) as unknown as { command?: string }).command;
    if (tag !== undefined && tag !== "COMMIT") {
      throw new Error(`PostgreSQL ended the commit with ${tag}`);
    }
    this.#release();
  }

  /** Ends the transaction with `ROLLBACK` (or `COMMIT` of one that only read), not waiting. */
  #finish(statement: "COMMIT" | "ROLLBACK"): void {
    if (this.#conn !== undefined && !this.#dead && this.#begun) {
      this.#send(statement).catch(() => {});
    }
    this.#release();
  }

  /** Gives the connection back to the pool, unless it was dropped. */
  #release(): void {
    this.#ended = true;
    const conn = this.#conn;
    this.#conn = undefined;
    if (this.#pgConn !== undefined && !this.#dead) this.#pgConn.onclose = null;
    if (conn !== undefined && !this.#dead) conn.release();
  }

  /** Cleans up after `fn` or the commit threw. */
  abort(): void {
    if (this.#conn === undefined && this.#reserving !== undefined && !this.#ended) {
      this.#ended = true;
      // A reservation still on its way: give the connection back when it comes.
      this.#reserving.then((c) => c.release(), () => {});
      return;
    }
    this.#finish("ROLLBACK");
  }
}

/** A transaction over one attempt: reads go to the server, writes are buffered. */
export class PgTxn implements KvTxn {
  readonly #at: Attempt;
  readonly #readOnly: boolean;
  readonly pending: PendingWrites = new Map();
  done = false;

  constructor(at: Attempt, readOnly: boolean) {
    this.#at = at;
    this.#readOnly = readOnly;
  }

  #check(): void {
    if (this.done) throw new Error("Transaction is already finished");
  }

  #checkWrite(key: string): void {
    this.#check();
    if (this.#readOnly) throw new FsError(Errno.EROFS, `Write of "${key}" in a read-only txn`);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#check();
    const mine = this.pending.get(key);
    if (mine !== undefined) return mine === null ? undefined : mine.slice();
    const rows = await this.#at.query(SQL_GET, [keyHex(key)]);
    return rows[0] === undefined ? undefined : valueOf(rows[0]["value"]!);
  }

  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    this.#check();
    const wanted = [...new Set(keys.filter((k) => !this.pending.has(k)))];
    const found = new Map<string, string>();
    if (wanted.length > 0) {
      const rows = await this.#at.query(SQL_GET_MANY, [byteaArray(wanted.map(keyHex))]);
      for (const row of rows) found.set(keyOf(row["key"]!), row["value"]!);
    }
    return keys.map((key) => {
      const mine = this.pending.get(key);
      if (mine !== undefined) return mine === null ? undefined : mine.slice();
      const hex = found.get(key);
      return hex === undefined ? undefined : valueOf(hex);
    });
  }

  set(key: string, value: Uint8Array): void {
    this.#checkWrite(key);
    keyHex(key); // rejects chars above 255 now rather than at commit
    this.pending.set(key, value.slice());
  }

  delete(key: string): void {
    this.#checkWrite(key);
    this.pending.set(key, null);
  }

  async scan(prefix: string, options?: ScanOptions): Promise<KvPair[]> {
    this.#check();
    const limit = options?.limit;
    if (limit !== undefined && limit <= 0) return [];
    const keysOnly = options?.keysOnly === true;
    const lower = scanLowerBound(prefix, options?.startAfter);
    const upper = prefixUpperBound(prefix);
    let mine = 0;
    for (const key of this.pending.keys()) if (key >= lower && key.startsWith(prefix)) mine++;
    const fetch = limit === undefined ? null : limit + mine;
    const params: unknown[] = [keyHex(lower)];
    if (upper !== undefined) params.push(keyHex(upper));
    params.push(fetch);
    const rows = await this.#at.query(
      SCANS[(upper !== undefined ? 1 : 0) | (keysOnly ? 2 : 0)]!,
      params,
    );
    const pairs = rows.map((row): KvPair => [
      keyOf(row["key"]!),
      keysOnly ? EMPTY : valueOf(row["value"]!),
    ]);
    return scanWithOverlay(this.pending, prefix, options, () => pairs);
  }
}
