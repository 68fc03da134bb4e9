/**
 * `PostgresKvEngine`: the `postgres://` (and `postgresql://`) metadata engine, one table in a
 * PostgreSQL database, shared by any number of mounts on any number of hosts. The client is npm
 * `postgres` (porsager/postgres); URL forms and parameters are in `_pg_url.ts`.
 *
 * Decisions:
 * - **Schema.** Two tables in the URL's `schema` (created by format; several volumes can share a
 *   database) or else the connection's current schema (normally `public`): `slayerfs_kv (key bytea PRIMARY
 *   KEY, value bytea NOT NULL)` and `slayerfs_schema (version integer)` with one row,
 *   {@linkcode PG_SCHEMA_VERSION}. bytea compares bytewise (memcmp, shorter first), which is the
 *   byte-string order of keys, so a prefix scan is `key >= lower AND key < upper ORDER BY key
 *   LIMIT n` on the primary key index. A writable open of an empty database creates both tables
 *   (under an advisory lock, so concurrent formats do not race); a database that holds any other
 *   table or view is refused (it belongs to something else, e.g. another filesystem's
 *   metadata), and so is a schema version newer than this build knows. A read-only open never
 *   creates anything.
 * - **Isolation: SERIALIZABLE, with retries.** The engine cannot know which keys a transaction
 *   will read before it reads them (lookups, scans of directory ranges), so row locks
 *   (`SELECT ... FOR UPDATE`) would miss phantoms (a scan that a concurrent insert changes) and
 *   would need a lock on every key read. PostgreSQL's serializable snapshot isolation covers
 *   reads, scans and writes with no help from the caller; a transaction that loses a conflict
 *   fails with SQLSTATE 40001 (or 40P01 for a deadlock) and runs again from the start, as the
 *   {@linkcode KvEngine} contract allows, after a short jittered backoff (bounded attempts).
 *   Read-only transactions use `REPEATABLE READ READ ONLY`: one consistent snapshot, never a
 *   conflict, no predicate locks.
 * - **Contention.** Writers of one process that touch the same keys (many creates in one
 *   directory) would mostly abort each other. After a conflict, this process's write
 *   transactions take turns (a promise-chain mutex) for {@linkcode CONTENTION_WINDOW_MS}; with
 *   no conflict for that long they run in parallel again. Conflicts with other hosts are still
 *   settled by PostgreSQL.
 * - **Round trips.** Each transaction holds one pooled connection (`reserve`); `BEGIN` is sent
 *   with the first read, pipelined, so a read costs one round trip. Writes are buffered
 *   (read-your-writes through `_overlay.ts`) and the commit is one round trip: one multi-row
 *   upsert (`INSERT ... SELECT FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT DO UPDATE`),
 *   one `DELETE ... WHERE key = ANY($1)` and `COMMIT`, pipelined. A transaction that wrote
 *   nothing sends its `COMMIT` without waiting for it. Every statement has a fixed text, so it is
 *   prepared once per connection and reused. {@linkcode PostgresKvEngine.roundTrips} counts the
 *   round trips transactions waited for.
 * - **Pool.** At most `pool` connections (default 10), opened on demand and closed after a minute
 *   idle; more concurrent transactions wait for one.
 * - **Outages.** A transaction that fails because the server cannot be reached, restarts or drops
 *   the connection runs again with a backoff (100 ms doubling to 2 s) for up to `retry_timeout`
 *   seconds (default 60); then it fails with `EIO`. A connection that was dropped is never used
 *   again, the pool reconnects, and the mount goes on without a remount. Only a failure during
 *   `COMMIT` is ambiguous (it may have committed): the transaction runs again and sees its own
 *   effect, as with any client of a database. Opening (format, mount) does not wait: a server
 *   that cannot be reached, refused credentials or a missing database is one clear error at once.
 *
 * @module
 */

import postgres from "postgres";
import type { KvEngine, KvTxn, TxnOptions } from "../core/kv.ts";
import { Errno, FsError } from "../core/errno.ts";
import { getLog } from "../core/log.ts";
import { backoffDelay } from "./_retry.ts";
import { Mutex } from "./_mutex.ts";
import { openError } from "./_pg_errors.ts";
import { Attempt, KV_TABLE, PgTxn, type PoolAccess, SCHEMA_TABLE, type Sql } from "./_pg_txn.ts";
import { parsePgUrl, type PgConfig } from "./_pg_url.ts";

export { parsePgUrl, type PgConfig };

/** The schema version this build writes and reads (the row of `slayerfs_schema`). */
export const PG_SCHEMA_VERSION = 1;
/** `pg_advisory_xact_lock` key for schema creation ("SLAYFS" in ASCII). */
const SCHEMA_LOCK = 0x534c4159_4653;
const MAX_CONFLICT_ATTEMPTS = 500;
/** How long after a conflict this process's writers keep taking turns. */
const CONTENTION_WINDOW_MS = 1000;
const CONFLICT_BACKOFF = { baseMs: 2, maxMs: 100 };
const OUTAGE_BACKOFF = { baseMs: 100, maxMs: 2000 };
const log = getLog("postgres");

/** Options of {@linkcode PostgresKvEngine.open}. */
export interface PostgresKvOptions {
  /** Only read: never create the schema; writes throw `EROFS`. */
  readOnly?: boolean;
}

/**
 * The PostgreSQL metadata engine (schemes `"postgres"` and `"postgresql"`).
 *
 * @example
 * ```ts ignore
 * import { PostgresKvEngine } from "./kv_postgres.ts";
 * const kv = await PostgresKvEngine.open("postgres://me:secret@db.example:5432/slayerfs");
 * await kv.txn(async (tx) => tx.set("a", new Uint8Array([1])));
 * await kv.close();
 * ```
 */
export class PostgresKvEngine implements KvEngine {
  /** Always `"postgres"`. */
  readonly scheme = "postgres";
  /** The connection settings. */
  readonly config: PgConfig;
  /** Whether the engine was opened read-only. */
  readonly readOnly: boolean;
  readonly #sql: Sql;
  readonly #running = new Set<Promise<unknown>>();
  readonly #pool: PoolAccess = {
    reserve: () => this.#sql.reserve(),
    countRoundTrip: () => {
      this.#roundTrips++;
    },
  };
  /** Where this process's writers take turns while they conflict. */
  readonly #lane = new Mutex();
  #contendedUntil = 0;
  #roundTrips = 0;
  #closed = false;

  private constructor(config: PgConfig, sql: Sql, readOnly: boolean) {
    this.config = config;
    this.#sql = sql;
    this.readOnly = readOnly;
  }

  /** Round trips that transactions waited for (a read, or a commit with writes). */
  get roundTrips(): number {
    return this.#roundTrips;
  }

  /**
   * Connects to the database that `url` (or parsed `config`) names and checks its schema,
   * creating it in an empty database unless `readOnly`. Throws a `TypeError` for a bad URL and an
   * `Error` with a one-line message when the server cannot be used.
   */
  static async open(
    url: string | PgConfig,
    options: PostgresKvOptions = {},
  ): Promise<PostgresKvEngine> {
    const config = typeof url === "string" ? parsePgUrl(url) : url;
    const readOnly = options.readOnly === true;
    const sql = postgres({
      ...(config.socketPath !== undefined ? { path: config.socketPath } : { host: config.host }),
      port: config.port,
      database: config.database,
      ...(config.user !== undefined ? { user: config.user } : {}),
      ...(config.password !== undefined ? { pass: config.password } : {}),
      ssl: config.ssl,
      max: config.pool,
      connect_timeout: config.connectTimeoutS,
      // Idle connections close after a minute, so many mounts do not hold the server's slots.
      idle_timeout: 60,
      // Reconnect at once after an outage rather than after postgres.js's growing delay.
      backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
      types: {
        // bytea stays as its `\x...` text; the engine decodes keys and values itself.
        bytea: { to: 17, from: [17], serialize: (x: string) => x, parse: (x: string) => x },
      },
      connection: {
        application_name: "slayerfs",
        ...(config.schema !== undefined ? { search_path: config.schema } : {}),
      },
      onnotice: () => {},
    } as never) as Sql;
    try {
      await prepareSchema(sql, config, readOnly);
    } catch (err) {
      await sql.end({ timeout: 1 }).catch(() => {});
      if (err instanceof SchemaError) throw new Error(err.message);
      throw openError(config, err);
    }
    return new PostgresKvEngine(config, sql, readOnly);
  }

  /** Runs `fn` in a serializable transaction (a snapshot when read-only); retries as documented. */
  txn<T>(fn: (tx: KvTxn) => Promise<T>, options?: TxnOptions): Promise<T> {
    if (this.#closed) {
      return Promise.reject(new Error(`Metadata engine "${this.config.display}" is closed`));
    }
    const run = this.#run(fn, this.readOnly || options?.readOnly === true);
    this.#running.add(run);
    const forget = () => this.#running.delete(run);
    run.then(forget, forget);
    return run;
  }

  async #run<T>(fn: (tx: KvTxn) => Promise<T>, readOnly: boolean): Promise<T> {
    // While this process's writers conflict with each other, they take turns (see the notes).
    if (!readOnly && Date.now() < this.#contendedUntil) {
      return await this.#lane.run(() => this.#attempts(fn, false, true));
    }
    return await this.#attempts(fn, readOnly, false);
  }

  async #attempts<T>(
    fn: (tx: KvTxn) => Promise<T>,
    readOnly: boolean,
    inLane: boolean,
    conflictsBefore = 0,
  ): Promise<T> {
    let conflicts = conflictsBefore;
    let outageSince: number | undefined;
    let outages = 0;
    for (;;) {
      const at = new Attempt(this.#pool, readOnly);
      const tx = new PgTxn(at, readOnly);
      try {
        const result = await fn(tx);
        tx.done = true;
        await at.commit(tx.pending);
        return result;
      } catch (err) {
        tx.done = true;
        at.abort();
        const failure = at.failure;
        if (failure === undefined) throw err;
        if (failure.kind === "conflict") {
          if (++conflicts >= MAX_CONFLICT_ATTEMPTS) throw failure.error;
          this.#contendedUntil = Date.now() + CONTENTION_WINDOW_MS;
          await sleep(backoffDelay(conflicts, CONFLICT_BACKOFF));
          if (!inLane) {
            return await this.#lane.run(() => this.#attempts(fn, readOnly, true, conflicts));
          }
          continue;
        }
        const now = Date.now();
        outageSince ??= now;
        const reason = failure.error instanceof Error
          ? failure.error.message
          : String(failure.error);
        if (now - outageSince >= this.config.retryTimeoutS * 1000 || this.#closed) {
          throw new FsError(
            Errno.EIO,
            `PostgreSQL at ${this.config.where} unavailable for ${
              Math.round((now - outageSince) / 1000)
            } s: ${reason}`,
          );
        }
        if (outages++ === 0) {
          log.warn("PostgreSQL at {where}: {reason}; retrying", {
            where: this.config.where,
            reason,
          });
        }
        await sleep(backoffDelay(outages, OUTAGE_BACKOFF));
      }
    }
  }

  /** Waits for running transactions and closes the pool; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#running]);
    await this.#sql.end({ timeout: 5 }).catch(() => {});
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A database that is not (or not yet, or too new a) SlayerFS one. */
class SchemaError extends Error {}

/** Checks the database's tables and version, creating the schema in an empty one. */
async function prepareSchema(sql: Sql, config: PgConfig, readOnly: boolean): Promise<void> {
  const schema = config.schema;
  const db = `PostgreSQL database "${config.database}"${
    schema === undefined ? "" : ` (schema ${schema})`
  } at ${config.where}`;
  const table = (name: string) => schema === undefined ? name : `"${schema}".${name}`;
  const namespace = schema === undefined ? "current_schema()" : `'${schema}'`;
  for (let round = 0;; round++) {
    const tables = (await sql.unsafe(
      `SELECT c.relname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ` +
        `ON n.oid = c.relnamespace WHERE n.nspname = ${namespace} ` +
        `AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1`,
    )).map((r) => String(r["name"]));
    const others = tables.filter((t) => t !== KV_TABLE && t !== SCHEMA_TABLE);
    if (others.length > 0) {
      const shown = others.slice(0, 5).join(", ") + (others.length > 5 ? ", ..." : "");
      throw new SchemaError(
        `${db} holds tables that are not SlayerFS's (${shown}): give SlayerFS a database of its own`,
      );
    }
    if (tables.includes(SCHEMA_TABLE) && tables.includes(KV_TABLE)) {
      const rows = await sql.unsafe(
        `SELECT max(version) AS version FROM ${table(SCHEMA_TABLE)}`,
      );
      const version = Number(rows[0]?.["version"] ?? 0);
      if (version > PG_SCHEMA_VERSION) {
        throw new SchemaError(
          `${db} has SlayerFS schema version ${version}; this build reads up to ${PG_SCHEMA_VERSION}`,
        );
      }
      if (version >= 1) return;
    }
    if (tables.length === 0 && readOnly) {
      throw new SchemaError(`${db} holds no SlayerFS metadata: run slayerfs format first`);
    }
    if (tables.length > 0 && (readOnly || round > 0)) {
      throw new SchemaError(`${db} holds an incomplete SlayerFS schema (${tables.join(", ")})`);
    }
    if (round > 0) throw new SchemaError(`${db}: the SlayerFS schema could not be created`);
    await sql.begin(async (tx) => {
      await tx.unsafe(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK})`);
      if (schema !== undefined) await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await tx.unsafe(
        `CREATE TABLE IF NOT EXISTS ${
          table(KV_TABLE)
        } (key bytea PRIMARY KEY, value bytea NOT NULL); ` +
          `CREATE TABLE IF NOT EXISTS ${table(SCHEMA_TABLE)} (version integer NOT NULL); ` +
          `INSERT INTO ${table(SCHEMA_TABLE)} (version) SELECT ${PG_SCHEMA_VERSION} ` +
          `WHERE NOT EXISTS (SELECT 1 FROM ${table(SCHEMA_TABLE)})`,
      );
    });
  }
}
