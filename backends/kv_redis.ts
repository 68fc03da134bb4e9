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
 *   server as they come (one round trip each: `GET`, `MGET`, or a Lua script that lists a range
 *   with its values), and the transaction remembers what it saw: the token of each key read, and
 *   for each scan its range, limit and a digest of the keys listed. Writes are buffered. The
 *   commit is one Lua script, atomic on the server, that checks every token and re-lists every
 *   range, and applies the writes only if nothing changed; otherwise `fn` runs again. A scanned
 *   range is thus part of the read set: a key inserted into it by another client makes the
 *   transaction retry. This costs one round trip per read plus one for the commit, where
 *   `WATCH`/`MULTI`/`EXEC` would cost two more, and cannot express a range.
 * - A transaction that only read, in one round trip, saw one atomic state and needs no check; one
 *   that read in several (or threw after several) is checked by the same script without writes.
 * - Conflicts: a transaction runs again after a jittered backoff, up to
 *   {@linkcode MAX_CONFLICTS} times; retries of one engine run one at a time so that transactions
 *   of one process that collide do not keep colliding.
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
import type { KvEngine, KvPair, KvTxn, ScanOptions, TxnOptions } from "../core/kv.ts";
import { Errno, FsError } from "../core/errno.ts";
import { byteStringToBytes } from "../core/_bytes.ts";
import { prefixUpperBound, scanLowerBound } from "./_keys.ts";
import { Mutex } from "./_mutex.ts";
import { type PendingWrites, scanWithOverlay } from "./_overlay.ts";
import { backoffDelay } from "./_retry.ts";
import { connectRedis, keepReconnecting, MARKER_VALUE } from "./_redis_connect.ts";
import { COMMIT_LUA, membersDigest, SCAN_LUA } from "./_redis_scripts.ts";
import { parseRedisUrl, type RedisTarget } from "./_redis_url.ts";

export { parseRedisUrl, type RedisTarget };

/** Conflicting attempts of one transaction before it fails. */
export const MAX_CONFLICTS = 100;
const TOKEN_BYTES = 8;
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

/** The methods `defineCommand` adds to the client. */
interface ScriptClient {
  slayerfsScanBuffer(index: Buffer, min: Buffer, max: Buffer, limit: number, vp: Buffer): Promise<
    (Buffer | null)[]
  >;
  slayerfsCommit(numKeys: number, ...args: (Buffer | string | number)[]): Promise<number>;
}

/** Another client changed what this transaction read: run it again. */
class Conflict extends Error {}

/** The connection broke while a commit was on its way: it may or may not have applied. */
class LostCommit extends Error {
  constructor(
    readonly probe: Buffer,
    readonly token: Buffer,
    readonly result: unknown,
    cause: unknown,
  ) {
    super("The connection to Redis broke during a commit", { cause });
  }
}

/** Whether `err` means "the server did not answer now" (worth running the transaction again). */
function transient(err: unknown): boolean {
  if (err instanceof LostCommit) return true;
  if (!(err instanceof Error)) return false;
  if (err.name === "MaxRetriesPerRequestError") return true;
  return /^(Connection is closed|Stream isn't writeable|Command timed out|connect E|read E|write E)/
    .test(err.message) ||
    /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|NOREPLICAS)\b/.test(err.message);
}

/** Whether a command that failed with `err` surely never reached the server. */
function unsent(err: unknown): boolean {
  return err instanceof Error && /^Stream isn't writeable/.test(err.message);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What one transaction read: tokens by key, and scans by range. */
interface ScanRecord {
  min: Buffer;
  max: Buffer;
  limit: number;
  digest: string;
}

/** A connected volume: the client and the names of its keys. */
class Volume {
  readonly client: Redis;
  readonly scripts: ScriptClient;
  readonly tag: string;
  readonly index: Buffer;
  readonly marker: Buffer;
  readonly valuePrefix: Buffer;
  roundTrips = 0;

  constructor(client: Redis, prefix: string) {
    this.client = client;
    this.scripts = client as unknown as ScriptClient;
    this.tag = `{${prefix}}`;
    this.index = Buffer.from(`${this.tag}i`, "latin1");
    this.marker = Buffer.from(`${this.tag}m`, "latin1");
    this.valuePrefix = Buffer.from(`${this.tag}v`, "latin1");
  }

  valueKey(key: string): Buffer {
    return Buffer.from(this.valuePrefix.toString("latin1") + key, "latin1");
  }

  /** Sends one command (or script), counting it. */
  send<T>(command: () => Promise<T>): Promise<T> {
    this.roundTrips++;
    return command();
  }
}

/** The token of a stored value (`""` when absent). */
function tokenOf(stored: Buffer | null): string {
  return stored === null ? "" : stored.toString("latin1", 0, TOKEN_BYTES);
}

/** The value of a stored value: a private copy without the token. */
function valueOf(stored: Buffer | null): Uint8Array | undefined {
  if (stored === null) return undefined;
  if (stored.length < TOKEN_BYTES) throw new Error("A Redis value is shorter than its token");
  return new Uint8Array(stored.subarray(TOKEN_BYTES));
}

class RedisTxn implements KvTxn {
  readonly #vol: Volume;
  readonly #readOnly: boolean;
  readonly pending: PendingWrites = new Map();
  readonly reads = new Map<string, string>();
  readonly scans: ScanRecord[] = [];
  /** Read round trips so far. */
  readOps = 0;
  /** A read saw a token other than an earlier read of the same key. */
  stale = false;
  /** The error of a command that the server did not answer, if any. */
  failure: unknown;
  done = false;

  constructor(vol: Volume, readOnly: boolean) {
    this.#vol = vol;
    this.#readOnly = readOnly;
  }

  #check(): void {
    if (this.done) throw new Error("Transaction is already finished");
  }

  async #read<T>(command: () => Promise<T>): Promise<T> {
    this.readOps++;
    try {
      return await this.#vol.send(command);
    } catch (err) {
      if (transient(err)) this.failure ??= err;
      throw err;
    }
  }

  #saw(key: string, stored: Buffer | null): void {
    const token = tokenOf(stored);
    const before = this.reads.get(key);
    if (before !== undefined && before !== token) {
      this.stale = true;
      throw new Conflict(`"${key}" changed during the transaction`);
    }
    this.reads.set(key, token);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#check();
    const mine = this.pending.get(key);
    if (mine !== undefined) return mine === null ? undefined : mine.slice();
    const stored = await this.#read(() => this.#vol.client.getBuffer(this.#vol.valueKey(key)));
    this.#saw(key, stored);
    return valueOf(stored);
  }

  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    this.#check();
    const remote = keys.filter((k) => !this.pending.has(k));
    const unique = [...new Set(remote)];
    const stored = unique.length === 0
      ? []
      : await this.#read(() =>
        this.#vol.client.mgetBuffer(unique.map((k) => this.#vol.valueKey(k)))
      );
    const byKey = new Map<string, Buffer | null>();
    unique.forEach((k, i) => {
      byKey.set(k, stored[i] ?? null);
      this.#saw(k, stored[i] ?? null);
    });
    return keys.map((k) => {
      const mine = this.pending.get(k);
      if (mine !== undefined) return mine === null ? undefined : mine.slice();
      return valueOf(byKey.get(k) ?? null);
    });
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

  async scan(prefix: string, options?: ScanOptions): Promise<KvPair[]> {
    this.#check();
    const limit = options?.limit;
    if (limit !== undefined && limit <= 0) return [];
    const lower = scanLowerBound(prefix, options?.startAfter);
    let mine = 0;
    for (const key of this.pending.keys()) if (key >= lower && key.startsWith(prefix)) mine++;
    // As `scanWithOverlay` asks: enough committed pairs to make up for hidden or replaced ones.
    const committed = await this.#range(
      lower,
      prefixUpperBound(prefix),
      limit === undefined ? undefined : limit + mine,
      options?.keysOnly === true,
    );
    return scanWithOverlay(this.pending, prefix, options, () => committed);
  }

  /** Committed pairs with `lower <= key < upper`, at most `limit`, recorded in the read set. */
  async #range(
    lower: string,
    upper: string | undefined,
    limit: number | undefined,
    keysOnly: boolean,
  ): Promise<KvPair[]> {
    const vol = this.#vol;
    const min = Buffer.from("[" + lower, "latin1");
    const max = upper === undefined ? Buffer.from("+") : Buffer.from("(" + upper, "latin1");
    let members: Buffer[];
    let values: (Buffer | null)[] | undefined;
    if (keysOnly) {
      members = await this.#read(() =>
        limit === undefined
          ? vol.client.zrangebylexBuffer(vol.index, min, max)
          : vol.client.zrangebylexBuffer(vol.index, min, max, "LIMIT", 0, limit)
      );
    } else {
      const flat = await this.#read(() =>
        vol.scripts.slayerfsScanBuffer(vol.index, min, max, limit ?? -1, vol.valuePrefix)
      );
      members = flat.slice(0, flat.length / 2) as Buffer[];
      values = flat.slice(flat.length / 2);
    }
    this.scans.push({ min, max, limit: limit ?? -1, digest: membersDigest(members) });
    const out: KvPair[] = [];
    const empty = new Uint8Array(0);
    for (let i = 0; i < members.length; i++) {
      const key = members[i]!.toString("latin1");
      if (values === undefined) {
        out.push([key, empty]);
        continue;
      }
      const stored = values[i] ?? null;
      this.#saw(key, stored);
      // A member without a value cannot be committed; treat it as absent (never happens).
      if (stored !== null) out.push([key, valueOf(stored)!]);
    }
    return out;
  }
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
  readonly #vol: Volume;
  readonly #outageMs: number;
  readonly #retries = new Mutex();
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
    this.#vol = new Volume(client, target.prefix);
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
    client.defineCommand("slayerfsScan", { numberOfKeys: 1, lua: SCAN_LUA });
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
        const outcome = conflicts === 0 ? await attempt() : await this.#retries.run(attempt);
        if (outcome.done) return outcome.value;
        outageSince = undefined;
        if (++conflicts >= MAX_CONFLICTS) {
          throw new Error(
            `A transaction on ${this.display} conflicted ${conflicts} times in a row`,
          );
        }
        await sleep(backoffDelay(conflicts, { baseMs: 2, maxMs: 200 }));
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
      // The error may come from reads that never were one state together.
      if (tx.readOps > 1 && !await this.#commit(tx, undefined)) return { done: false };
      throw err;
    }
    tx.done = true;
    if (tx.failure !== undefined) throw tx.failure;
    if (tx.stale) return { done: false };
    if (tx.pending.size === 0) {
      if (tx.readOps > 1 && !await this.#commit(tx, undefined)) return { done: false };
      return { done: true, value };
    }
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

  /**
   * Checks what `tx` read and, given a `token`, applies its writes: true when done, false on a
   * conflict. Without a token it only checks.
   */
  async #commit(tx: RedisTxn, token: Buffer | undefined): Promise<boolean> {
    const vol = this.#vol;
    const readKeys = [...tx.reads.keys()];
    const writes = token === undefined ? [] : [...tx.pending];
    const deletesOnly = writes.length > 0 && writes.every(([, v]) => v === null);
    const keys: Buffer[] = [
      vol.index,
      vol.marker,
      deletesOnly ? this.#receiptKey(token!) : vol.marker,
      ...readKeys.map((k) => vol.valueKey(k)),
      ...writes.map(([k]) => vol.valueKey(k)),
    ];
    const args: (Buffer | string | number)[] = [
      readKeys.length,
      tx.scans.length,
      writes.length,
      writes.length > 0 && this.#needsMarker ? MARKER_VALUE : "",
      deletesOnly ? token! : "",
      vol.valuePrefix.length,
    ];
    for (const k of readKeys) args.push(Buffer.from(tx.reads.get(k)!, "latin1"));
    for (const s of tx.scans) args.push(s.min, s.max, s.limit, s.digest);
    for (const [, v] of writes) args.push(v === null ? EMPTY_BUFFER : Buffer.concat([token!, v]));
    const ok = await vol.send(() => vol.scripts.slayerfsCommit(keys.length, ...keys, ...args));
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
