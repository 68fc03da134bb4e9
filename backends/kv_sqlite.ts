/**
 * `SqliteKvEngine`: the `sqlite3://` metadata engine, one table in an embedded SQLite file.
 *
 * Decisions:
 * - One table `kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID`. Keys are stored as BLOBs of their
 *   bytes, so SQLite's memcmp order is the byte-string order; a prefix scan is the range
 *   `k >= prefix AND k < upperBound(prefix)` on the primary key.
 * - The file is marked with `PRAGMA application_id` ({@linkcode SQLITE_APPLICATION_ID}) and
 *   `user_version` 1; a file that is not SQLite, or is some other application's database, is
 *   refused with a clear error instead of being written to.
 * - WAL journal, `synchronous=NORMAL` (a kill -9 never loses a commit; a power cut may lose the
 *   last ones but never tears one) or `FULL` with `durable: true`; `busy_timeout` so a second
 *   process waits for the write lock instead of failing.
 * - Owner-only: a new database is created 0600 (SQLite gives its WAL and shared-memory files the
 *   same mode), and a writable open takes the group and other bits off an existing one, since
 *   small files are inlined in it.
 * - Many processes: several daemons (and the tools) may open one database at once on one host;
 *   SQLite's own locking serializes their commits (a WAL database must not live on a network
 *   filesystem shared by several hosts: keep it local).
 * - Transactions run one at a time in this process (a promise-chain mutex). Each opens a
 *   deferred `BEGIN`, so all of its reads come from one snapshot; writes are buffered and applied
 *   at commit. If another process committed since the snapshot, SQLite refuses the upgrade to a
 *   write lock (`SQLITE_BUSY_SNAPSHOT`); the transaction is rolled back and `fn` runs again, as
 *   the {@linkcode KvEngine} contract allows. A crash at any point leaves whole transactions only.
 * - A commit checkpoints the WAL into the database once it holds
 *   {@linkcode WAL_CHECKPOINT_PAGES} pages, not SQLite's default 1,000: each checkpoint fsyncs the
 *   WAL and the database, and at 1,000 pages the daemon checkpointed every ~120 small-file creates
 *   (8.5 WAL pages each), which made its commits take twice as long on average
 *   (`bench/README.md`). The WAL grows to ~40 MiB before it is reused; a checkpoint copies the
 *   latest version of each page only once, so a longer WAL costs few more page copies.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { KvEngine, KvPair, KvTxn, ScanOptions, TxnOptions } from "../core/kv.ts";
import { Errno, FsError } from "../core/errno.ts";
import { prefixUpperBound } from "./_keys.ts";
import { bytesToByteString, byteStringToBytes } from "../core/_bytes.ts";
import { Mutex } from "./_mutex.ts";
import { type PendingWrites, scanWithOverlay } from "./_overlay.ts";
import { PRIVATE_FILE_MODE, tightenMode } from "../core/_private_fs.ts";

/** The `PRAGMA application_id` of a SlayerFS metadata database ("SLAY"). */
export const SQLITE_APPLICATION_ID = 0x534c4159;
const SCHEMA_VERSION = 1;
const EMPTY = new Uint8Array(0);
const MAX_ATTEMPTS = 200;
/** The WAL's length in pages (4 KiB) past which a commit checkpoints it (`wal_autocheckpoint`). */
export const WAL_CHECKPOINT_PAGES = 10_000;

/** Options of {@linkcode SqliteKvEngine.open}. */
export interface SqliteKvOptions {
  /** Open for reading only: the file must exist, and writes throw `EROFS`. */
  readOnly?: boolean;
  /** `synchronous=FULL`: a commit survives a power cut, at the cost of an fsync per commit. */
  durable?: boolean;
  /** How long to wait for another process's lock, in ms (default 5000). */
  busyTimeoutMs?: number;
}

function dirname(path: string): string {
  const at = path.lastIndexOf("/");
  if (at < 0) return ".";
  return at === 0 ? "/" : path.slice(0, at);
}

function isBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return typeof code === "number" && ((code & 0xff) === 5 || (code & 0xff) === 6);
}

function notOurs(path: string, cause?: unknown): Error {
  return new Error(
    `Metadata file "${path}" is not a SlayerFS SQLite database`,
    cause === undefined ? undefined : { cause },
  );
}

class Statements {
  readonly get: StatementSync;
  readonly put: StatementSync;
  readonly del: StatementSync;
  readonly begin: StatementSync;
  readonly commit: StatementSync;
  readonly rollback: StatementSync;
  readonly #db: DatabaseSync;
  readonly #scans = new Map<number, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.get = db.prepare("SELECT v FROM kv WHERE k = ?");
    this.put = db.prepare(
      "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
    );
    this.del = db.prepare("DELETE FROM kv WHERE k = ?");
    this.begin = db.prepare("BEGIN");
    this.commit = db.prepare("COMMIT");
    this.rollback = db.prepare("ROLLBACK");
  }

  /** The cached scan statement for a shape: with or without upper bound, keys only or not. */
  scan(bounded: boolean, keysOnly: boolean): StatementSync {
    const id = (bounded ? 1 : 0) | (keysOnly ? 2 : 0);
    let stmt = this.#scans.get(id);
    if (stmt === undefined) {
      stmt = this.#db.prepare(
        `SELECT ${keysOnly ? "k" : "k, v"} FROM kv WHERE k >= ?${
          bounded ? " AND k < ?" : ""
        } ORDER BY k LIMIT ?`,
      );
      this.#scans.set(id, stmt);
    }
    return stmt;
  }
}

class SqliteTxn implements KvTxn {
  readonly #st: Statements;
  readonly #readOnly: boolean;
  readonly pending: PendingWrites = new Map();
  done = false;

  constructor(st: Statements, readOnly: boolean) {
    this.#st = st;
    this.#readOnly = readOnly;
  }

  #check(): void {
    if (this.done) throw new Error("Transaction is already finished");
  }

  #read(key: string): Uint8Array | undefined {
    const mine = this.pending.get(key);
    if (mine !== undefined) return mine === null ? undefined : mine.slice();
    const row = this.#st.get.get(byteStringToBytes(key)) as { v: Uint8Array } | undefined;
    return row?.v;
  }

  get(key: string): Promise<Uint8Array | undefined> {
    this.#check();
    return Promise.resolve(this.#read(key));
  }

  getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    this.#check();
    return Promise.resolve(keys.map((key) => this.#read(key)));
  }

  set(key: string, value: Uint8Array): void {
    this.#check();
    if (this.#readOnly) throw new FsError(Errno.EROFS, `Write of "${key}" in a read-only txn`);
    byteStringToBytes(key); // rejects chars above 255 now rather than at commit
    this.pending.set(key, value.slice());
  }

  delete(key: string): void {
    this.#check();
    if (this.#readOnly) throw new FsError(Errno.EROFS, `Delete of "${key}" in a read-only txn`);
    this.pending.set(key, null);
  }

  scan(prefix: string, options?: ScanOptions): Promise<KvPair[]> {
    this.#check();
    const keysOnly = options?.keysOnly === true;
    const upper = prefixUpperBound(prefix);
    return Promise.resolve(scanWithOverlay(this.pending, prefix, options, (lower, limit) => {
      const stmt = this.#st.scan(upper !== undefined, keysOnly);
      const rows = (upper === undefined
        ? stmt.all(byteStringToBytes(lower), limit ?? -1)
        : stmt.all(byteStringToBytes(lower), byteStringToBytes(upper), limit ?? -1)) as unknown as {
          k: Uint8Array;
          v?: Uint8Array;
        }[];
      return rows.map((row): KvPair => [bytesToByteString(row.k), row.v ?? EMPTY]);
    }));
  }

  apply(st: Statements): void {
    for (const [key, value] of this.pending) {
      if (value === null) st.del.run(byteStringToBytes(key));
      else st.put.run(byteStringToBytes(key), value);
    }
  }
}

/**
 * The SQLite metadata engine (scheme `"sqlite3"`).
 *
 * @example
 * ```ts
 * import { SqliteKvEngine } from "./kv_sqlite.ts";
 * const dir = await Deno.makeTempDir();
 * try {
 *   const kv = await SqliteKvEngine.open(`${dir}/meta.db`);
 *   await kv.txn(async (tx) => tx.set("a", new Uint8Array([1])));
 *   const pairs = await kv.txn((tx) => tx.scan(""), { readOnly: true });
 *   if (pairs.length !== 1) throw new Error("unexpected");
 *   await kv.close();
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export class SqliteKvEngine implements KvEngine {
  /** Always `"sqlite3"`. */
  readonly scheme = "sqlite3";
  /** The database file. */
  readonly path: string;
  /** Whether the engine was opened read-only. */
  readonly readOnly: boolean;
  readonly #db: DatabaseSync;
  readonly #st: Statements;
  readonly #mutex = new Mutex();
  #closed = false;

  private constructor(path: string, db: DatabaseSync, readOnly: boolean) {
    this.path = path;
    this.#db = db;
    this.readOnly = readOnly;
    this.#st = new Statements(db);
  }

  /**
   * Opens (or creates) the database at `path`. Its directory must exist. Throws an `Error` with
   * a `cause` if the file is not a SlayerFS SQLite database.
   */
  static async open(path: string, options: SqliteKvOptions = {}): Promise<SqliteKvEngine> {
    const readOnly = options.readOnly === true;
    const dir = dirname(path);
    try {
      const info = await Deno.stat(dir);
      if (!info.isDirectory) throw new Error(`"${dir}" is not a directory`);
    } catch (cause) {
      throw new Error(`Directory "${dir}" of metadata file "${path}" does not exist`, { cause });
    }
    try {
      if ((await Deno.stat(path)).isDirectory) throw notOurs(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      if (readOnly) {
        throw new Error(`Metadata file "${path}" does not exist`, { cause: err });
      }
      // SQLite would create it 0644 whatever the umask; an empty file is an empty database.
      await Deno.open(path, { write: true, createNew: true, mode: PRIVATE_FILE_MODE })
        .then((f) => f.close(), (e) => {
          if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        });
    }
    // The WAL and shared-memory files take the database's mode when SQLite creates them.
    if (!readOnly) {
      for (const suffix of ["", "-wal", "-shm"]) {
        await tightenMode(path + suffix, PRIVATE_FILE_MODE);
      }
    }
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path, { readOnly });
    } catch (cause) {
      throw new Error(`Cannot open metadata file "${path}"`, { cause });
    }
    try {
      db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
      SqliteKvEngine.#prepareSchema(db, path, readOnly);
      if (!readOnly) db.exec("PRAGMA journal_mode = WAL");
      db.exec(`PRAGMA synchronous = ${options.durable === true ? "FULL" : "NORMAL"}`);
      db.exec(`PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
      return new SqliteKvEngine(path, db, readOnly);
    } catch (err) {
      db.close();
      if (err instanceof Error && err.message.startsWith("Metadata file")) throw err;
      throw notOurs(path, err);
    }
  }

  /** Checks that `db` is ours, creating the schema in an empty database. */
  static #prepareSchema(db: DatabaseSync, path: string, readOnly: boolean): void {
    const check = (): "ours" | "empty" => {
      const appId = (db.prepare("PRAGMA application_id").get() as { application_id: number })
        .application_id;
      const tables = db.prepare("SELECT name FROM sqlite_schema").all() as { name: string }[];
      if (appId === 0 && tables.length === 0) return "empty";
      if (appId !== SQLITE_APPLICATION_ID || !tables.some((t) => t.name === "kv")) {
        throw notOurs(path);
      }
      const version = (db.prepare("PRAGMA user_version").get() as { user_version: number })
        .user_version;
      if (version > SCHEMA_VERSION) {
        throw new Error(
          `Metadata file "${path}" has schema version ${version}; this build reads up to ${SCHEMA_VERSION}`,
        );
      }
      return "ours";
    };
    if (check() === "ours") return;
    if (readOnly) throw notOurs(path);
    db.exec("BEGIN IMMEDIATE");
    try {
      if (check() === "empty") {
        db.exec(`PRAGMA application_id = ${SQLITE_APPLICATION_ID}`);
        db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
        db.exec("CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID");
      }
      db.exec("COMMIT");
    } catch (err) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw err;
    }
  }

  /** Runs `fn` in a serializable transaction; its writes apply only if it resolves. */
  txn<T>(fn: (tx: KvTxn) => Promise<T>, options?: TxnOptions): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new Error(`Metadata engine "${this.path}" is closed`));
    }
    const readOnly = this.readOnly || options?.readOnly === true;
    return this.#mutex.run(async () => {
      const db = this.#db;
      const st = this.#st;
      for (let attempt = 1;; attempt++) {
        const tx = new SqliteTxn(st, readOnly);
        st.begin.run();
        let result: T;
        try {
          result = await fn(tx);
        } catch (err) {
          tx.done = true;
          if (db.isTransaction) st.rollback.run();
          throw err;
        }
        tx.done = true;
        try {
          if (tx.pending.size > 0) tx.apply(st);
          st.commit.run();
          return result;
        } catch (err) {
          if (db.isTransaction) st.rollback.run();
          if (!isBusy(err) || attempt >= MAX_ATTEMPTS) throw err;
        }
        // Another process committed since our snapshot: back off a little and run again.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(attempt, 20)));
      }
    });
  }

  /** Waits for running transactions and closes the database; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#mutex.idle();
    this.#db.close();
  }
}
