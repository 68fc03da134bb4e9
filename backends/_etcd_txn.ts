/**
 * One attempt of an etcd transaction ({@linkcode EtcdTxn}: its read set, scanned ranges and
 * buffered writes) and the helpers `kv_etcd.ts` shares with it.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCGenericError,
  isRecoverableError,
} from "etcd3";
import type { KvPair, KvTxn, ScanOptions } from "../core/kv.ts";
import { Errno, FsError } from "../core/errno.ts";
import { byteStringToBytes } from "../core/_bytes.ts";
import { scanLowerBound } from "./_keys.ts";
import { type PendingWrites, scanWithOverlay } from "./_overlay.ts";

/** A value this process saw or wrote last, with its `mod_revision` ("0": absent). */
export interface CachedValue {
  /** The value, or `undefined` for an absent key. */
  readonly value: Uint8Array | undefined;
  /** Its `mod_revision`. */
  readonly mod: string;
}

/** What a transaction asks of its engine: reads at the transaction's revision. */
export interface EtcdReads {
  /** The last value of `key` this process knows of, if it remembers one. */
  cached(key: string): CachedValue | undefined;
  /** Reads `keys` (none read before in `tx`) into `tx`'s read set. */
  readKeys(tx: EtcdTxn, keys: readonly string[]): Promise<void>;
  /** Reads committed pairs of `prefix` from `lower`, at most `limit`, into `tx`'s read set. */
  readRange(
    tx: EtcdTxn,
    prefix: string,
    lower: string,
    limit: number | undefined,
    keysOnly: boolean,
  ): Promise<KvPair[]>;
}

/** Whether `err` comes from etcd or gRPC (rather than from a transaction's own code). */
export function isEtcdError(err: unknown): boolean {
  if (
    err instanceof GRPCGenericError || err instanceof EtcdError ||
    err instanceof EtcdAuthenticationFailedError || err instanceof EtcdPermissionDeniedError
  ) {
    return true;
  }
  // The authenticator's errors are gRPC's own, not cast by etcd3.
  const e = err as { code?: unknown; metadata?: unknown } | null;
  return err instanceof Error && typeof e?.code === "number" && e.metadata !== undefined;
}

/** The error says etcd is (maybe briefly) unreachable or unable to serve. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (isRecoverableError(err) || err instanceof GRPCDeadlineExceededError) return true;
  return /no leader|leader changed|request timed out|too many requests|not capable|UNAVAILABLE|ECONNREFUSED|ECONNRESET|circuit breaker is open/i
    .test(err.message);
}

export function isCompacted(err: unknown): boolean {
  return err instanceof Error && err.message.includes("required revision has been compacted");
}

/** The first line of a gRPC error, without its status-code prefix. */
export function short(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const connect = /connect (E[A-Z]+)/.exec(text)?.[1];
  if (connect !== undefined) {
    return `cannot connect: ${CONNECT_ERRORS[connect] ?? connect}`;
  }
  if (/write EPIPE|ECONNRESET/.test(text)) {
    return "the server closed the connection (with etcds://, check the client cert and key)";
  }
  return (text.split("\n")[0] ?? "").replace(/^\d+ [A-Z_]+: /, "").replace(/^etcdserver: /, "")
    .replace(/^No connection established\. Last error: /, "")
    .replace(/ \(\d{4}-\d\d-\d\dT[^)]*\)\.? ?Resolution note:.*$/, "");
}

const CONNECT_ERRORS: Record<string, string> = {
  ECONNREFUSED: "Connection refused",
  EHOSTUNREACH: "No route to host",
  ENETUNREACH: "Network is unreachable",
  ETIMEDOUT: "Connection timed out",
};

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The bytes after `bytes` in order: `bytes` plus one at the last byte below 0xff. */
export function rangeEnd(bytes: Uint8Array): Buffer {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0xff) end--;
  if (end === 0) return Buffer.from([0]);
  const out = Buffer.from(bytes.subarray(0, end));
  out[end - 1]! += 1;
  return out;
}

/** One attempt of a transaction. */
export class EtcdTxn implements KvTxn {
  readonly #engine: EtcdReads;
  readonly #readOnly: boolean;
  /** The revision all reads use, set by the first read. */
  rev: string | undefined;
  /** Keys read, with their `mod_revision` ("0" when absent). */
  readonly mods = new Map<string, string>();
  /** Values read (not for keys-only scans). */
  readonly values = new Map<string, Uint8Array | undefined>();
  /** Scanned ranges `[start, end)`, as etcd keys. */
  readonly ranges: [Buffer, Buffer][] = [];
  readonly pending: PendingWrites = new Map();
  /** Whether a read came from the engine's cache (the commit's compares validate it). */
  usedCache = false;
  done = false;

  constructor(engine: EtcdReads, readOnly: boolean) {
    this.#engine = engine;
    this.#readOnly = readOnly;
  }

  /**
   * Takes `key` from the engine's cache into the read set. Only transactions that may write do:
   * their commit (or, without writes, a validation) checks the `mod_revision`s, while a read-only
   * transaction commits nothing that would.
   */
  #fromCache(key: string): boolean {
    if (this.#readOnly) return false;
    const hit = this.#engine.cached(key);
    if (hit === undefined) return false;
    this.mods.set(key, hit.mod);
    this.values.set(key, hit.value);
    this.usedCache = true;
    return true;
  }

  #check(): void {
    if (this.done) throw new Error("Transaction is already finished");
  }

  #checkWrite(key: string): void {
    this.#check();
    if (this.#readOnly) throw new FsError(Errno.EROFS, `Write of "${key}" in a read-only txn`);
  }

  #local(key: string): Uint8Array | undefined | null {
    const mine = this.pending.get(key);
    if (mine !== undefined) return mine === null ? undefined : mine.slice();
    if (this.values.has(key)) return this.values.get(key)?.slice();
    return null;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#check();
    const local = this.#local(key);
    if (local !== null) return local;
    if (!this.#fromCache(key)) await this.#engine.readKeys(this, [key]);
    return this.values.get(key)?.slice();
  }

  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    this.#check();
    const missing = [
      ...new Set(
        keys.filter((k) => !this.pending.has(k) && !this.values.has(k) && !this.#fromCache(k)),
      ),
    ];
    if (missing.length > 0) await this.#engine.readKeys(this, missing);
    return keys.map((key) => this.#local(key) ?? undefined);
  }

  set(key: string, value: Uint8Array): void {
    this.#checkWrite(key);
    byteStringToBytes(key); // rejects chars above 255 now rather than at commit
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
    const lower = scanLowerBound(prefix, options?.startAfter);
    let mine = 0;
    for (const key of this.pending.keys()) if (key >= lower && key.startsWith(prefix)) mine++;
    const committed = await this.#engine.readRange(
      this,
      prefix,
      lower,
      limit === undefined ? undefined : limit + mine,
      options?.keysOnly === true,
    );
    return scanWithOverlay(this.pending, prefix, options, () => committed);
  }
}
