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
 *   Key encoding is flat: every char outside `[A-Za-z0-9_-]` becomes `%XX` (`%uXXXX` above
 *   255), so `chunks/0/1/7_0_4096` is staged as `chunks%2F0%2F1%2F7_0_4096`. A key whose
 *   encoding would exceed a file name (255 bytes) is not staged: its `put` writes through to the
 *   inner store.
 * - **Ordering.** Uploads run in staging order (oldest first after a restart), at most
 *   `uploadConcurrency` at a time. A staged file is removed only after the inner `put` of that
 *   exact version succeeded: a `put` of the same key while its upload is in flight bumps the
 *   object's version and the uploader uploads again. Renames by `put` and removals by the
 *   uploader or `delete` of one key are serialized by a per-key lock, so a newer version is never
 *   removed by the cleanup of an older one. `delete` waits for an in-flight upload of the key to
 *   settle before deleting from the inner store, so the upload cannot resurrect the object.
 * - **Failures.** A failed upload is retried forever with exponential backoff and jitter
 *   (`retry.baseMs` doubling up to `retry.maxMs`; each wait is between half and all of that); each failure is counted in
 *   {@linkcode WritebackBlockStore.stats}, reported to `onError`, and keeps its object staged.
 *   While the inner store is down, reads of staged objects and new puts keep working from the
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
 * - **Capacity.** Staged bytes (plus puts being written) never exceed `capacityBytes`. A put
 *   that does not fit waits for uploads to make room while they succeed, at most `spaceWaitMs`;
 *   while uploads fail (the inner store is down), after that wait, or when the object alone is
 *   larger than the capacity, it fails with `ENOSPC` and nothing already staged is touched. A
 *   disk-full error from the local file system is also `ENOSPC`. Objects found at `open` count
 *   even if they exceed the capacity (puts then wait for them to drain).
 * - **Scope.** One process owns a staging directory at a time (the mount's lock ensures it);
 *   staged objects exist only on this machine until uploaded, so another client of the same
 *   volume cannot read them before that. The decorator owns the inner store: `close` closes it.
 *
 * @module
 */

import { readRange } from "./_file_range.ts";
import type { BlockStore, ListPage, ObjectInfo, StoreLimits } from "../core/block_store.ts";
import { Errno, FsError } from "../core/errno.ts";
import { DEFAULT_LIST_LIMIT } from "./store_memory.ts";

/** The name prefix of temporary files in the staging directory; `open` removes them. */
export const WRITEBACK_TEMP_PREFIX = ".tmp-";

/** The longest staged file name (Linux `NAME_MAX`). */
const NAME_MAX = 255;

/** Options of {@linkcode WritebackBlockStore.open}. */
export interface WritebackOptions {
  /** The staging directory; created if missing. */
  dir: string;
  /** The most bytes staged at once; a put beyond it fails with `ENOSPC`. */
  capacityBytes: number;
  /** Uploads in flight at most. Default: the inner store's `limits.concurrency`. */
  uploadConcurrency?: number;
  /** Backoff between attempts of a failing upload: `baseMs` (default 200) doubling to `maxMs`
   * (default 10,000), with jitter. */
  retry?: { baseMs?: number; maxMs?: number };
  /** How long a put that does not fit waits for uploads to make room. Default 30,000 ms. */
  spaceWaitMs?: number;
  /** Called with every background error (a failed upload attempt, a failed cleanup). */
  onError?: (error: unknown, key?: string) => void;
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
}

/** Options of {@linkcode WritebackBlockStore.flush}. */
export interface FlushOptions {
  /** Stops waiting (the flush rejects with the signal's reason); uploads go on. */
  signal?: AbortSignal;
}

/** One staged key. The object stays the same across overwrites; `version` counts them. */
interface Entry {
  readonly key: string;
  readonly path: string;
  size: number;
  /** When this version was staged (ms since the epoch). */
  mtime: number;
  version: number;
  /** The inner `put` in flight for this entry (never rejects). */
  attempt: Promise<void> | undefined;
  /** Ends the uploader's backoff sleep early. */
  wake: (() => void) | undefined;
  /** Resolves when the entry leaves the staging area (uploaded or deleted). */
  readonly settled: Promise<void>;
  readonly settle: () => void;
}

/** Encodes a key as a flat file name; `undefined` if the name would be too long. */
function encodeKey(key: string): string | undefined {
  let out = "";
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (
      (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
      c === 0x5f || c === 0x2d
    ) {
      out += key[i];
    } else if (c <= 0xff) {
      out += "%" + c.toString(16).toUpperCase().padStart(2, "0");
    } else {
      out += "%u" + c.toString(16).toUpperCase().padStart(4, "0");
    }
    if (out.length > NAME_MAX) return undefined;
  }
  return out === "" ? undefined : out;
}

/** Decodes a staged file name; `undefined` if it is not one {@linkcode encodeKey} makes. */
function decodeKey(name: string): string | undefined {
  let out = "";
  for (let i = 0; i < name.length;) {
    if (name[i] !== "%") {
      if (!/[A-Za-z0-9_-]/.test(name[i]!)) return undefined;
      out += name[i++];
      continue;
    }
    const wide = name[i + 1] === "u";
    const hex = wide ? name.slice(i + 2, i + 6) : name.slice(i + 1, i + 3);
    if (!/^[0-9A-F]+$/.test(hex) || hex.length !== (wide ? 4 : 2)) return undefined;
    out += String.fromCharCode(parseInt(hex, 16));
    i += wide ? 6 : 3;
  }
  return encodeKey(out) === name ? out : undefined;
}

function isDiskFull(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return e?.code === "ENOSPC" ||
    (typeof e?.message === "string" && /No space left/.test(e.message));
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
  /** The staging directory. */
  readonly dir: string;
  /** The most bytes staged at once. */
  readonly capacityBytes: number;
  readonly #inner: BlockStore;
  readonly #dirFile: Deno.FsFile;
  readonly #concurrency: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #spaceWaitMs: number;
  readonly #onError: (error: unknown, key?: string) => void;

  /** Staged keys. */
  readonly #entries = new Map<string, Entry>();
  /** Entries waiting for an uploader slot, oldest first. */
  #queue: Entry[] = [];
  #queueHead = 0;
  readonly #tasks = new Set<Promise<void>>();
  readonly #sleepers = new Set<() => void>();
  readonly #keyLocks = new Map<string, Promise<void>>();
  readonly #puts = new Set<Promise<unknown>>();
  #spaceWaiters: (() => void)[] = [];

  #stagedBytes = 0;
  #reservedBytes = 0;
  #uploading = 0;
  #uploaded = 0;
  #failures = 0;
  #lastError: string | undefined;
  /** Whether the last finished upload attempt succeeded. */
  #healthy = true;

  #syncRunning: Promise<void> | undefined;
  #syncNext: Promise<void> | undefined;

  #closed = false;
  #closing: Promise<void> | undefined;
  #onClose!: () => void;
  readonly #closedSignal = new Promise<void>((resolve) => this.#onClose = resolve);

  private constructor(
    inner: BlockStore,
    dir: string,
    dirFile: Deno.FsFile,
    opts: WritebackOptions,
  ) {
    this.#inner = inner;
    this.url = inner.url;
    this.dir = dir;
    this.#dirFile = dirFile;
    this.capacityBytes = opts.capacityBytes;
    this.#concurrency = Math.max(1, Math.floor(opts.uploadConcurrency ?? inner.limits.concurrency));
    this.#baseMs = Math.max(1, opts.retry?.baseMs ?? 200);
    this.#maxMs = Math.max(this.#baseMs, opts.retry?.maxMs ?? 10_000);
    this.#spaceWaitMs = Math.max(0, opts.spaceWaitMs ?? 30_000);
    this.#onError = opts.onError ?? (() => {});
  }

  /**
   * Opens the staging directory `opts.dir` (creating it) over `inner`, removes leftover
   * temporary files, and queues every object staged by an earlier run for upload.
   */
  static async open(inner: BlockStore, opts: WritebackOptions): Promise<WritebackBlockStore> {
    if (!(opts.capacityBytes > 0)) {
      throw new RangeError(`Writeback capacity "${opts.capacityBytes}" is not a positive number`);
    }
    const dir = opts.dir.length > 1 ? opts.dir.replace(/\/+$/, "") : opts.dir;
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (cause) {
      throw new Error(`Cannot create writeback directory "${dir}"`, { cause });
    }
    const found: { key: string; name: string; size: number; mtime: number }[] = [];
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile) continue;
      if (e.name.startsWith(WRITEBACK_TEMP_PREFIX)) {
        await Deno.remove(`${dir}/${e.name}`).catch(() => {});
        continue;
      }
      const key = decodeKey(e.name);
      if (key === undefined) continue;
      const info = await Deno.stat(`${dir}/${e.name}`);
      found.push({ key, name: e.name, size: info.size, mtime: info.mtime?.getTime() ?? 0 });
    }
    found.sort((a, b) => a.mtime - b.mtime || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const dirFile = await Deno.open(dir, { read: true });
    const store = new WritebackBlockStore(inner, dir, dirFile, opts);
    for (const f of found) {
      const entry = store.#newEntry(f.key, `${dir}/${f.name}`, f.size, f.mtime);
      store.#stagedBytes += f.size;
      store.#queue.push(entry);
    }
    store.#pump();
    return store;
  }

  /** The inner store's limits. */
  get limits(): StoreLimits {
    return this.#inner.limits;
  }

  /** Counters for monitoring and tests. */
  stats(): WritebackStats {
    const stats: WritebackStats = {
      stagedObjects: this.#entries.size,
      stagedBytes: this.#stagedBytes,
      uploading: this.#uploading,
      uploaded: this.#uploaded,
      failures: this.#failures,
    };
    if (this.#lastError !== undefined) stats.lastError = this.#lastError;
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
    const size = data.length;
    await this.#reserve(size);
    const tmp = `${this.dir}/${WRITEBACK_TEMP_PREFIX}${crypto.randomUUID()}`;
    const path = `${this.dir}/${name}`;
    let renamed = false;
    try {
      {
        using file = await Deno.open(tmp, { write: true, createNew: true });
        for (let done = 0; done < size;) done += await file.write(data.subarray(done));
        await file.syncData();
      }
      await this.#withKey(key, async () => {
        await Deno.rename(tmp, path);
        renamed = true;
        const entry = this.#entries.get(key);
        if (entry !== undefined) {
          this.#stagedBytes += size - entry.size;
          entry.size = size;
          entry.mtime = Date.now();
          entry.version++; // its uploader (queued, uploading or sleeping) uploads this version
        } else {
          this.#stagedBytes += size;
          this.#queue.push(this.#newEntry(key, path, size));
        }
      });
    } catch (err) {
      if (!renamed) await Deno.remove(tmp).catch(() => {});
      if (isDiskFull(err)) {
        throw new FsError(Errno.ENOSPC, `No space left in writeback directory "${this.dir}"`, {
          cause: err,
        });
      }
      throw err;
    } finally {
      this.#reservedBytes -= size;
      this.#notifySpace();
    }
    this.#pump();
    await this.#syncDir();
  }

  /** Reads from the staged copy if there is one, else from the inner store. */
  async get(key: string, offset = 0, length?: number): Promise<Uint8Array> {
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      try {
        return await readRange(entry.path, offset, length);
      } catch (err) {
        // Uploaded (or deleted) and removed since we looked: the inner store has the answer.
        if (!(err instanceof Deno.errors.NotFound)) throw err;
      }
    }
    return await this.#inner.get(key, offset, length);
  }

  /** The staged object's size if staged, else the inner store's answer. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    const entry = this.#entries.get(key);
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
      if (!this.#entries.has(key)) return;
      await this.#withKey(key, async () => {
        const entry = this.#entries.get(key);
        if (entry === undefined) return;
        // In one synchronous step: the uploader checks membership right before each inner put.
        this.#entries.delete(key);
        this.#stagedBytes -= entry.size;
        if (entry.attempt !== undefined) inflight.push(entry.attempt);
        entry.wake?.();
        try {
          await Deno.remove(entry.path);
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
        } finally {
          entry.settle();
          this.#notifySpace();
        }
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
    for (const e of this.#entries.values()) {
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
    const pending = [...this.#entries.values()].map((e) => e.settled);
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
      this.#notifySpace();
      // Closing the inner store first aborts uploads in flight (S3 requests) instead of waiting
      // out their timeouts; their objects stay staged.
      const inner = this.#inner.close();
      await Promise.allSettled([...this.#puts, ...this.#tasks]);
      this.#dirFile.close();
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

  #newEntry(key: string, path: string, size: number, mtime = Date.now()): Entry {
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => settle = resolve);
    const entry: Entry = {
      key,
      path,
      size,
      mtime,
      version: 0,
      attempt: undefined,
      wake: undefined,
      settled,
      settle,
    };
    this.#entries.set(key, entry);
    return entry;
  }

  /** Runs `fn` while holding the lock of `key`. */
  async #withKey<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#keyLocks.get(key);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => release = resolve);
    this.#keyLocks.set(key, mine);
    if (previous !== undefined) await previous;
    try {
      return await fn();
    } finally {
      if (this.#keyLocks.get(key) === mine) this.#keyLocks.delete(key);
      release();
    }
  }

  /** Fsyncs the directory; concurrent callers share the next fsync that starts after they ask. */
  #syncDir(): Promise<void> {
    this.#syncNext ??= (async () => {
      await this.#syncRunning?.catch(() => {});
      this.#syncNext = undefined;
      const run = this.#dirFile.sync();
      this.#syncRunning = run;
      try {
        await run;
      } finally {
        if (this.#syncRunning === run) this.#syncRunning = undefined;
      }
    })();
    return this.#syncNext;
  }

  /** Reserves room for `size` bytes, waiting for uploads to make room while they succeed. */
  async #reserve(size: number): Promise<void> {
    const full = () =>
      new FsError(
        Errno.ENOSPC,
        `Writeback directory "${this.dir}" is full: ${this.#stagedBytes} of ${this.capacityBytes} bytes staged, ${size} more asked`,
      );
    if (size > this.capacityBytes) throw full();
    let deadline: number | undefined;
    while (this.#stagedBytes + this.#reservedBytes + size > this.capacityBytes) {
      if (this.#closed) throw this.#closedError();
      if (!this.#healthy) throw full();
      deadline ??= Date.now() + this.#spaceWaitMs;
      const left = deadline - Date.now();
      if (left <= 0) throw full();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(wake, left);
        function wake() {
          clearTimeout(timer);
          resolve();
        }
        this.#spaceWaiters.push(wake);
      });
    }
    this.#reservedBytes += size;
  }

  #notifySpace(): void {
    const waiters = this.#spaceWaiters;
    this.#spaceWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Starts uploads while slots are free. */
  #pump(): void {
    while (!this.#closed && this.#tasks.size < this.#concurrency) {
      if (this.#queueHead >= this.#queue.length) {
        this.#queue = [];
        this.#queueHead = 0;
        return;
      }
      const entry = this.#queue[this.#queueHead++]!;
      if (this.#entries.get(entry.key) !== entry) continue; // deleted while queued
      const task: Promise<void> = this.#upload(entry).catch((err) => this.#onError(err, entry.key))
        .finally(() => {
          this.#tasks.delete(task);
          this.#pump();
        });
      this.#tasks.add(task);
    }
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  /** Uploads `entry` until its current version is in the inner store, it is deleted, or close. */
  async #upload(entry: Entry): Promise<void> {
    const current = () => !this.#closed && this.#entries.get(entry.key) === entry;
    let failed = 0;
    while (current()) {
      const version = entry.version;
      try {
        let data: Uint8Array;
        try {
          data = await Deno.readFile(entry.path);
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
          if (!current()) return; // deleted meanwhile
          // Removed behind our back (the file of a current entry is only removed with it): the
          // bytes are gone, so retrying cannot help. Report it and stop tracking the entry.
          await this.#withKey(entry.key, () => {
            if (this.#entries.get(entry.key) !== entry || entry.version !== version) {
              return Promise.resolve();
            }
            this.#entries.delete(entry.key);
            this.#stagedBytes -= entry.size;
            entry.settle();
            this.#notifySpace();
            this.#onError(
              new FsError(Errno.EIO, `Staged object "${entry.key}" vanished from "${entry.path}"`, {
                cause: err,
              }),
              entry.key,
            );
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
        this.#healthy = false;
        this.#notifySpace(); // puts waiting for room fail fast during an outage
        this.#onError(err, entry.key);
        if (!current()) return;
        await this.#sleep(entry, this.#backoff(failed));
        continue;
      }
      this.#uploaded++;
      this.#healthy = true;
      failed = 0;
      await this.#withKey(entry.key, async () => {
        if (this.#entries.get(entry.key) !== entry || entry.version !== version) return;
        this.#entries.delete(entry.key);
        this.#stagedBytes -= entry.size;
        try {
          await Deno.remove(entry.path);
        } catch (err) {
          // A leftover file is uploaded again by the next open: harmless.
          if (!(err instanceof Deno.errors.NotFound)) this.#onError(err, entry.key);
        } finally {
          entry.settle();
          this.#notifySpace();
        }
      });
    }
  }

  #backoff(failed: number): number {
    const cap = Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(failed - 1, 30));
    return cap / 2 + Math.random() * cap / 2;
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
