/**
 * The staging directory of a {@linkcode WritebackBlockStore} (private to `store_writeback.ts`):
 * which keys are staged, their bytes against the capacity, durable writes of staged files, the
 * per-key locks, the shared directory fsync, and the wait for room (the staging capacity and the
 * free space of the filesystem, shared with a disk cache through a `DiskBudget`). The uploader
 * lives in `store_writeback.ts`.
 *
 * Key encoding is flat: every char outside `[A-Za-z0-9_-]` becomes `%XX` (`%uXXXX` above 255),
 * so `chunks/0/1/7_0_4096` is staged as `chunks%2F0%2F1%2F7_0_4096`.
 *
 * @module
 */

import pLimit from "p-limit";
import { DiskBudget } from "../core/cache/disk_budget.ts";
import { Errno, FsError } from "../core/errno.ts";
import { DIR_LOCK_NAME, makePrivateDir, PRIVATE_FILE_MODE } from "../core/_private_fs.ts";

/** The name prefix of temporary files in the staging directory; `open` removes them. */
export const WRITEBACK_TEMP_PREFIX = ".tmp-";

/** The longest staged file name (Linux `NAME_MAX`). */
const NAME_MAX = 255;

/** One staged key. The object stays the same across overwrites; `version` counts them. */
export interface Entry {
  /** The store's key. */
  readonly key: string;
  /** The staged file. */
  readonly path: string;
  /** The staged version's size. */
  size: number;
  /** When this version was staged (ms since the epoch). */
  mtime: number;
  /** Bumped by every put of the key while staged. */
  version: number;
  /** The inner `put` in flight for this entry (never rejects). */
  attempt: Promise<void> | undefined;
  /** Ends the uploader's backoff sleep early. */
  wake: (() => void) | undefined;
  /** Resolves when the entry leaves the staging area (uploaded or deleted). */
  readonly settled: Promise<void>;
  /** Resolves {@linkcode Entry.settled}. */
  readonly settle: () => void;
}

/** Encodes a key as a flat file name; `undefined` if the name would be too long. */
export function encodeKey(key: string): string | undefined {
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
export function decodeKey(name: string): string | undefined {
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

/** The filesystem refused a staged write (its `ENOSPC`, not the budget's). */
class DiskFullError extends FsError {}

/** What {@linkcode Staging.write} asks of its store. */
export interface WriteHooks {
  /** Gets the entry of a key that was not staged yet, inside the key's lock. */
  onNew(entry: Entry): void;
  /** Whether the store is closed (a waiting put then fails with `closedError`). */
  closed(): boolean;
  /** The error of a put into a closed store. */
  closedError(): Error;
  /** Whether the last upload attempt succeeded (else a put that does not fit fails at once). */
  healthy(): boolean;
}

/** The staged objects of one staging directory. */
export class Staging {
  /** The staging directory. */
  readonly dir: string;
  /** The most bytes staged at once (`Infinity`: only the free space limits them). */
  readonly capacityBytes: number;
  /** The free space of the staging directory's filesystem. */
  readonly budget: DiskBudget;
  /** Staged keys. */
  readonly entries = new Map<string, Entry>();
  /** The bytes of the staged objects. */
  stagedBytes = 0;
  #reservedBytes = 0;
  /** Counts the objects that left the staging area: a put waiting for room sees progress. */
  #left = 0;
  /** Puts wait for room one at a time, in order. */
  readonly #roomTurn = pLimit(1);
  readonly #dirFile: Deno.FsFile;
  readonly #spaceWaitMs: number;
  readonly #keyLocks = new Map<string, Promise<void>>();
  #spaceWaiters: (() => void)[] = [];
  #syncRunning: Promise<void> | undefined;
  #syncNext: Promise<void> | undefined;

  private constructor(
    dir: string,
    dirFile: Deno.FsFile,
    capacityBytes: number,
    spaceWaitMs: number,
    budget: DiskBudget,
  ) {
    this.dir = dir;
    this.#dirFile = dirFile;
    this.capacityBytes = capacityBytes;
    this.budget = budget;
    this.#spaceWaitMs = spaceWaitMs;
  }

  /**
   * Opens `dir` (creating it), removes leftover temporary files, and stages every object found,
   * oldest first; returns the staging area and those entries in that order. Without a `budget`
   * the directory gets one of its own (keeping 10% of its filesystem free).
   */
  static async open(
    dir: string,
    capacityBytes: number,
    spaceWaitMs: number,
    budget: DiskBudget = new DiskBudget(dir),
  ): Promise<{ staging: Staging; found: Entry[] }> {
    try {
      await makePrivateDir(
        dir,
        (name) =>
          name.startsWith(WRITEBACK_TEMP_PREFIX) || !!decodeKey(name) || name === DIR_LOCK_NAME,
      );
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
      if (info.mode! & 0o077) await Deno.chmod(`${dir}/${e.name}`, PRIVATE_FILE_MODE);
      found.push({ key, name: e.name, size: info.size, mtime: info.mtime?.getTime() ?? 0 });
    }
    found.sort((a, b) => a.mtime - b.mtime || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const dirFile = await Deno.open(dir, { read: true });
    const staging = new Staging(dir, dirFile, capacityBytes, spaceWaitMs, budget);
    const entries = found.map((f) => {
      staging.stagedBytes += f.size;
      return staging.#newEntry(f.key, `${dir}/${f.name}`, f.size, f.mtime);
    });
    return { staging, found: entries };
  }

  /** Whether `entry` is still the staged entry of its key. */
  isCurrent(entry: Entry): boolean {
    return this.entries.get(entry.key) === entry;
  }

  /** Stops tracking `entry` (its file is the caller's to remove). */
  forget(entry: Entry): void {
    this.entries.delete(entry.key);
    this.stagedBytes -= entry.size;
    this.#left++;
  }

  /**
   * Removes the file of an entry just forgotten (a missing file is fine), then settles the entry
   * and wakes the puts waiting for room.
   */
  async removeFile(entry: Entry): Promise<void> {
    try {
      await Deno.remove(entry.path);
      this.budget.used(-entry.size);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    } finally {
      entry.settle();
      this.notifySpace();
    }
  }

  /**
   * Writes `data` durably as the staged file `name` of `key` (temporary file, fsync, rename
   * under the key's lock). Waits for room (see {@linkcode WriteHooks.healthy}) while uploads
   * succeed, and rejects with `ENOSPC` when there is none. The caller then calls {@linkcode Staging.syncDir} to make the rename durable.
   *
   * The filesystem may be fuller than the budget counted (its reading is up to `ttlMs` old, and
   * others write there too): a write it refuses with `ENOSPC` while uploads succeed and something
   * is staged waits for the next object to leave, then tries again with a fresh reading, as a put
   * that does not fit does (`small_disk_test.ts` once failed a 300 MiB `dd` that way).
   */
  async write(key: string, name: string, data: Uint8Array, hooks: WriteHooks): Promise<void> {
    for (;;) {
      const left = this.#left;
      try {
        return await this.#writeOnce(key, name, data, hooks);
      } catch (err) {
        if (
          !(err instanceof DiskFullError) || !hooks.healthy() || hooks.closed() ||
          this.stagedBytes === 0
        ) throw err;
        if (!await this.#progress(left)) throw err;
        this.budget.refresh();
      }
    }
  }

  /** Resolves at the next {@linkcode notifySpace}, or after `ms`. */
  #spaceOrTimeout(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(wake, ms);
      function wake() {
        clearTimeout(timer);
        resolve();
      }
      this.#spaceWaiters.push(wake);
    });
  }

  /** Waits up to `spaceWaitMs` for an object to leave after `left` had; whether one did. */
  async #progress(left: number): Promise<boolean> {
    const deadline = Date.now() + this.#spaceWaitMs;
    while (this.#left === left) {
      const wait = deadline - Date.now();
      if (wait <= 0) return false;
      await this.#spaceOrTimeout(wait);
    }
    return true;
  }

  async #writeOnce(key: string, name: string, data: Uint8Array, hooks: WriteHooks): Promise<void> {
    const size = data.length;
    await this.#reserve(size, hooks);
    const tmp = `${this.dir}/${WRITEBACK_TEMP_PREFIX}${crypto.randomUUID()}`;
    const path = `${this.dir}/${name}`;
    let renamed = false;
    try {
      {
        using file = await Deno.open(tmp, {
          write: true,
          createNew: true,
          mode: PRIVATE_FILE_MODE,
        });
        for (let done = 0; done < size;) done += await file.write(data.subarray(done));
        await file.syncData();
      }
      await this.withKey(key, async () => {
        await Deno.rename(tmp, path);
        renamed = true;
        const entry = this.entries.get(key);
        if (entry !== undefined) {
          this.budget.used(-entry.size); // the older version's file is replaced
          this.stagedBytes += size - entry.size;
          entry.size = size;
          entry.mtime = Date.now();
          entry.version++; // its uploader (queued, uploading or sleeping) uploads this version
        } else {
          this.stagedBytes += size;
          hooks.onNew(this.#newEntry(key, path, size));
        }
      });
    } catch (err) {
      if (!renamed) await Deno.remove(tmp).catch(() => {});
      if (isDiskFull(err)) {
        throw new DiskFullError(
          Errno.ENOSPC,
          `No space left in writeback directory "${this.dir}"`,
          { cause: err },
        );
      }
      throw err;
    } finally {
      this.#reservedBytes -= size;
      this.budget.release(size, renamed);
      this.notifySpace();
    }
  }

  /** Runs `fn` while holding the lock of `key`. */
  async withKey<T>(key: string, fn: () => Promise<T>): Promise<T> {
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
  syncDir(): Promise<void> {
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

  /** Wakes the puts waiting for room, to look again. */
  notifySpace(): void {
    const waiters = this.#spaceWaiters;
    this.#spaceWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Closes the directory handle. */
  close(): void {
    this.#dirFile.close();
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
    this.entries.set(key, entry);
    return entry;
  }

  /**
   * Reserves room for `size` bytes under the capacity and in the budget of the filesystem (which
   * may take it from a disk cache there). Without room, waits for uploads to make some while they
   * succeed, for at most `spaceWaitMs` without any object leaving; puts wait in turn, in order.
   */
  #reserve(size: number, hooks: WriteHooks): Promise<void> {
    const full = (why: string) =>
      new FsError(
        Errno.ENOSPC,
        `Writeback directory "${this.dir}" is full: ${why}, ${this.stagedBytes} bytes staged, ${size} more asked`,
      );
    if (size > this.capacityBytes) throw full(`the capacity is ${this.capacityBytes} bytes`);
    return this.#roomTurn(async () => {
      this.budget.wait(size);
      try {
        let left = this.#left;
        let deadline: number | undefined;
        for (;;) {
          if (hooks.closed()) throw hooks.closedError();
          const fits = this.stagedBytes + this.#reservedBytes + size <= this.capacityBytes;
          if (fits && await this.budget.claim(size)) break;
          const why = fits ? "no room left on its filesystem" : "its capacity is reached";
          // Only uploads can make room now: none will while they fail, or with nothing staged.
          if (!hooks.healthy() || this.stagedBytes + this.#reservedBytes === 0) throw full(why);
          if (this.#left !== left) {
            left = this.#left;
            deadline = undefined;
          }
          deadline ??= Date.now() + this.#spaceWaitMs;
          const wait = deadline - Date.now();
          if (wait <= 0) throw full(`${why} and no upload finished for ${this.#spaceWaitMs} ms`);
          await this.#spaceOrTimeout(wait);
        }
        this.#reservedBytes += size;
      } finally {
        this.budget.unwait(size);
      }
    });
  }
}
