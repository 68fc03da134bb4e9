/**
 * `RedisKvEngine`: the `redis://`, `rediss://` and `redis+unix://` metadata engine, for volumes
 * that several hosts mount at once (URL forms in `_redis_url.ts`).
 *
 * Decisions:
 * - Layout (`T` is the volume's hash tag `{prefix}`, so a volume lives in one Redis Cluster
 *   slot): each key's value in the string `T v KEY`, prefixed by the 8-byte random token of the
 *   commit that wrote it; every key as a member of the sorted set `T i` (score 0), whose
 *   `ZRANGEBYLEX` lists keys in byte order since Redis compares members with `memcmp`. Keys are
 *   sent as latin1 `Buffer`s, one byte per char, so byte order is kept. `T m` marks the volume.
 * - Optimistic, serializable transactions in the manner of backward validation: reads go to the
 *   server as they come, one round trip each, and the transaction remembers what it saw: the
 *   token of each key read, and for each scan its range, limit and a digest of the keys listed.
 *   The first read is a plain `GET`, `MGET` or `ZRANGEBYLEX` (or a script listing a range with its
 *   values); each later one is a Lua script that first checks, atomically, that nothing read so
 *   far has changed (else `fn` runs again), so whatever `fn` saw, and whatever it returns or
 *   throws, comes from one state: a transaction that writes nothing needs no check at the end.
 *   Writes are buffered; the commit is one more Lua script that checks every token and re-lists
 *   every range, and applies the writes only if nothing changed. A scanned range is thus part of
 *   the read set: a key inserted into it by another client makes the transaction run again.
 *   A transaction costs one round trip per read plus one for the commit; `WATCH`/`MULTI`/`EXEC`
 *   would cost more and cannot watch a range.
 * - Transactions that may write run one at a time in a process (a mutex), as in the SQLite
 *   engine: nearly all of them touch the same keys (the volume's usage counters, a busy
 *   directory's attributes), so running them side by side would only make them conflict.
 *   Read-only transactions run side by side. A conflict (with another process) makes the
 *   transaction run again after a jittered backoff, up to {@linkcode MAX_CONFLICTS} times.
 * - Outages: commands fail at once while the connection is down (no offline queue), the client
 *   reconnects in the background, and the transaction runs again until the server answers, for up
 *   to `outageMs` (60 s by default, like the mount's I/O deadline), then fails (the FUSE call gets
 *   `EIO`). A commit whose reply was lost is looked up before anything runs again: its token is
 *   in the first key it set, or in a receipt key (`T r TOKEN`, kept 5 minutes) when it only
 *   deleted.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import type { KvEngine, KvTxn, TxnOptions } from "../core/kv.ts";
import { Mutex } from "./_mutex.ts";
import { backoffDelay } from "./_retry.ts";
import { connectRedis, keepReconnecting, MARKER_VALUE } from "./_redis_connect.ts";
import { COMMIT_LUA, READ_LUA } from "./_redis_scripts.ts";
import { type Arg, Conflict, RedisTxn, RedisVolume, TOKEN_BYTES, transient } from "./_redis_txn.ts";
import { parseRedisUrl, type RedisTarget } from "./_redis_url.ts";

export { parseRedisUrl, type RedisTarget };

/** Conflicting attempts of one transaction before it fails. */
export const MAX_CONFLICTS = 100;
const EMPTY_BUFFER = Buffer.alloc(0);

/** Options of {@linkcode RedisKvEngine.open}. */
export interface RedisKvOptions {
  /** Writes throw `EROFS`. */
  readOnly?: boolean;
  /** How long a transaction waits for a server that does not answer, in ms (default 60,000). */
  outageMs?: number;
  /** How long opening waits for the connection, in ms (default 10,000). */
  connectTimeoutMs?: number;
}

/** The connection broke while a commit was on its way: it may or may not have applied. */
class LostCommit extends Error {
  constructor(
    readonly probe: Buffer,
    readonly token: Buffer,
    readonly result: unknown,
    cause: unknown,
  ) {
    super("The connection to Redis broke during a commit", { cause });
    this.name = "LostCommit";
  }
}

/** Whether a command that failed with `err` surely never reached the server. */
function unsent(err: unknown): boolean {
  return err instanceof Error && /^Stream isn't writeable/.test(err.message);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The Redis metadata engine (schemes `"redis"`, `"rediss"`, `"redis+unix"`).
 *
 * @example
 * ```ts ignore
 * import { RedisKvEngine } from "./kv_redis.ts";
 * const kv = await RedisKvEngine.open("redis://127.0.0.1:6379/0?prefix=vol1");
 * await kv.txn(async (tx) => tx.set("a", new Uint8Array([1])));
 * await kv.close();
 * ```
 */
export class RedisKvEngine implements KvEngine {
  /** The URL's scheme. */
  readonly scheme: string;
  /** Whether the engine was opened read-only. */
  readonly readOnly: boolean;
  /** Where the engine connects (the URL with its password hidden). */
  readonly display: string;
  readonly #vol: RedisVolume;
  readonly #outageMs: number;
  readonly #writers = new Mutex();
  #needsMarker: boolean;
  #running = 0;
  #idle: (() => void) | undefined;
  #closed = false;

  private constructor(
    target: RedisTarget,
    client: Redis,
    needsMarker: boolean,
    options: RedisKvOptions,
  ) {
    this.scheme = target.scheme;
    this.display = target.display;
    this.readOnly = options.readOnly === true;
    this.#vol = new RedisVolume(client, target.prefix);
    this.#outageMs = options.outageMs ?? 60_000;
    this.#needsMarker = needsMarker;
  }

  /**
   * Connects to the Redis that `url` names and checks its database: it must hold this volume
   * (the `?prefix=`, default `slayerfs`) or only other SlayerFS volumes. Throws a `TypeError` for
   * a malformed URL and an `Error` of one line when the server cannot be reached, refuses the
   * credentials, has no such database or holds other data.
   */
  static async open(
    url: string | RedisTarget,
    options: RedisKvOptions = {},
  ): Promise<RedisKvEngine> {
    const target = typeof url === "string" ? parseRedisUrl(url) : url;
    const connected = await connectRedis(target, {
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      commandTimeoutMs: 30_000,
    });
    const client = connected.client;
    client.defineCommand("slayerfsRead", { lua: READ_LUA });
    client.defineCommand("slayerfsCommit", { lua: COMMIT_LUA });
    keepReconnecting(client, target);
    const engine = new RedisKvEngine(target, client, connected.needsMarker, options);
    engine.#vol.roundTrips = connected.roundTrips;
    return engine;
  }

  /** Commands sent to the server so far. */
  get roundTrips(): number {
    return this.#vol.roundTrips;
  }

  /** Runs `fn` in a serializable transaction; its writes apply only if it resolves. */
  async txn<T>(fn: (tx: KvTxn) => Promise<T>, options?: TxnOptions): Promise<T> {
    if (this.#closed) throw new Error(`Metadata engine "${this.display}" is closed`);
    this.#running++;
    try {
      return await this.#run(fn, this.readOnly || options?.readOnly === true);
    } finally {
      if (--this.#running === 0) this.#idle?.();
    }
  }

  async #run<T>(fn: (tx: KvTxn) => Promise<T>, readOnly: boolean): Promise<T> {
    let conflicts = 0;
    let outageSince: number | undefined;
    let outages = 0;
    let lost: LostCommit | undefined;
    for (;;) {
      try {
        if (lost !== undefined) {
          if (await this.#applied(lost)) return lost.result as T;
          lost = undefined;
        }
        const attempt = () => this.#attempt(fn, readOnly);
        const outcome = readOnly ? await attempt() : await this.#writers.run(attempt);
        if (outcome.done) return outcome.value;
        outageSince = undefined;
        if (++conflicts >= MAX_CONFLICTS) {
          throw new Error(
            `A transaction on ${this.display} conflicted ${conflicts} times in a row`,
          );
        }
        await sleep(backoffDelay(conflicts, { baseMs: 2, maxMs: 100 }));
      } catch (err) {
        if (!transient(err) || this.#closed) throw err;
        if (err instanceof LostCommit) lost = err;
        outageSince ??= Date.now();
        if (Date.now() - outageSince >= this.#outageMs) {
          const reason = (err instanceof LostCommit ? err.cause as Error : err as Error).message;
          throw new Error(
            `Redis at ${this.display} has not answered for ${
              Math.round(this.#outageMs / 1000)
            } s: ${reason}`,
          );
        }
        await sleep(backoffDelay(++outages, { baseMs: 50, maxMs: 1000 }));
      }
    }
  }

  /** Runs `fn` once: its result, or `done: false` after a conflict. */
  async #attempt<T>(
    fn: (tx: KvTxn) => Promise<T>,
    readOnly: boolean,
  ): Promise<{ done: true; value: T } | { done: false }> {
    const tx = new RedisTxn(this.#vol, readOnly);
    let value: T;
    try {
      value = await fn(tx);
    } catch (err) {
      tx.done = true;
      if (tx.failure !== undefined) throw tx.failure;
      if (tx.stale || err instanceof Conflict) return { done: false };
      // Each read checked the earlier ones: what `fn` saw was one state, and its error stands.
      throw err;
    }
    tx.done = true;
    if (tx.failure !== undefined) throw tx.failure;
    if (tx.stale) return { done: false };
    if (tx.pending.size === 0) return { done: true, value };
    const token = Buffer.from(crypto.getRandomValues(new Uint8Array(TOKEN_BYTES)));
    try {
      if (!await this.#commit(tx, token)) return { done: false };
    } catch (err) {
      if (!transient(err) || unsent(err)) throw err;
      throw new LostCommit(this.#probeKey(tx, token), token, value, err);
    }
    this.#needsMarker = false;
    return { done: true, value };
  }

  /** The key whose token says whether a commit of `tx` with `token` applied. */
  #probeKey(tx: RedisTxn, token: Buffer): Buffer {
    for (const [key, value] of tx.pending) if (value !== null) return this.#vol.valueKey(key);
    return this.#receiptKey(token);
  }

  #receiptKey(token: Buffer): Buffer {
    return Buffer.concat([Buffer.from(`${this.#vol.tag}r`, "latin1"), token]);
  }

  /** Whether a commit whose reply was lost applied. */
  async #applied(lost: LostCommit): Promise<boolean> {
    const vol = this.#vol;
    const seen = await vol.send(() => vol.client.getrangeBuffer(lost.probe, 0, TOKEN_BYTES - 1));
    return seen.equals(lost.token);
  }

  /** Checks what `tx` read and applies its writes: true when done, false on a conflict. */
  async #commit(tx: RedisTxn, token: Buffer): Promise<boolean> {
    const vol = this.#vol;
    const writes = [...tx.pending];
    const deletesOnly = writes.every(([, v]) => v === null);
    const set = tx.readSet();
    const keys: Buffer[] = [
      vol.index,
      vol.marker,
      deletesOnly ? this.#receiptKey(token) : vol.marker,
      ...set.keys,
      ...writes.map(([k]) => vol.valueKey(k)),
    ];
    const args: Arg[] = [
      set.keys.length,
      tx.scans.length,
      writes.length,
      this.#needsMarker ? MARKER_VALUE : "",
      deletesOnly ? token : "",
      vol.valuePrefix.length,
      ...set.args,
    ];
    for (const [, v] of writes) args.push(v === null ? EMPTY_BUFFER : Buffer.concat([token, v]));
    const ok = await vol.send(() => vol.scripts.slayerfsCommit(keys.length, ...keys, ...args));
    if (ok === -1) {
      throw new Error(
        `Redis at ${this.display} no longer holds the volume (its marker is gone: the database ` +
          "was flushed, or Redis restarted without persistence); nothing more is written",
      );
    }
    return ok === 1;
  }

  /** Waits for running transactions and disconnects; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#running > 0) await new Promise<void>((resolve) => this.#idle = resolve);
    const client = this.#vol.client;
    client.options.retryStrategy = () => null;
    await client.quit().catch(() => {});
    client.disconnect();
  }
}
