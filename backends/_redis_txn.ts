/**
 * One transaction of the Redis engine (private to it): reads that remember what they saw,
 * buffered writes, and the arguments of the scripts that check the reads (see `kv_redis.ts`).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import type { KvPair, KvTxn, ScanOptions } from "../core/kv.ts";
import { Errno, FsError } from "../core/errno.ts";
import { byteStringToBytes } from "../core/_bytes.ts";
import { prefixUpperBound, scanLowerBound } from "./_keys.ts";
import { type PendingWrites, scanWithOverlay } from "./_overlay.ts";
import { membersDigest } from "./_redis_scripts.ts";

/** The bytes of the commit token in front of every stored value. */
export const TOKEN_BYTES = 8;

/** An argument of a command: bytes, text or a number. */
export type Arg = Buffer | string | number;

/** The methods `defineCommand` adds to the client. */
interface ScriptClient {
  slayerfsReadBuffer(numKeys: number, ...args: Arg[]): Promise<(Buffer | number | null)[]>;
  slayerfsCommit(numKeys: number, ...args: Arg[]): Promise<number>;
}

/** Another client changed what this transaction read: run it again. */
export class Conflict extends Error {}

/** Whether `err` means "the server did not answer now" (worth running the transaction again). */
export function transient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === "MaxRetriesPerRequestError" || err.name === "LostCommit") return true;
  return /^(Connection is closed|Stream isn't writeable|Command timed out|connect E|read E|write E)/
    .test(err.message) ||
    /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|NOREPLICAS)\b/.test(err.message);
}

/** A connected volume: the client, the names of its keys, and the count of commands sent. */
export class RedisVolume {
  /** The client. */
  readonly client: Redis;
  /** The client's script methods. */
  readonly scripts: ScriptClient;
  /** The hash tag `{prefix}` every key of the volume starts with. */
  readonly tag: string;
  /** The sorted set of all keys. */
  readonly index: Buffer;
  /** The volume's marker. */
  readonly marker: Buffer;
  /** What every value key starts with. */
  readonly valuePrefix: Buffer;
  readonly #valuePrefix: string;
  /** Commands sent so far. */
  roundTrips = 0;

  constructor(client: Redis, prefix: string) {
    this.client = client;
    this.scripts = client as unknown as ScriptClient;
    this.tag = `{${prefix}}`;
    this.index = Buffer.from(`${this.tag}i`, "latin1");
    this.marker = Buffer.from(`${this.tag}m`, "latin1");
    this.#valuePrefix = `${this.tag}v`;
    this.valuePrefix = Buffer.from(this.#valuePrefix, "latin1");
  }

  /** The Redis key that holds the value of `key`. */
  valueKey(key: string): Buffer {
    return Buffer.from(this.#valuePrefix + key, "latin1");
  }

  /** Sends one command (or script), counting it. */
  send<T>(command: () => Promise<T>): Promise<T> {
    this.roundTrips++;
    return command();
  }
}

/** A scan as a transaction saw it. */
interface ScanRecord {
  min: Buffer;
  max: Buffer;
  limit: number;
  digest: string;
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

const EMPTY = new Uint8Array(0);

/**
 * A transaction. Its first read is a plain command; every later one is a script that first
 * checks that nothing read so far has changed, so all its reads are one state as of the last.
 */
export class RedisTxn implements KvTxn {
  readonly #vol: RedisVolume;
  readonly #readOnly: boolean;
  /** The buffered writes. */
  readonly pending: PendingWrites = new Map();
  /** The token of each key read (`""`: absent). */
  readonly reads = new Map<string, string>();
  /** The ranges scanned. */
  readonly scans: ScanRecord[] = [];
  /** A read found that an earlier one changed: the transaction must run again. */
  stale = false;
  /** The error of a command that the server did not answer, if any. */
  failure: unknown;
  done = false;

  constructor(vol: RedisVolume, readOnly: boolean) {
    this.#vol = vol;
    this.#readOnly = readOnly;
  }

  #check(): void {
    if (this.done) throw new Error("Transaction is already finished");
  }

  /** The keys and arguments that describe what this transaction read. */
  readSet(): { keys: Buffer[]; args: Arg[] } {
    const keys: Buffer[] = [];
    const args: Arg[] = [];
    for (const [key, token] of this.reads) {
      keys.push(this.#vol.valueKey(key));
      args.push(Buffer.from(token, "latin1"));
    }
    for (const s of this.scans) args.push(s.min, s.max, s.limit, s.digest);
    return { keys, args };
  }

  async #send<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await this.#vol.send(command);
    } catch (err) {
      if (transient(err)) this.failure ??= err;
      throw err;
    }
  }

  /** Runs the read script (`op` g, r or k) after the check of the read set; its results. */
  async #checkedRead(
    op: "g" | "r" | "k",
    keys: Buffer[],
    range: Arg[] = ["", "", -1],
  ): Promise<(Buffer | null)[]> {
    const set = this.readSet();
    const allKeys = [this.#vol.index, ...set.keys, ...keys];
    const out = await this.#send(() =>
      this.#vol.scripts.slayerfsReadBuffer(
        allKeys.length,
        ...allKeys,
        this.reads.size,
        this.scans.length,
        op,
        this.#vol.valuePrefix,
        ...range,
        ...set.args,
      )
    );
    if (out[0] !== 1) {
      this.stale = true;
      throw new Conflict("A key read earlier in the transaction changed");
    }
    return out.slice(1) as (Buffer | null)[];
  }

  #fresh(): boolean {
    return this.reads.size === 0 && this.scans.length === 0;
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

  /** The stored values of `keys` (none pending), recorded in the read set. */
  async #fetch(keys: string[]): Promise<(Buffer | null)[]> {
    const vol = this.#vol;
    const valueKeys = keys.map((k) => vol.valueKey(k));
    let stored: (Buffer | null)[];
    if (this.#fresh()) {
      stored = keys.length === 1
        ? [await this.#send(() => vol.client.getBuffer(valueKeys[0]!))]
        : await this.#send(() => vol.client.mgetBuffer(valueKeys));
    } else {
      stored = await this.#checkedRead("g", valueKeys);
    }
    keys.forEach((k, i) => this.#saw(k, stored[i] ?? null));
    return stored;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#check();
    const mine = this.pending.get(key);
    if (mine !== undefined) return mine === null ? undefined : mine.slice();
    const [stored] = await this.#fetch([key]);
    return valueOf(stored ?? null);
  }

  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    this.#check();
    const remote = [...new Set(keys.filter((k) => !this.pending.has(k)))];
    const stored = remote.length === 0 ? [] : await this.#fetch(remote);
    const byKey = new Map<string, Buffer | null>();
    remote.forEach((k, i) => byKey.set(k, stored[i] ?? null));
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
    if (keysOnly && this.#fresh()) {
      members = await this.#send(() =>
        limit === undefined
          ? vol.client.zrangebylexBuffer(vol.index, min, max)
          : vol.client.zrangebylexBuffer(vol.index, min, max, "LIMIT", 0, limit)
      );
    } else {
      const flat = await this.#checkedRead(keysOnly ? "k" : "r", [], [min, max, limit ?? -1]);
      const n = keysOnly ? flat.length : flat.length / 2;
      members = flat.slice(0, n) as Buffer[];
      if (!keysOnly) values = flat.slice(n);
    }
    this.scans.push({ min, max, limit: limit ?? -1, digest: membersDigest(members) });
    const out: KvPair[] = [];
    for (let i = 0; i < members.length; i++) {
      const key = members[i]!.toString("latin1");
      if (values === undefined) {
        out.push([key, EMPTY]);
        continue;
      }
      const stored = values[i] ?? null;
      this.#saw(key, stored);
      // Members and values change together, so a member has a value; skip one that has not.
      if (stored !== null) out.push([key, valueOf(stored)!]);
    }
    return out;
  }
}
