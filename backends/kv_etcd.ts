/**
 * `EtcdKvEngine`: the `etcd://` metadata engine, the volume's keys under one prefix of an etcd v3
 * cluster (npm `etcd3`, over gRPC). Loaded on first use by `registry.ts`.
 *
 * Decisions:
 * - Keys: `PREFIX/` (UTF-8) followed by the key's bytes (a byte string sent as bytes, so etcd's
 *   bytewise order is the engine's order). The key `PREFIX` itself holds a marker
 *   ({@linkcode ETCD_MARKER}); a prefix that holds keys but no marker is some other data and is
 *   refused at open. The first commit on an empty prefix writes the marker.
 * - Transactions are optimistic, like etcd's STM: all reads of one attempt are at one revision
 *   (the first read's, a linearizable read); every key read is remembered with its
 *   `mod_revision` (0 when absent), every scanned range with its bounds. The commit is one etcd
 *   `Txn` that compares each read key's `mod_revision`, and `mod_revision < rev + 1` over each
 *   scanned range (so a key inserted there since fails it), and applies all the sets and deletes.
 *   A failed compare runs `fn` again; retries of one process queue on a local lock, and while
 *   that queue is not empty new writers of the process join it: under contention (many creates
 *   in one directory) the process's writers run one at a time instead of failing each other
 *   quadratically, and run in parallel again once the queue drains.
 *   Read-only transactions, and transactions that wrote nothing, commit nothing.
 * - A cache of the values this process last saw or wrote (up to 4 KiB each, 32 MiB in all) serves
 *   the point reads of transactions that may write: their commit compares the cached
 *   `mod_revision`s like any other read, so a stale value only costs a conflict and a rerun (and
 *   the stale entries are dropped). A transaction that wrote nothing or threw after a cached read
 *   checks its reads in one compare-only `Txn` first. Read-only transactions never use the cache,
 *   so what they return is current. A create in a known directory is then one round trip or two.
 * - `getMany` is one `Txn` of range requests (per 128 keys: etcd's default `--max-txn-ops`).
 * - Outages: a request that fails because etcd is unreachable (or has no leader, or times out
 *   after {@linkcode RPC_TIMEOUT_MS}) makes the transaction wait and run again, for up to
 *   {@linkcode OUTAGE_MS}; then it fails with `EIO`. The client reconnects by itself. A commit
 *   whose answer was lost is run again as a new attempt, which reads what the lost one may have
 *   written (the same ambiguity every networked store has).
 * - etcd3's own retries are off (this module decides); its per-host circuit breaker stays on
 *   with several hosts, so requests go to the others while one is down.
 * - `etcds://` is the same over TLS (`_etcd_url.ts`).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCNotImplementedError,
  type ICompare,
  type IKeyValue,
  type IRequestOp,
} from "etcd3";
import type { KvEngine, KvPair, KvTxn, TxnOptions } from "../core/kv.ts";
import { Errno, FsError } from "../core/errno.ts";
import { bytesToByteString, byteStringToBytes } from "../core/_bytes.ts";
import { getLog } from "../core/log.ts";
import { prefixUpperBound } from "./_keys.ts";
import { LRUCache } from "lru-cache";
import {
  type CachedValue,
  type EtcdReads,
  EtcdTxn,
  isCompacted,
  isEtcdError,
  isTransient,
  rangeEnd,
  short,
  sleep,
} from "./_etcd_txn.ts";
import { backoffDelay } from "./_retry.ts";
import { type EtcdUrl, parseEtcdUrl, readEtcdTls } from "./_etcd_url.ts";

export { EtcdUrlError } from "./_etcd_url.ts";

/** The value of the marker key `PREFIX` of a SlayerFS volume. */
export const ETCD_MARKER = "SlayerFS metadata v1";
/** Each request's deadline, in ms. */
export const RPC_TIMEOUT_MS = 10_000;
/** How long a transaction waits for an unreachable etcd before failing with `EIO`, in ms. */
export const OUTAGE_MS = 60_000;
/** How long `open` tries to reach etcd, in ms. */
const OPEN_TIMEOUT_MS = 5_000;
/** Read ops per `Txn` in `getMany` (etcd's default `--max-txn-ops`). */
const READS_PER_TXN = 128;
/** Keys per range request when a scan has no smaller limit. */
const SCAN_PAGE = 1000;
/** Values up to this size are cached (see the module notes). */
const CACHE_VALUE_MAX = 4096;
/** Bytes of cached keys and values at most. */
const CACHE_BYTES = 32 << 20;
/** Conflicts before a transaction gives up. */
const MAX_CONFLICTS = 100;

const log = getLog("etcd");
const EMPTY = new Uint8Array(0);
const MARKER = Buffer.from(ETCD_MARKER);

/** Options of {@linkcode EtcdKvEngine.open}. */
export interface EtcdKvOptions {
  /** Writes throw `EROFS`. */
  readOnly?: boolean;
  /** How long a transaction waits for an unreachable etcd (default {@linkcode OUTAGE_MS}). */
  outageMs?: number;
}

/** No retries: {@linkcode EtcdKvEngine} retries whole transactions. */
const NO_POLICY = {
  execute<T>(fn: (context: unknown) => T | Promise<T>): Promise<T> {
    return Promise.resolve().then(() => fn({ signal: new AbortController().signal }));
  },
};

/**
 * The etcd metadata engine (scheme `"etcd"`). Open it with {@linkcode EtcdKvEngine.open}.
 *
 * @example
 * ```ts ignore
 * import { EtcdKvEngine } from "./kv_etcd.ts";
 * const kv = await EtcdKvEngine.open("etcd://127.0.0.1:2379/myfs");
 * await kv.txn(async (tx) => tx.set("a", new Uint8Array([1])));
 * await kv.close();
 * ```
 */
export class EtcdKvEngine implements KvEngine, EtcdReads {
  /** Always `"etcd"`. */
  readonly scheme = "etcd";
  /** The URL without its password. */
  readonly url: string;
  /** Whether writes are refused. */
  readonly readOnly: boolean;
  readonly #client: Etcd3;
  readonly #where: string;
  /** `PREFIX/` as bytes. */
  readonly #base: Buffer;
  /** The marker key, `PREFIX`. */
  readonly #marker: Buffer;
  readonly #outageMs: number;
  /** The tail of the queue of retrying transactions (see the module notes). */
  #retryTail: Promise<void> = Promise.resolve();
  /** Transactions in or waiting for the queue. */
  #queued = 0;
  /** The values this process saw or wrote last; `seen` is the revision they were seen at. */
  readonly #cache = new LRUCache<string, CachedValue & { seen: bigint }>({
    maxSize: CACHE_BYTES,
    sizeCalculation: (v, k) => k.length + (v.value?.length ?? 0) + 64,
  });
  #markerSeen = false;
  /** An outage was logged and no transaction succeeded since. */
  #down = false;
  #roundTrips = 0;
  #closed = false;

  private constructor(url: EtcdUrl, client: Etcd3, options: EtcdKvOptions) {
    this.url = url.display;
    this.readOnly = options.readOnly === true;
    this.#client = client;
    this.#where = `etcd at ${url.hosts.join(",")}`;
    this.#marker = Buffer.from(url.prefix);
    this.#base = Buffer.from(`${url.prefix}/`);
    this.#outageMs = options.outageMs ?? url.retryTimeoutMs ?? OUTAGE_MS;
  }

  /** Requests sent to etcd so far. */
  get roundTrips(): number {
    return this.#roundTrips;
  }

  /**
   * Connects to the etcd that `raw` names and checks its prefix: empty, or a SlayerFS volume.
   * Throws `EtcdUrlError` for a bad URL, and an `Error` with a one-line message when etcd
   * cannot be reached within a few seconds, refuses the credentials, or the prefix holds other
   * data.
   */
  static async open(raw: string, options: EtcdKvOptions = {}): Promise<EtcdKvEngine> {
    const url = parseEtcdUrl(raw);
    const client = new Etcd3({
      ...(url.tls === undefined ? {} : { credentials: await readEtcdTls(url) }),
      hosts: url.hosts.map((h) => `http://${h}`),
      ...(url.auth === undefined ? {} : {
        auth: {
          username: url.auth.username,
          password: url.auth.password ?? Deno.env.get("ETCD_PASSWORD") ?? "",
          callOptions: () => ({ deadline: Date.now() + RPC_TIMEOUT_MS }),
        },
      }),
      grpcOptions: {
        "grpc.max_receive_message_length": -1,
        "grpc.max_send_message_length": -1,
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1000,
        // etcd is reached directly: an HTTP proxy set for downloads would answer for it.
        "grpc.enable_http_proxy": 0,
      },
      // With several hosts, etcd3's circuit breaker (per host) sends requests to the others while
      // one is down; with one, it would only delay the first request after an outage.
      faultHandling: url.hosts.length > 1
        ? { global: NO_POLICY as never }
        : { host: () => NO_POLICY as never, global: NO_POLICY as never },
    });
    const engine = new EtcdKvEngine(url, client, options);
    try {
      await engine.#probe();
      return engine;
    } catch (err) {
      client.close();
      engine.#closed = true;
      throw err;
    }
  }

  /** Checks that etcd answers and that the prefix is empty or ours. */
  async #probe(): Promise<void> {
    const deadline = Date.now() + OPEN_TIMEOUT_MS;
    // A volume's keys must not fall under another volume's prefix: `a/b` is refused inside `a`
    // here, and `a` over `a/b` by the check of the keys under `a/`.
    const parts = this.#marker.toString().split("/");
    const ancestors = parts.slice(1).map((_, i) => parts.slice(0, i + 1).join("/"));
    let reason: unknown;
    for (let attempt = 1;; attempt++) {
      try {
        const res = await this.#call(
          (o) =>
            this.#client.kv.txn({
              success: [
                { request_range: { key: this.#marker } },
                {
                  request_range: {
                    key: this.#base,
                    range_end: rangeEnd(this.#base),
                    limit: 1,
                    keys_only: true,
                  },
                },
                ...ancestors.map((a): IRequestOp => ({ request_range: { key: Buffer.from(a) } })),
              ],
            }, o),
          Math.max(500, deadline - Date.now()),
        );
        const marker = res.responses[0]?.response_range.kvs[0];
        const other = res.responses[1]?.response_range.kvs[0];
        ancestors.forEach((a, i) => {
          const kv = res.responses[i + 2]?.response_range.kvs[0];
          if (kv !== undefined && MARKER.equals(kv.value)) {
            throw new Error(
              `The etcd prefix "${this.#marker.toString()}" of ${this.url} is inside the ` +
                `SlayerFS volume at prefix "${a}": choose another prefix`,
            );
          }
        });
        if (marker !== undefined) {
          if (!MARKER.equals(marker.value)) throw this.#foreign();
          this.#markerSeen = true;
        } else if (other !== undefined) {
          throw this.#foreign();
        }
        return;
      } catch (err) {
        if (!isTransient(err)) throw this.#fatal(err);
        // The last attempt's error may be a bare deadline: an earlier one says more.
        if (reason === undefined || !(err instanceof GRPCDeadlineExceededError)) reason = err;
        if (Date.now() + 500 >= deadline) {
          const why = reason instanceof GRPCDeadlineExceededError
            ? `no answer in ${OPEN_TIMEOUT_MS / 1000} s`
            : short(reason);
          throw new Error(`Cannot reach ${this.#where} (${this.url}): ${why}`);
        }
        await sleep(Math.min(backoffDelay(attempt, { baseMs: 100, maxMs: 1000 }), 1000));
      }
    }
  }

  #foreign(): Error {
    return new Error(
      `The etcd prefix "${this.#marker.toString()}" of ${this.url} holds data that is not a ` +
        `SlayerFS volume: choose another prefix`,
    );
  }

  /** The one-line error for a failure that retrying cannot fix. */
  #fatal(err: unknown): unknown {
    // Errors of `fn` itself (the core's FsErrors, bugs) pass through unchanged.
    if (!isEtcdError(err)) return err;
    const text = short(err);
    let message = `${this.#where} failed: ${text} (${this.url})`;
    if (err instanceof EtcdAuthenticationFailedError || /authentication failed/.test(text)) {
      message = `${this.#where} refused the credentials of ${this.url}`;
    } else if (/user name is empty/.test(text)) {
      message = `${this.#where} requires a user and password: etcd://USER:PASS@HOST:PORT/PREFIX ` +
        `(or etcd://USER@... with the password in ETCD_PASSWORD)`;
    } else if (err instanceof EtcdPermissionDeniedError) {
      message = `${this.#where} denied access to the prefix of ${this.url}`;
    } else if (/too many operations|request is too large|message larger/i.test(text)) {
      message = `${this.#where} refused a transaction (${text}): raise its --max-txn-ops or ` +
        `--max-request-bytes (see the README)`;
    } else if (err instanceof GRPCNotImplementedError) {
      message = `${this.url} does not answer like etcd: ${text}`;
    }
    return new FsError(Errno.EIO, message);
  }

  /** Sends one request with a deadline, counting it. */
  #call<T>(fn: (options: { deadline: number }) => Promise<T>, timeoutMs = RPC_TIMEOUT_MS) {
    if (this.#closed) return Promise.reject(new Error(`Metadata engine ${this.url} is closed`));
    this.#roundTrips++;
    return fn({ deadline: Date.now() + timeoutMs });
  }

  #key(key: string): Buffer {
    const bytes = byteStringToBytes(key);
    const out = Buffer.allocUnsafe(this.#base.length + bytes.length);
    this.#base.copy(out, 0);
    out.set(bytes, this.#base.length);
    return out;
  }

  #unkey(key: Buffer): string {
    return bytesToByteString(key.subarray(this.#base.length));
  }

  #note(tx: EtcdTxn, kv: IKeyValue, keysOnly: boolean): string {
    const key = this.#unkey(kv.key);
    const mod = String(kv.mod_revision);
    tx.mods.set(key, mod);
    if (!keysOnly) {
      const value = new Uint8Array(kv.value);
      tx.values.set(key, value);
      this.#remember(key, value, mod, tx.rev!);
    }
    return key;
  }

  /** The last value of `key` this process saw or wrote, if remembered. */
  cached(key: string): CachedValue | undefined {
    return this.#cache.get(key);
  }

  /** Remembers `key`'s value as seen at revision `seen`, unless a later sight is remembered. */
  #remember(key: string, value: Uint8Array | undefined, mod: string, seen: string): void {
    const at = BigInt(seen);
    const known = this.#cache.peek(key);
    if (known !== undefined && known.seen > at) return;
    if (value !== undefined && value.length > CACHE_VALUE_MAX) this.#cache.delete(key);
    else this.#cache.set(key, { value, mod, seen: at });
  }

  /** Forgets what `tx` read: some of it changed. */
  #forget(tx: EtcdTxn): void {
    for (const key of tx.mods.keys()) this.#cache.delete(key);
  }

  /** Reads `keys` (none read before in `tx`) into `tx`'s read set. */
  async readKeys(tx: EtcdTxn, keys: readonly string[]): Promise<void> {
    const readChunk = async (chunk: readonly string[]) => {
      const rev = tx.rev;
      const res = await this.#call((o) =>
        this.#client.kv.txn({
          success: chunk.map((k): IRequestOp => ({
            request_range: { key: this.#key(k), ...(rev === undefined ? {} : { revision: rev }) },
          })),
        }, o)
      );
      tx.rev ??= String(res.header.revision);
      chunk.forEach((key, i) => {
        const kv = res.responses[i]?.response_range.kvs[0];
        if (kv === undefined) {
          tx.mods.set(key, "0");
          tx.values.set(key, undefined);
          this.#remember(key, undefined, "0", tx.rev!);
        } else {
          this.#note(tx, kv, false);
        }
      });
    };
    if (keys.length === 1) {
      const key = keys[0]!;
      const rev = tx.rev;
      const res = await this.#call((o) =>
        this.#client.kv.range({
          key: this.#key(key),
          ...(rev === undefined ? {} : { revision: rev }),
        }, o)
      );
      tx.rev ??= String(res.header.revision);
      const kv = res.kvs[0];
      if (kv === undefined) {
        tx.mods.set(key, "0");
        tx.values.set(key, undefined);
        this.#remember(key, undefined, "0", tx.rev!);
      } else {
        this.#note(tx, kv, false);
      }
      return;
    }
    let rest = keys;
    if (tx.rev === undefined) {
      await readChunk(rest.slice(0, READS_PER_TXN));
      rest = rest.slice(READS_PER_TXN);
    }
    const chunks: (readonly string[])[] = [];
    for (let i = 0; i < rest.length; i += READS_PER_TXN) {
      chunks.push(rest.slice(i, i + READS_PER_TXN));
    }
    await Promise.all(chunks.map(readChunk));
  }

  /**
   * Reads committed pairs under `prefix` from `lower` (inclusive), ascending, at most `limit`,
   * into `tx`'s read set; the range read is remembered for the commit's compare.
   */
  async readRange(
    tx: EtcdTxn,
    prefix: string,
    lower: string,
    limit: number | undefined,
    keysOnly: boolean,
  ): Promise<KvPair[]> {
    const upper = prefixUpperBound(prefix);
    if (upper !== undefined && lower >= upper) return [];
    const end = upper === undefined ? rangeEnd(this.#base) : this.#key(upper);
    const start = this.#key(lower);
    const out: KvPair[] = [];
    let from = start;
    for (;;) {
      const want = limit === undefined ? SCAN_PAGE : Math.min(SCAN_PAGE, limit - out.length);
      const rev = tx.rev;
      const res = await this.#call((o) =>
        this.#client.kv.range({
          key: from,
          range_end: end,
          limit: want,
          keys_only: keysOnly,
          ...(rev === undefined ? {} : { revision: rev }),
        }, o)
      );
      tx.rev ??= String(res.header.revision);
      for (const kv of res.kvs) {
        const key = this.#note(tx, kv, keysOnly);
        out.push([key, keysOnly ? EMPTY : tx.values.get(key)!.slice()]);
      }
      const last = res.kvs.at(-1);
      const full = limit !== undefined && out.length >= limit;
      if (!res.more || last === undefined || full) {
        // Scanned: [start, end) when exhausted, else up to and including the last key.
        const stop = res.more && last !== undefined
          ? Buffer.concat([last.key, Buffer.from([0])])
          : end;
        tx.ranges.push([start, stop]);
        return out;
      }
      from = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  /** Commits `tx`'s writes if nothing it read has changed; false on a conflict. */
  async #commit(tx: EtcdTxn): Promise<boolean> {
    const compare = this.#compares(tx);
    const success: IRequestOp[] = [];
    const markerNew = !this.#markerSeen;
    if (markerNew) {
      compare.push({ key: this.#marker, target: "Version", result: "Equal", version: 0 });
      success.push({ request_put: { key: this.#marker, value: MARKER } });
    }
    for (const [key, value] of tx.pending) {
      success.push(
        value === null ? { request_delete_range: { key: this.#key(key) } } : {
          request_put: {
            key: this.#key(key),
            value: Buffer.from(value.buffer, value.byteOffset, value.byteLength),
          },
        },
      );
    }
    const res = await this.#call((o) => this.#client.kv.txn({ compare, success }, o));
    if (res.succeeded) {
      this.#markerSeen = true;
      const rev = String(res.header.revision);
      for (const [key, value] of tx.pending) {
        this.#remember(key, value ?? undefined, value === null ? "0" : rev, rev);
      }
      return true;
    }
    if (markerNew) await this.#probe();
    return false;
  }

  /** The compares that hold while nothing `tx` read has changed. */
  #compares(tx: EtcdTxn): ICompare[] {
    const compare: ICompare[] = [];
    for (const [key, mod] of tx.mods) {
      compare.push({ key: this.#key(key), target: "Mod", result: "Equal", mod_revision: mod });
    }
    if (tx.rev !== undefined) {
      const next = String(BigInt(tx.rev) + 1n);
      for (const [key, range_end] of tx.ranges) {
        compare.push({ key, range_end, target: "Mod", result: "Less", mod_revision: next });
      }
    }
    return compare;
  }

  /** Whether what `tx` read (some of it from the cache) is still current. */
  async #validate(tx: EtcdTxn): Promise<boolean> {
    if (!tx.usedCache) return true;
    const compare = this.#compares(tx);
    return (await this.#call((o) => this.#client.kv.txn({ compare }, o))).succeeded;
  }

  /** Runs `fn` in a serializable transaction; its writes apply only if it resolves. */
  async txn<T>(fn: (tx: KvTxn) => Promise<T>, options?: TxnOptions): Promise<T> {
    if (this.#closed) throw new Error(`Metadata engine ${this.url} is closed`);
    const readOnly = this.readOnly || options?.readOnly === true;
    let conflicts = 0;
    let outageSince: number | undefined;
    // While transactions queue after a conflict, new writers queue behind them.
    let release = !readOnly && this.#queued > 0 ? await this.#queueRetry() : undefined;
    try {
      for (let attempt = 1;; attempt++) {
        const tx = new EtcdTxn(this, readOnly);
        try {
          const result = await fn(tx);
          tx.done = true;
          const done = tx.pending.size === 0 ? await this.#validate(tx) : await this.#commit(tx);
          if (done) {
            if (this.#down) {
              this.#down = false;
              log.info(`${this.#where} answers again`);
            }
            return result;
          }
          this.#forget(tx);
          conflicts++;
        } catch (err) {
          tx.done = true;
          if (this.#closed) throw new Error(`Metadata engine ${this.url} is closed`);
          if (isCompacted(err)) {
            conflicts++;
          } else if (!isEtcdError(err) && !await this.#validate(tx).catch(() => true)) {
            // `fn` failed on a cached value that had changed (e.g. EEXIST for a removed entry).
            this.#forget(tx);
            conflicts++;
          } else if (isTransient(err)) {
            const now = Date.now();
            outageSince ??= now;
            if (!this.#down) {
              // Once per outage, however many transactions wait.
              this.#down = true;
              log.warn(`${this.#where} is unreachable (${short(err)}); waiting`);
            }
            if (now - outageSince >= this.#outageMs) {
              throw new FsError(
                Errno.EIO,
                `${this.#where} unreachable for ${Math.round((now - outageSince) / 1000)} s: ` +
                  short(err),
              );
            }
            await sleep(backoffDelay(attempt, { baseMs: 100, maxMs: 2000 }));
            continue;
          } else {
            throw this.#fatal(err);
          }
        }
        if (conflicts >= MAX_CONFLICTS) {
          throw new FsError(
            Errno.EIO,
            `etcd transaction still conflicting after ${conflicts} tries`,
          );
        }
        // Retries of this process run one at a time (see the module notes).
        if (release === undefined) release = await this.#queueRetry();
        else await sleep(backoffDelay(conflicts, { baseMs: 2, maxMs: 200 }));
      }
    } finally {
      release?.();
    }
  }

  /** Waits for the retries queued before this one; resolves to the function that ends ours. */
  async #queueRetry(): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => release = resolve);
    const before = this.#retryTail;
    this.#retryTail = before.then(() => mine);
    this.#queued++;
    await before;
    return () => {
      this.#queued--;
      release();
    };
  }

  /** Closes the connection; idempotent. Later transactions fail. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#client.close();
    }
    return Promise.resolve();
  }
}
