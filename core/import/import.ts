/**
 * `slayerfs import`: makes a file of each object under an S3 prefix, whose data refers to the
 * object in place (external slices, `external.ts`); no byte is copied.
 *
 * Each object is imported in one metadata transaction: its file (and its record in the import
 * index, `Y<dest ino><path>`: the inode, the ETag, the size and the slice ids) appears whole or
 * not at all, so an interrupted import is resumed by running it again, which skips what is
 * already imported with the same ETag. With `refresh`, an object whose ETag changed has its
 * file's reference replaced, and the file of an object that is gone is removed — unless the file
 * was written since the import (its chunks hold other slices than the imported ones, or its size
 * changed): then the local version is kept and a warning names it.
 *
 * @module
 */

import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { S3Pool } from "../../backends/_s3_pool.ts";
import { formatS3Url, parseS3Url, type S3Location } from "../../backends/_s3_url.ts";
import { BLOCK_EXTERNAL } from "../block_codec.ts";
import { Errno, FsError } from "../errno.ts";
import type { KvEngine, KvTxn } from "../kv.ts";
import type { Meta } from "../meta/mod.ts";
import { attrKey, u64 } from "../meta/keys.ts";
import { getAttr, getEntry } from "../meta/_inode.ts";
import * as ns from "../meta/namespace.ts";
import * as slices from "../meta/slices.ts";
import { listChunks } from "../meta/slice_reads.ts";
import { sliceBlocks } from "../slice.ts";
import {
  type Ctx,
  type Ino,
  nameFromText,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  type SliceId,
} from "../types.ts";
import { encodeExternal, externalKey } from "./external.ts";

/** One object of a listing. */
export interface SourceObject {
  /** The key without the source's prefix: the file's path under the destination. */
  path: string;
  /** The whole key. */
  key: string;
  /** Bytes. */
  size: number;
  /** ETag, quotes included. */
  etag: string;
  /** LastModified, ms since the epoch. */
  mtime: number;
}

/** Lists the objects under the prefix of an `s3://` URL, page by page. */
export async function* listSource(url: string): AsyncGenerator<SourceObject[]> {
  const loc: S3Location = parseS3Url(url);
  const pool = new S3Pool(loc, formatS3Url(loc), {
    maxConnections: 4,
    getTimeoutMs: loc.getTimeoutMs,
    putTimeoutMs: loc.putTimeoutMs,
    maxAttempts: loc.retries + 1,
    baseBackoffMs: 100,
    maxBackoffMs: 5_000,
  });
  try {
    let startAfter: string | undefined;
    for (;;) {
      const res = await pool.request("LIST", loc.prefix, (signal) =>
        pool.client.send(
          new ListObjectsV2Command({
            Bucket: loc.bucket,
            Prefix: loc.prefix,
            ...(startAfter === undefined ? {} : { StartAfter: startAfter }),
          }),
          { abortSignal: signal },
        ));
      const page: SourceObject[] = [];
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined || o.Key.endsWith("/")) continue; // folder markers
        page.push({
          path: o.Key.slice(loc.prefix.length),
          key: o.Key,
          size: o.Size ?? 0,
          etag: o.ETag ?? "",
          mtime: o.LastModified?.getTime() ?? Date.now(),
        });
      }
      yield page;
      const last = res.Contents?.at(-1)?.Key;
      if (res.IsTruncated !== true || last === undefined) return;
      startAfter = last;
    }
  } finally {
    pool.close();
  }
}

/**
 * The pages of `pages`, the next one requested while the caller works on the current one: the
 * listing (a round trip per page, slow on some servers) overlaps the import of the page before.
 */
export async function* listAhead<T>(pages: AsyncGenerator<T>): AsyncGenerator<T> {
  let next = pages.next();
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      next = pages.next();
      // A failed look-ahead is reported when its page is wanted, not while this one is at work.
      next.catch(() => {});
      yield r.value;
    }
  } finally {
    // Stopped early (an error in the caller): let the source close its client.
    await next.then(() => pages.return(undefined), () => {});
  }
}

/** What an import did. */
export interface ImportReport {
  /** Objects listed. */
  listed: number;
  /** Files created. */
  imported: number;
  /** Bytes the created and replaced files refer to. */
  bytes: number;
  /** Objects already imported with the same ETag. */
  unchanged: number;
  /** Files whose reference was replaced (ETag changed; `refresh`). */
  replaced: number;
  /** Files removed (object gone; `refresh`). */
  removed: number;
  /** Objects changed or gone whose file was written since: kept. */
  keptLocal: string[];
  /** Objects changed since the import, left as they are (no `refresh`). */
  stale: string[];
  /** Objects not imported, and why (a name that cannot be a file, a path taken). */
  skipped: string[];
}

/** Options of {@linkcode importObjects}. */
export interface ImportOptions {
  /** Replace changed objects' references and remove files of deleted objects. */
  refresh?: boolean;
  /** Owner of the new files and directories. */
  ctx?: Ctx;
  /** Objects imported at once (default 64; their new files are committed together). */
  concurrency?: number;
  /** Called after each object. */
  onProgress?: (report: ImportReport) => void;
}

/** A file's record in the import index. */
interface Entry {
  ino: Ino;
  etag: string;
  size: number;
  ids: SliceId[];
}

const indexPrefix = (dest: Ino) => "Y" + u64(dest);
const enc = (e: Entry) => new TextEncoder().encode(JSON.stringify([e.ino, e.etag, e.size, e.ids]));
function dec(raw: Uint8Array): Entry {
  const [ino, etag, size, ids] = JSON.parse(new TextDecoder().decode(raw));
  return { ino, etag, size, ids };
}

/**
 * Runs the transactions of concurrent callers together, as one transaction (a commit per object
 * is what limits an import on SQLite); if that fails, each alone, so that each caller gets its own
 * error. Each object still appears whole or not at all.
 */
class GroupCommit {
  readonly #kv: KvEngine;
  #pending: Array<{ fn: (tx: KvTxn) => Promise<void>; done: (err?: unknown) => void }> = [];
  #scheduled = false;

  constructor(kv: KvEngine) {
    this.#kv = kv;
  }

  run(fn: (tx: KvTxn) => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ fn, done: (err) => err === undefined ? resolve() : reject(err) });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setTimeout(() => this.#flush(), 0);
      }
    });
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    const batch = this.#pending.splice(0);
    try {
      await this.#kv.txn(async (tx) => {
        for (const b of batch) await b.fn(tx);
      });
      for (const b of batch) b.done();
      return;
    } catch {
      // One of them fails: run each alone.
    }
    for (const b of batch) {
      try {
        await this.#kv.txn(b.fn);
        b.done();
      } catch (err) {
        b.done(err ?? new Error("failed"));
      }
    }
  }
}

/** Whether `name` can be a directory entry. */
const goodName = (n: string) => n !== "" && n !== "." && n !== ".." && n.length <= 255;

/**
 * Imports the objects under `url` into the directory `dest` of the volume (created if missing).
 * See the module notes.
 */
export async function importObjects(
  meta: Meta,
  url: string,
  dest: string,
  options: ImportOptions = {},
): Promise<ImportReport> {
  const ctx = options.ctx ?? { uid: 0, gid: 0, pid: 0, umask: 0o022, groups: () => [] };
  const report: ImportReport = {
    listed: 0,
    imported: 0,
    bytes: 0,
    unchanged: 0,
    replaced: 0,
    removed: 0,
    keptLocal: [],
    stale: [],
    skipped: [],
  };
  const dirs = new Map<string, Promise<Ino>>();
  const dir = (path: string): Promise<Ino> => {
    let p = dirs.get(path);
    if (!p) {
      const cut = path.lastIndexOf("/");
      p = (async () => {
        const parent = cut < 0 ? 1 as Ino : await dir(path.slice(0, cut));
        const name = path.slice(cut + 1);
        if (path === "") return 1 as Ino;
        try {
          const a = await meta.lookup(parent, name);
          if ((a.mode & S_IFMT) !== S_IFDIR) {
            throw new FsError(Errno.ENOTDIR, `"/${path}" is not a directory`);
          }
          return a.ino;
        } catch (err) {
          if (!(err instanceof FsError) || err.errno !== Errno.ENOENT) throw err;
        }
        try {
          return (await meta.mknod(ctx, parent, name, S_IFDIR | 0o755, 0)).ino;
        } catch (err) {
          if (err instanceof FsError && err.errno === Errno.EEXIST) {
            return (await meta.lookup(parent, name)).ino; // made meanwhile
          }
          throw err;
        }
      })();
      dirs.set(path, p);
    }
    return p;
  };
  const destPath = nameFromText(dest).split("/").filter((s) => s !== "").join("/");
  const destIno = await dir(destPath);
  const prefix = indexPrefix(destIno);
  const { chunkSize: cs, blockSize: bs } = meta.format;

  /** New external slices for `o`, and the records that commit them. */
  async function newSlices(o: SourceObject): Promise<{ ids: SliceId[]; add: slices.NewSlice[] }> {
    const ids: SliceId[] = [];
    const add: slices.NewSlice[] = [];
    for (let c = 0; c * cs < o.size; c++) {
      const id = await meta.allocSliceId();
      const size = Math.min(cs, o.size - c * cs);
      ids.push(id);
      add.push({
        chunk: c,
        record: { pos: 0, id, size, off: 0, len: size },
        blocks: sliceBlocks(size, bs).map(([, len]) => ({
          flags: BLOCK_EXTERNAL,
          storedLen: len,
          checksum: 0n,
        })),
      });
    }
    return { ids, add };
  }
  const refs = (tx: KvTxn, o: SourceObject, ids: SliceId[]) =>
    ids.forEach((id, c) =>
      tx.set(externalKey(id), encodeExternal({ url, key: o.key, etag: o.etag, offset: c * cs }))
    );
  const mtimeOf = (o: SourceObject) => ({
    sec: Math.floor(o.mtime / 1000),
    nsec: (o.mtime % 1000) * 1e6,
  });

  /** Whether the file still shows only the imported slices (not written since). */
  async function untouched(tx: KvTxn, e: Entry): Promise<boolean> {
    if (!(await tx.get(attrKey(e.ino)))) return false;
    if ((await getAttr(tx, e.ino)).size !== e.size) return false;
    const ids = new Set<number>(e.ids);
    for (const { records } of await listChunks(tx, e.ino)) {
      if (records.some((r) => !ids.has(r.id))) return false;
    }
    return true;
  }

  async function one(
    o: SourceObject,
    seen: Set<string>,
    index: Map<string, Uint8Array | undefined>,
  ): Promise<void> {
    const bpath = nameFromText(o.path); // names are UTF-8 byte strings
    const parts = bpath.split("/");
    if (!parts.every(goodName)) {
      report.skipped.push(`${o.key}: not a valid file path`);
      return;
    }
    seen.add(bpath);
    const ikey = prefix + bpath;
    const old = index.get(ikey);
    let entry = old ? dec(old) : undefined;
    if (entry && entry.etag === o.etag) {
      report.unchanged++;
      return;
    }
    if (entry && options.refresh) {
      // Its file was removed here: import the new version afresh.
      const ino = entry.ino;
      const there = await meta.kv.txn((tx) => tx.get(attrKey(ino)), { readOnly: true });
      if (!there) entry = undefined;
    }
    let parent: Ino;
    try {
      parent = await dir([destPath, ...parts.slice(0, -1)].filter((s) => s).join("/"));
    } catch (err) {
      report.skipped.push(`${o.key}: ${err instanceof Error ? err.message : err}`);
      return;
    }
    const name = parts.at(-1)!;
    const { ids, add } = await newSlices(o);
    if (entry) {
      if (!options.refresh) {
        report.stale.push(o.path);
        return;
      }
      const done = await meta.kv.txn(async (tx) => {
        if (!(await untouched(tx, entry))) return false;
        const t = mtimeOf(o);
        const { freed } = await slices.truncate(tx, cs, entry.ino, 0, t);
        for (const f of freed) tx.delete(externalKey(f.id));
        if (add.length) await slices.commitSlices(tx, entry.ino, add, o.size, t);
        refs(tx, o, ids);
        tx.set(ikey, enc({ ino: entry.ino, etag: o.etag, size: o.size, ids }));
        return true;
      });
      if (done) {
        report.replaced++;
        report.bytes += o.size;
      } else report.keptLocal.push(o.path);
      return;
    }
    const ino = await meta.allocIno();
    try {
      await group.run(async (tx) => {
        await ns.mknod(tx, { ino, ctx, parent, name, mode: S_IFREG | 0o644, rdev: 0 });
        const t = mtimeOf(o);
        if (add.length) await slices.commitSlices(tx, ino, add, o.size, t);
        refs(tx, o, ids);
        tx.set(ikey, enc({ ino, etag: o.etag, size: o.size, ids }));
      });
    } catch (err) {
      if (err instanceof FsError && err.errno === Errno.EEXIST) {
        report.skipped.push(`${o.key}: "${o.path}" exists already (not imported)`);
        return;
      }
      throw err;
    }
    report.imported++;
    report.bytes += o.size;
  }

  const seen = new Set<string>();
  const limit = options.concurrency ?? 64;
  const group = new GroupCommit(meta.kv);
  for await (const page of listAhead(listSource(url))) {
    report.listed += page.length;
    // The page's records in the import index, in one read.
    const keys = page.map((o) => prefix + nameFromText(o.path));
    const raws = await meta.kv.txn((tx) => tx.getMany(keys), { readOnly: true });
    const index = new Map(keys.map((k, i) => [k, raws[i]]));
    let next = 0;
    const worker = async () => {
      while (next < page.length) {
        await one(page[next++]!, seen, index);
        options.onProgress?.(report);
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, page.length) }, worker));
  }

  if (options.refresh) {
    // Objects gone since the last import: remove their files (unless written since).
    const entries = await meta.kv.txn((tx) => tx.scan(prefix), { readOnly: true });
    for (const [k, v] of entries) {
      const path = k.slice(prefix.length);
      if (seen.has(path)) continue;
      const text = new TextDecoder().decode(Uint8Array.from(path, (ch) => ch.charCodeAt(0)));
      const e = dec(v);
      const cut = path.lastIndexOf("/");
      const parentPath = [destPath, cut < 0 ? "" : path.slice(0, cut)].filter((s) => s).join("/");
      const name = path.slice(cut + 1);
      let parent: Ino | undefined = 1 as Ino;
      for (const n of parentPath.split("/").filter((n) => n)) {
        parent = await meta.lookup(parent, n).then((a) => a.ino, () => undefined);
        if (parent === undefined) break;
      }
      const removed = await meta.kv.txn(async (tx) => {
        if (!(await untouched(tx, e))) {
          tx.delete(k);
          return false;
        }
        const here = parent && await getEntry(tx, parent, name);
        if (here && here.ino === e.ino) {
          const { freed } = await ns.unlink(tx, parent!, name, () => false);
          for (const f of freed) tx.delete(externalKey(f.id));
        }
        tx.delete(k);
        return true;
      });
      if (removed) report.removed++;
      else report.keptLocal.push(text);
      options.onProgress?.(report);
    }
  }
  return report;
}
