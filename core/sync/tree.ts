/**
 * The two ends of `slayerfs sync`: a tree of files with relative paths, read in ranges and written
 * front to back. {@linkcode LocalTree} is a local folder (a folder inside a SlayerFS mount is one
 * too); `backends/s3_tree.ts` is an S3 prefix of plain objects (key = prefix + relative path).
 *
 * @module
 */

import { dirname } from "node:path";
import { readAt } from "../_file_range.ts";

/** A regular file of a tree. */
export interface SyncEntry {
  /** The relative path, `/`-separated, without a leading `/`. */
  path: string;
  /** Bytes. */
  size: number;
  /** Modification time, ms since the epoch (an object's LastModified on S3). */
  mtime: number;
  /** Permission bits, when the tree has them. */
  mode?: number;
}

/** Reads one file in ranges. */
export interface SyncReader {
  /** `length` bytes at `offset` (fewer at the end). */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Releases the file. */
  close(): Promise<void>;
}

/** Writes one file front to back; nothing is visible as done before `close`. */
export interface SyncWriter {
  /** Appends `chunk`. */
  write(chunk: Uint8Array): Promise<void>;
  /** Finishes the file (sets its mtime where the tree can). */
  close(): Promise<void>;
  /** Gives up: removes what was written, best effort. */
  abort(): Promise<void>;
}

/** One end of a sync. */
export interface SyncTree {
  /** Where it is, for messages. */
  readonly where: string;
  /**
   * Whether a written file keeps the mtime given to `create` (a local folder), or gets the time
   * of the write (S3's LastModified).
   */
  readonly keepsMtime: boolean;
  /** Every regular file under the tree, in no particular order. */
  list(): AsyncIterable<SyncEntry>;
  /** Opens `path` for reading. */
  open(path: string): Promise<SyncReader>;
  /** Creates or replaces `path`, `size` bytes long, with this mtime (and mode) when it is done. */
  create(path: string, size: number, mtime: number, mode?: number): Promise<SyncWriter>;
  /** Removes the file `path`. */
  remove(path: string): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** A local folder (or a folder inside a mount). Symbolic links and special files are skipped. */
export class LocalTree implements SyncTree {
  /** The folder. */
  readonly root: string;
  /** The folder, for messages. */
  readonly where: string;
  /** Writes set the mtime given. */
  readonly keepsMtime = true;

  /** A tree at the absolute folder `root` (created by the first write if missing). */
  constructor(root: string) {
    this.root = root.replace(/\/+$/, "") || "/";
    this.where = this.root;
  }

  async *list(): AsyncIterable<SyncEntry> {
    let top: Deno.FileInfo;
    try {
      top = await Deno.stat(this.root);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return; // an empty destination
      throw err;
    }
    if (!top.isDirectory) throw new Error(`"${this.root}" is not a folder`);
    const walk = async function* (abs: string, rel: string): AsyncIterable<SyncEntry> {
      for await (const e of Deno.readDir(abs)) {
        const path = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory) yield* walk(`${abs}/${e.name}`, path);
        else if (e.isFile) {
          const st = await Deno.lstat(`${abs}/${e.name}`);
          yield { path, size: st.size, mtime: st.mtime?.getTime() ?? 0, mode: st.mode! & 0o777 };
        }
      }
    };
    yield* walk(this.root, "");
  }

  async open(path: string): Promise<SyncReader> {
    const f = await Deno.open(`${this.root}/${path}`, { read: true });
    return {
      read: (offset, length) => readAt(f, offset, length),
      close() {
        f.close();
        return Promise.resolve();
      },
    };
  }

  async create(path: string, _size: number, mtime: number, mode?: number): Promise<SyncWriter> {
    const abs = `${this.root}/${path}`;
    await Deno.mkdir(dirname(abs), { recursive: true });
    const f = await Deno.open(abs, { write: true, create: true, truncate: true });
    let open = true;
    const close = () => {
      if (open) f.close();
      open = false;
    };
    return {
      async write(chunk) {
        for (let w = 0; w < chunk.byteLength;) w += await f.write(chunk.subarray(w));
      },
      async close() {
        close();
        if (mode !== undefined) await Deno.chmod(abs, mode);
        await Deno.utime(abs, new Date(), new Date(mtime));
      },
      async abort() {
        close();
        await Deno.remove(abs).catch(() => {});
      },
    };
  }

  async remove(path: string): Promise<void> {
    await Deno.remove(`${this.root}/${path}`);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
