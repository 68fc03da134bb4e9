/**
 * `FileBlockStore`: the `file:///dir` block store, one file per object under a directory.
 *
 * Decisions:
 * - Key `a/b/c` is the file `DIR/a/b/c`; parent directories are made on first use and
 *   remembered. Keys must be relative paths without empty, `.` or `..` segments, and no key may
 *   be a "directory" of another (`a` and `a/b` cannot both exist) — the core's keys never are.
 * - `put` writes a temporary file in the target directory and renames it over the key, so a
 *   reader (or a crash) sees the old object, the new one or none — never a torn one. Temporary
 *   names start with {@linkcode FILE_STORE_TEMP_PREFIX}; `list` skips them and keys may not use it.
 *   With `durable: true` the data is fsynced before the rename.
 * - Owner-only: objects are created 0600 and folders 0700, and `open` makes an existing root
 *   folder 0700 (`core/_private_fs.ts`), so other local users cannot read the blocks.
 * - `get` of a range opens, seeks and reads only that range.
 * - `list` walks the tree in key order (a directory `d` sorts as `d/`), pruning subtrees that
 *   cannot hold keys of the page. It is meant for gc and tools: correct, not fast.
 *
 * @module
 */

import pLimit from "p-limit";
import { readRange } from "../core/_file_range.ts";
import {
  type BlockStore,
  type ListPage,
  NotFoundError,
  type ObjectInfo,
} from "../core/block_store.ts";
import type { StoreLimits } from "../core/block_store.ts";
import { Errno, FsError } from "../core/errno.ts";
import { DEFAULT_LIST_LIMIT } from "./store_memory.ts";
import { FdPool } from "../core/cache/_fd_pool.ts";
import { tryLoadLibc } from "../core/libc.ts";
import { makePrivateDir, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "../core/_private_fs.ts";

/** The name prefix of the temporary files `put` writes before renaming them. */
export const FILE_STORE_TEMP_PREFIX = ".slayerfs-tmp-";

/** Options of {@linkcode FileBlockStore.open}. */
export interface FileBlockStoreOptions {
  /** Fsync each object before renaming it into place (survives a power cut). */
  durable?: boolean;
}

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}

/**
 * A block store in a local directory.
 *
 * @example
 * ```ts
 * import { FileBlockStore } from "./store_file.ts";
 * const dir = await Deno.makeTempDir();
 * try {
 *   const store = await FileBlockStore.open(dir);
 *   await store.put("chunks/1", new Uint8Array([1, 2, 3]));
 *   const page = await store.list("chunks/");
 *   if (page.objects[0]?.size !== 3) throw new Error("unexpected");
 *   await store.close();
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export class FileBlockStore implements BlockStore {
  /** `file://` plus the directory. */
  readonly url: string;
  /** 8 requests in flight; objects are local files (`StoreLimits.local`). */
  readonly limits: StoreLimits = { concurrency: 8, local: true };
  /** The directory holding the objects. */
  readonly root: string;
  readonly #durable: boolean;
  readonly #dirs = new Set<string>();
  /**
   * Descriptors kept open for ranged reads (random reads of segments: one `pread`, served from
   * the page cache on the calling thread when it can be, instead of open, seek, read and close).
   * Objects are immutable; a put or delete here retires the key's descriptor.
   */
  readonly #fds: FdPool<string> | undefined = (() => {
    const lib = tryLoadLibc();
    return lib ? new FdPool<string>(lib) : undefined;
  })();

  private constructor(root: string, options: FileBlockStoreOptions) {
    this.root = root;
    this.url = `file://${root}`;
    this.#durable = options.durable === true;
  }

  /** Opens the store in directory `dir` (absolute), creating it if needed. */
  static async open(dir: string, options: FileBlockStoreOptions = {}): Promise<FileBlockStore> {
    if (!dir.startsWith("/")) {
      throw new Error(`Block store directory "${dir}" is not an absolute path`);
    }
    const root = dir.length > 1 ? dir.replace(/\/+$/, "") || "/" : dir;
    try {
      await makePrivateDir(root, () => true); // everything below is an object
    } catch (cause) {
      throw new Error(`Cannot create block store directory "${root}"`, { cause });
    }
    const store = new FileBlockStore(root, options);
    store.#dirs.add(root);
    return store;
  }

  #path(key: string): string {
    const segments = key.split("/");
    for (const s of segments) {
      if (
        s === "" || s === "." || s === ".." || s.includes("\0") ||
        s.startsWith(FILE_STORE_TEMP_PREFIX)
      ) {
        throw new FsError(Errno.EINVAL, `Invalid object key "${key}"`);
      }
    }
    return this.root === "/" ? `/${key}` : `${this.root}/${key}`;
  }

  async #ensureDir(dir: string): Promise<void> {
    if (this.#dirs.has(dir)) return;
    await Deno.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    this.#dirs.add(dir);
  }

  async #writeTemp(tmp: string, data: Uint8Array): Promise<void> {
    if (!this.#durable) {
      return await Deno.writeFile(tmp, data, { createNew: true, mode: PRIVATE_FILE_MODE });
    }
    using file = await Deno.open(tmp, { write: true, createNew: true, mode: PRIVATE_FILE_MODE });
    for (let done = 0; done < data.length;) done += await file.write(data.subarray(done));
    await file.syncData();
  }

  /** Stores `data` under `key` atomically (temporary file + rename). */
  async put(key: string, data: Uint8Array): Promise<void> {
    const path = this.#path(key);
    this.#fds?.forget(key);
    const dir = dirOf(path);
    const tmp = `${dir}/${FILE_STORE_TEMP_PREFIX}${crypto.randomUUID()}`;
    await this.#ensureDir(dir);
    try {
      try {
        await this.#writeTemp(tmp, data);
      } catch (err) {
        if (!(err instanceof Deno.errors.NotFound)) throw err;
        // The directory was removed behind our back: make it again.
        this.#dirs.delete(dir);
        await this.#ensureDir(dir);
        await this.#writeTemp(tmp, data);
      }
      await Deno.rename(tmp, path);
    } catch (err) {
      await Deno.remove(tmp).catch(() => {});
      throw err;
    }
  }

  /**
   * Reads the range (the whole object by default; into `into` when it is large enough, with the
   * descriptor pool); throws {@linkcode NotFoundError}.
   */
  async get(key: string, offset = 0, length?: number, into?: Uint8Array): Promise<Uint8Array> {
    const path = this.#path(key);
    if (offset === 0 && length === undefined) {
      // The common case (a whole block), into a buffer of the file's size (`_file_range.ts`).
      try {
        return await readRange(path, 0);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) throw new NotFoundError(key, { cause: err });
        throw err;
      }
    }
    if (this.#fds && length !== undefined) {
      const f = this.#fds.acquire(key, path);
      try {
        const fd = await f.opening;
        if (fd >= 0) {
          const out = into !== undefined && into.byteLength >= length
            ? into.subarray(0, Math.max(0, length))
            : new Uint8Array(Math.max(0, length));
          const n = await this.#fds.readerOf(fd)(out, offset);
          return n === out.length ? out : out.subarray(0, n);
        }
        this.#fds.retire(f); // not opened (missing?): readRange says why
      } finally {
        this.#fds.release(f);
      }
    }
    try {
      return await readRange(path, offset, length);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw new NotFoundError(key, { cause: err });
      throw err;
    }
  }

  /** The object's size, or `undefined`. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const info = await Deno.stat(this.#path(key));
      if (!info.isFile) return undefined;
      return info.mtime
        ? { key, size: info.size, mtime: info.mtime.getTime() }
        : { key, size: info.size };
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
  }

  /** Deletes keys; missing ones are ignored. Empty directories are left in place. */
  async delete(keys: readonly string[]): Promise<void> {
    const paths = keys.map((key) => this.#path(key));
    for (const key of keys) this.#fds?.forget(key);
    const limit = pLimit(this.limits.concurrency);
    await Promise.all(paths.map((path) =>
      limit(async () => {
        try {
          await Deno.remove(path);
        } catch (err) {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
        }
      })
    ));
  }

  /** Lists keys under `prefix`, ascending, one page at a time. */
  async list(prefix: string, options?: { startAfter?: string; limit?: number }): Promise<ListPage> {
    const startAfter = options?.startAfter;
    const limit = options?.limit ?? DEFAULT_LIST_LIMIT;
    const keys: string[] = [];
    let truncated = false;

    // Returns true once the page is full and one more key was seen.
    const walk = async (dir: string, keyPrefix: string): Promise<boolean> => {
      const entries: { name: string; dir: boolean; sortKey: string }[] = [];
      try {
        for await (const e of Deno.readDir(dir)) {
          if (e.name.startsWith(FILE_STORE_TEMP_PREFIX)) continue;
          if (e.isDirectory) entries.push({ name: e.name, dir: true, sortKey: `${e.name}/` });
          else if (e.isFile) entries.push({ name: e.name, dir: false, sortKey: e.name });
        }
      } catch (err) {
        if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
          return false;
        }
        throw err;
      }
      entries.sort((a, b) => a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0);
      for (const e of entries) {
        const key = keyPrefix + e.sortKey;
        // Sorted: once past every key with the prefix, nothing later can match.
        if (key > prefix && !key.startsWith(prefix)) break;
        if (e.dir) {
          if (!key.startsWith(prefix) && !prefix.startsWith(key)) continue;
          if (startAfter !== undefined && startAfter > key && !startAfter.startsWith(key)) continue;
          if (await walk(`${dir}/${e.name}`, key)) return true;
        } else {
          if (!key.startsWith(prefix) || (startAfter !== undefined && key <= startAfter)) continue;
          if (keys.length >= limit) {
            truncated = true;
            return true;
          }
          keys.push(key);
        }
      }
      return false;
    };

    const base = prefix.slice(0, prefix.lastIndexOf("/") + 1);
    let start = this.root;
    if (base !== "") {
      try {
        start = this.#path(base.slice(0, -1));
      } catch {
        return { objects: [], truncated: false }; // no valid key has this prefix
      }
    }
    await walk(start, base);

    const objects: ObjectInfo[] = [];
    for (let i = 0; i < keys.length; i += 64) {
      const infos = await Promise.all(keys.slice(i, i + 64).map((key) => this.head(key)));
      for (const info of infos) if (info !== undefined) objects.push(info);
    }
    return { objects, truncated };
  }

  /** Closes the descriptors kept for ranged reads; idempotent. */
  close(): Promise<void> {
    this.#fds?.close();
    return Promise.resolve();
  }
}
