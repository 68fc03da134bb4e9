/**
 * `WritebackBlockStore`: a block store decorator that stages every `put` on the local disk,
 * resolves, and uploads to the inner store (S3) in the background. It gives SlayerFS its
 * `--writeback` and offline modes.
 *
 * Decisions:
 * - **Durability.** `put` writes the object to a temporary file in the staging directory,
 *   fsyncs it, renames it to `<dir>/<encoded key>` and fsyncs the directory, then resolves. So
 *   once `put` resolves (and the core commits metadata that refers to the block) the block
 *   survives a kill -9 and a power cut. Concurrent puts share one directory fsync (group commit).
 *   Key encoding is flat (`chunks/0/1/7_0_4096` is staged as `chunks%2F0%2F1%2F7_0_4096`, see
 *   `_writeback_stage.ts`, which keeps the staging directory). A key whose encoding would exceed
 *   a file name (255 bytes) is not staged: its `put` writes through to the inner store.
 * - **Ordering.** Uploads run in staging order (oldest first after a restart), at most
 *   `uploadConcurrency` at a time. A staged file is removed only after the inner `put` of that
 *   exact version succeeded: a `put` of the same key while its upload is in flight bumps the
 *   object's version and the uploader uploads again. Renames by `put` and removals by the
 *   uploader or `delete` of one key are serialized by a per-key lock, so a newer version is never
 *   removed by the cleanup of an older one. `delete` waits for an in-flight upload of the key to
 *   settle before deleting from the inner store, so the upload cannot resurrect the object.
 * - **Failures.** A failed upload is retried forever with exponential backoff and jitter
 *   (`retry.baseMs` doubling up to `retry.maxMs`; each wait is between half and all of that, see
 *   `_retry.ts`); each failure is counted in {@linkcode WritebackBlockStore.stats}, reported to
 *   `onError`, and keeps its object staged. While the inner store is down, reads of staged objects and new puts keep working from the
 *   staging directory; uploads resume on their next retry once it is back
 *   ({@linkcode WritebackBlockStore.flush} retries at once). Reads of objects that are only in
 *   the inner store, `list` and `delete` fail as the inner store fails. A staged file removed
 *   by someone else is reported to `onError` as `EIO` and forgotten (retrying cannot bring it
 *   back).
 * - **Kill -9.** Nothing is kept only in memory: on {@linkcode WritebackBlockStore.open} the
 *   staging directory is scanned, leftover temporary files (puts that never resolved) are
 *   removed, and every staged object is queued for upload. An object uploaded just before the
 *   kill may be uploaded again (puts are idempotent). After a power cut a staged file removed by
 *   `delete` or by the uploader may reappear (removals are not fsynced) and is uploaded again; it
 *   is then an orphan that no metadata refers to.
 * - **Capacity.** Staged bytes (plus puts being written) never exceed `capacityBytes` (no fixed
 *   cap by default), and the staging directory's filesystem keeps the reserve of its
 *   {@linkcode DiskBudget} free (10% by default). The budget is shared with disk cache
 *   directories on the same filesystem: a put that needs room there first makes the cache delete
 *   clean blocks (they are in the inner store), and the cache leaves the room of waiting puts
 *   free. A put that still does not fit waits for uploads to make room (backpressure), puts in
 *   turn, while uploads succeed; it fails with `ENOSPC`, touching nothing already staged, only
 *   while uploads fail (the inner store is down), when no upload finished for `spaceWaitMs`,
 *   when nothing is staged that could make room, or when the object alone is larger than the
 *   capacity. A disk-full error from the local file system (fuller than the budget's reading
 *   said) waits and tries again the same way, and is `ENOSPC` in the same cases. Objects found at
 *   `open` count even if they exceed the capacity (puts then wait for them to drain).
 * - **Scope.** One process owns a staging directory at a time (the mount's lock ensures it);
 *   staged objects exist only on this machine until uploaded, so another client of the same
 *   volume cannot read them before that. The decorator owns the inner store: `close` closes it.
 *
 * @module
 */

import pLimit, { type LimitFunction } from "p-limit";
import { readRange } from "../core/_file_range.ts";
import { backoffDelay } from "./_retry.ts";
import { encodeKey, type Entry, Staging, type WriteHooks } from "./_writeback_stage.ts";
import type { BlockStore, ListPage, ObjectInfo, StoreLimits } from "../core/block_store.ts";
import type { DiskBudget } from "../core/cache/disk_budget.ts";
import { Errno, FsError } from "../core/errno.ts";
import { DEFAULT_LIST_LIMIT } from "./store_memory.ts";
import { getLog } from "../core/log.ts";

const log = getLog("writeback");

export { WRITEBACK_TEMP_PREFIX } from "./_writeback_stage.ts";

/** Options of {@linkcode WritebackBlockStore.open}. */
export interface WritebackOptions {
  /** The staging directory; created if missing. */
  dir: string;
  /**
   * The most bytes staged at once (a put beyond it waits for uploads). Default: no fixed cap,
   * only the free space of the filesystem (see `budget`).
   */
  capacityBytes?: number;
  /**
   * The free space of the staging directory's filesystem, shared with disk cache directories on
   * it (which then give way to staged writes). Default: a budget of its own keeping 10% free.
   */
  budget?: DiskBudget;
  /** Uploads in flight at most. Default: the inner store's `limits.concurrency`. */
  uploadConcurrency?: number;
  /**
   * Backoff between attempts of a failing upload: `baseMs` (default 200) doubling to `maxMs`
   * (default 10,000), with jitter.
   */
  retry?: { baseMs?: number; maxMs?: number };
  /**
   * How long a put that does not fit waits for room without any upload finishing, before it
   * fails with `ENOSPC`. Default 30,000 ms.
   */
  spaceWaitMs?: number;
  /**
   * Called with every background error (a failed upload attempt, a failed cleanup). Default: a
   * warning on the `["slayerfs", "writeback"]` logger.
   */
  onError?: (error: unknown, key?: string) => void;
  /**
   * Awaited before each upload (`--upload-window`: resolves inside the window); `stop()` turns
   * true when the upload is no longer wanted (deleted, or the store closed).
   */
  uploadGate?: (stop: () => boolean) => Promise<void>;
}

/** Counters of {@linkcode WritebackBlockStore.stats}. */
export interface WritebackStats {
  /** Objects staged and not yet uploaded. */
  stagedObjects: number;
  /** Their bytes. */
  stagedBytes: number;
  /** Uploads in flight. */
  uploading: number;
  /** Uploads that succeeded since open. */
  uploaded: number;
  /** Upload attempts that failed since open. */
  failures: number;
  /** The message of the last failed upload attempt. */
  lastError?: string;
  /** When the oldest block still staged was staged (ms since the epoch); none staged: absent. */
  oldestStagedAt?: number;
}

/** Options of {@linkcode WritebackBlockStore.flush}. */
export interface FlushOptions {
  /** Stops waiting (the flush rejects with the signal's reason); uploads go on. */
  signal?: AbortSignal;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A block store that stages puts on the local disk and uploads them to `inner` in the
 * background. See the module documentation for the guarantees.
 *
 * @example
 * ```ts
 * import { MemoryBlockStore } from "./store_memory.ts";
 * import { WritebackBlockStore } from "./store_writeback.ts";
 * const dir = await Deno.makeTempDir();
 * const inner = new MemoryBlockStore();
 * const store = await WritebackBlockStore.open(inner.share(), { dir, capacityBytes: 1 << 20 });
 * await store.put("chunks/1", new Uint8Array([1, 2, 3])); // on local disk now
 * await store.flush(); // and in the inner store
 * if ((await inner.head("chunks/1"))?.size !== 3) throw new Error("unexpected");
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class WritebackBlockStore implements BlockStore {
  /** The inner store's URL. */
  readonly url: string;
  readonly #inner: BlockStore;
  readonly #staging: Staging;
  /** Uploads in flight at most; FIFO, so uploads start in staging order. */
  readonly #slots: LimitFunction;
  readonly #backoff: { baseMs: number; maxMs: number };
  readonly #onError: (error: unknown, key?: string) => void;
  readonly #gate: ((stop: () => boolean) => Promise<void>) | undefined;
  readonly #writeHooks: WriteHooks = {
    onNew: (entry) => this.#schedule(entry),
    closed: () => this.#closed,
    closedError: () => this.#closedError(),
    healthy: () => this.#healthy,
  };

  /** Upload tasks, started or waiting for a slot. */
  readonly #tasks = new Set<Promise<void>>();
  readonly #sleepers = new Set<() => void>();
  readonly #puts = new Set<Promise<unknown>>();

  #uploading = 0;
  #uploaded = 0;
  #failures = 0;
  #lastError: string | undefined;
  /** Whether the last finished upload attempt succeeded. */
  #healthy = true;

  #closed = false;
  #closing: Promise<void> | undefined;
  #onClose!: () => void;
  readonly #closedSignal = new Promise<void>((resolve) => this.#onClose = resolve);

  private constructor(inner: BlockStore, staging: Staging, opts: WritebackOptions) {
    this.#inner = inner;
    this.url = inner.url;
    this.#staging = staging;
    this.#slots = pLimit(
      Math.max(1, Math.floor(opts.uploadConcurrency ?? inner.limits.concurrency)),
    );
    const baseMs = Math.max(1, opts.retry?.baseMs ?? 200);
    this.#backoff = { baseMs, maxMs: Math.max(baseMs, opts.retry?.maxMs ?? 10_000) };
    this.#onError = opts.onError ??
      ((error, key) => log.warn("Background upload of {key} failed", { key, error }));
    this.#gate = opts.uploadGate;
  }

  /**
   * Opens the staging directory `opts.dir` (creating it) over `inner`, removes leftover
   * temporary files, and queues every object staged by an earlier run for upload.
   */
  static async open(inner: BlockStore, opts: WritebackOptions): Promise<WritebackBlockStore> {
    const capacity = opts.capacityBytes ?? Infinity;
    if (!(capacity > 0)) {
      throw new RangeError(`Writeback capacity "${opts.capacityBytes}" is not a positive number`);
    }
    const dir = opts.dir.length > 1 ? opts.dir.replace(/\/+$/, "") : opts.dir;
    const { staging, found } = await Staging.open(
      dir,
      capacity,
      Math.max(0, opts.spaceWaitMs ?? 30_000),
      opts.budget,
    );
    const store = new WritebackBlockStore(inner, staging, opts);
    for (const entry of found) store.#schedule(entry);
    return store;
  }

  /** The staging directory. */
  get dir(): string {
    return this.#staging.dir;
  }

  /** The most bytes staged at once (`Infinity`: no fixed cap). */
  get capacityBytes(): number {
    return this.#staging.capacityBytes;
  }

  /** The inner store's limits. */
  get limits(): StoreLimits {
    return this.#inner.limits;
  }

  /** Counters for monitoring and tests. */
  stats(): WritebackStats {
    const stats: WritebackStats = {
      stagedObjects: this.#staging.entries.size,
      stagedBytes: this.#staging.stagedBytes,
      uploading: this.#uploading,
      uploaded: this.#uploaded,
      failures: this.#failures,
    };
    if (this.#lastError !== undefined) stats.lastError = this.#lastError;
    let oldest = Infinity;
    for (const e of this.#staging.entries.values()) oldest = Math.min(oldest, e.mtime);
    if (oldest !== Infinity) stats.oldestStagedAt = oldest;
    return stats;
  }

  /**
   * Stages `data` under `key` durably on the local disk and queues its upload. Rejects with an
   * `ENOSPC` {@linkcode FsError} when the staging area is full (see the module documentation).
   */
  put(key: string, data: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    const name = encodeKey(key);
    const done = name === undefined ? this.#inner.put(key, data) : this.#stage(key, name, data);
    this.#puts.add(done);
    const forget = () => this.#puts.delete(done);
    done.then(forget, forget);
    return done;
  }

  async #stage(key: string, name: string, data: Uint8Array): Promise<void> {
    await this.#staging.write(key, name, data, this.#writeHooks);
    await this.#staging.syncDir();
  }

  /** Reads from the staged copy if there is one, else from the inner store. */
  async get(key: string, offset = 0, length?: number, into?: Uint8Array): Promise<Uint8Array> {
    const entry = this.#staging.entries.get(key);
    if (entry !== undefined) {
      try {
        return await readRange(entry.path, offset, length);
      } catch (err) {
        // Uploaded (or deleted) and removed since we looked: the inner store has the answer.
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    return await this.#inner.get(key, offset, length, into);
  }

  /** The staged object's size if staged, else the inner store's answer. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    const entry = this.#staging.entries.get(key);
    if (entry !== undefined) return { key, size: entry.size, mtime: entry.mtime };
    return await this.#inner.head(key);
  }

  /**
   * Removes staged copies (cancelling their uploads), waits for uploads of these keys already in
   * flight, then deletes the keys from the inner store.
   */
  async delete(keys: readonly string[]): Promise<void> {
    const inflight: Promise<void>[] = [];
    await Promise.all(keys.map(async (key) => {
      if (!this.#staging.entries.has(key)) return;
      await this.#staging.withKey(key, async () => {
        const entry = this.#staging.entries.get(key);
        if (entry === undefined) return;
        // In one synchronous step: the uploader checks membership right before each inner put.
        this.#staging.forget(entry);
        if (entry.attempt !== undefined) inflight.push(entry.attempt);
        entry.wake?.();
        await this.#staging.removeFile(entry);
      });
    }));
    await Promise.all(inflight);
    await this.#inner.delete(keys);
  }

  /** Lists the inner store's keys merged with the staged ones (staged sizes win). */
  async list(prefix: string, options?: { startAfter?: string; limit?: number }): Promise<ListPage> {
    const startAfter = options?.startAfter;
    const limit = options?.limit ?? DEFAULT_LIST_LIMIT;
    // Taken before listing the inner store: an object uploaded (and unstaged) meanwhile is in
    // this snapshot or in the inner listing.
    const staged: ObjectInfo[] = [];
    for (const e of this.#staging.entries.values()) {
      if (e.key.startsWith(prefix) && (startAfter === undefined || e.key > startAfter)) {
        staged.push({ key: e.key, size: e.size, mtime: e.mtime });
      }
    }
    const page = await this.#inner.list(prefix, options);
    if (staged.length === 0) return page;
    // Past the last key of a truncated inner page lie inner keys we have not seen.
    const last = page.truncated ? page.objects.at(-1)?.key : undefined;
    const merged = new Map<string, ObjectInfo>();
    for (const o of page.objects) merged.set(o.key, o);
    for (const o of staged) if (last === undefined || o.key <= last) merged.set(o.key, o);
    const keys = [...merged.keys()].sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
    return {
      objects: keys.slice(0, limit).map((key) => merged.get(key)!),
      truncated: page.truncated || keys.length > limit,
    };
  }

  /**
   * Resolves once every object staged before the call is uploaded (or deleted). Retries waiting
   * uploads at once. Rejects if the store is closed first or `signal` aborts.
   */
  async flush(options: FlushOptions = {}): Promise<void> {
    const pending = [...this.#staging.entries.values()].map((e) => e.settled);
    if (pending.length === 0) return;
    if (this.#closed) throw this.#closedError();
    for (const wake of [...this.#sleepers]) wake();
    const signal = options.signal;
    signal?.throwIfAborted();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<"aborted">((resolve) => {
      onAbort = () => resolve("aborted");
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    try {
      const outcome = await Promise.race([
        Promise.all(pending).then(() => "done" as const),
        this.#closedSignal.then(() => "closed" as const),
        aborted,
      ]);
      if (outcome === "closed") throw this.#closedError();
      if (outcome === "aborted") throw signal!.reason;
    } finally {
      if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Stops the uploader and closes the inner store (which may abort uploads in flight), then
   * waits for pending puts and uploads to settle. Staged objects stay on disk for the next
   * {@linkcode WritebackBlockStore.open}; call {@linkcode WritebackBlockStore.flush} first to
   * upload them now. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#onClose();
      for (const wake of [...this.#sleepers]) wake();
      this.#staging.notifySpace();
      // Closing the inner store first aborts uploads in flight (S3 requests) instead of waiting
      // out their timeouts; their objects stay staged.
      const inner = this.#inner.close();
      await Promise.allSettled([...this.#puts, ...this.#tasks]);
      this.#staging.close();
      await inner;
    })();
    return this.#closing;
  }

  /** Same as {@linkcode WritebackBlockStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #closedError(): FsError {
    return new FsError(Errno.EIO, `Writeback store "${this.dir}" is closed`);
  }

  /** Queues the upload of `entry`; uploads start in the order they are queued. */
  #schedule(entry: Entry): void {
    const task: Promise<void> = this.#slots(() => {
      // Closed, or deleted while queued: nothing to do.
      if (this.#closed || !this.#staging.isCurrent(entry)) return Promise.resolve();
      return this.#upload(entry).catch((err) => this.#onError(err, entry.key));
    }).finally(() => this.#tasks.delete(task));
    this.#tasks.add(task);
  }

  /** Uploads `entry` until its current version is in the inner store, it is deleted, or close. */
  async #upload(entry: Entry): Promise<void> {
    const staging = this.#staging;
    const current = () => !this.#closed && staging.isCurrent(entry);
    let failed = 0;
    while (current()) {
      if (this.#gate) {
        await this.#gate(() => !current());
        if (!current()) return;
      }
      const version = entry.version;
      try {
        let data: Uint8Array;
        try {
          data = await readRange(entry.path, 0);
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
          if (!current()) return; // deleted meanwhile
          // Removed behind our back (the file of a current entry is only removed with it): the
          // bytes are gone, so retrying cannot help. Report it and stop tracking the entry.
          await staging.withKey(entry.key, () => {
            if (!staging.isCurrent(entry) || entry.version !== version) return Promise.resolve();
            staging.forget(entry);
            entry.settle();
            staging.notifySpace();
            const lost = new FsError(
              Errno.EIO,
              `Staged object "${entry.key}" vanished from "${entry.path}"`,
              { cause: err },
            );
            log.error("{error}", { error: lost });
            this.#onError(lost, entry.key);
            return Promise.resolve();
          });
          continue;
        }
        if (!current()) return; // checked in the same step as starting the put (see delete)
        this.#uploading++;
        const attempt = this.#inner.put(entry.key, data);
        entry.attempt = attempt.then(() => {}, () => {});
        try {
          await attempt;
        } finally {
          this.#uploading--;
          entry.attempt = undefined;
        }
      } catch (err) {
        if (this.#closed) return; // aborted by close(); the object stays staged
        failed++;
        this.#failures++;
        this.#lastError = describe(err);
        if (this.#healthy) {
          // Once per outage; every failure still goes to onError (the daemon logs it at debug).
          log.warn('Upload of "{key}" to {url} failed, retrying until it succeeds: {reason}', {
            key: entry.key,
            url: this.url,
            reason: this.#lastError,
          });
        }
        this.#healthy = false;
        staging.notifySpace(); // puts waiting for room fail fast during an outage
        this.#onError(err, entry.key);
        if (!current()) return;
        await this.#sleep(entry, backoffDelay(failed, this.#backoff));
        continue;
      }
      this.#uploaded++;
      if (!this.#healthy) log.info("Uploads to {url} succeed again", { url: this.url });
      this.#healthy = true;
      failed = 0;
      await staging.withKey(entry.key, async () => {
        if (!staging.isCurrent(entry) || entry.version !== version) return;
        staging.forget(entry);
        // A leftover file is uploaded again by the next open: harmless.
        await staging.removeFile(entry).catch((err) => this.#onError(err, entry.key));
      });
    }
  }

  #sleep(entry: Entry, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        if (entry.wake === wake) entry.wake = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      entry.wake = wake;
      this.#sleepers.add(wake);
    });
  }
}
