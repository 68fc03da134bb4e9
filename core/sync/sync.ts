/**
 * `slayerfs sync`'s engine: lists both trees, decides what to copy (a file missing in the
 * destination, of another size, or changed since it was copied; with `check`, of other contents),
 * copies `threads` files at a time in 8 MiB pieces, and with `delete` removes what the source no
 * longer has. A file that fails is recorded and the others go on; running again copies only what
 * is not done yet.
 *
 * When is a file unchanged? Same size, and: in a destination that keeps mtimes (a folder) the same
 * mtime (the copy sets it from the source); in S3 (whose LastModified is the time of the upload,
 * in whole seconds) an object not older than the source's mtime.
 *
 * @module
 */

import pLimit from "p-limit";
import type { Filter } from "./filter.ts";
import type { SyncEntry, SyncTree } from "./tree.ts";

/** Bytes read and written at a time. */
export const SYNC_PIECE = 8 * 2 ** 20;

/** How to sync. */
export interface SyncOptions {
  /** Files copied at once. */
  threads: number;
  /** Compare the contents of files of the same size (else size and mtime decide). */
  check: boolean;
  /** Remove destination files the source does not have (among those the filter includes). */
  delete: boolean;
  /** Only say what would be done. */
  dryRun: boolean;
  /** Which paths take part. */
  filter: Filter;
  /** Called as bytes are copied (and once per file done, with 0). */
  onProgress?: (bytes: number) => void;
}

/** A file that could not be copied or removed. */
export interface SyncFailure {
  /** The relative path. */
  path: string;
  /** `copy`, `compare` or `delete`. */
  op: string;
  /** Why. */
  error: string;
}

/** What a sync did (or, with `dryRun`, would do). */
export interface SyncResult {
  /** Files (included by the filter) in the source. */
  files: number;
  /** Their bytes. */
  bytes: number;
  /** Files copied (to copy). */
  copied: string[];
  /** Bytes copied (to copy). */
  copiedBytes: number;
  /** Files found unchanged. */
  unchanged: number;
  /** Files the filter left out (of both trees). */
  excluded: number;
  /** Destination files removed (to remove). */
  deleted: string[];
  /** What failed. */
  failed: SyncFailure[];
}

/** The plan: the source's files, the destination's, and which to copy and delete. */
export interface SyncPlan {
  /** Source files the filter includes. */
  src: Map<string, SyncEntry>;
  /** Destination files the filter includes. */
  dst: Map<string, SyncEntry>;
  /** Files the filter excluded. */
  excluded: number;
}

async function listed(tree: SyncTree, filter: Filter): Promise<[Map<string, SyncEntry>, number]> {
  const out = new Map<string, SyncEntry>();
  let excluded = 0;
  for await (const e of tree.list()) {
    if (filter.includes(e.path)) out.set(e.path, e);
    else excluded++;
  }
  return [out, excluded];
}

/** Lists both trees through the filter. */
export async function planSync(src: SyncTree, dst: SyncTree, filter: Filter): Promise<SyncPlan> {
  const [[s, ex1], [d, ex2]] = await Promise.all([listed(src, filter), listed(dst, filter)]);
  return { src: s, dst: d, excluded: ex1 + ex2 };
}

/** Whether `dst` (in a tree that does or does not keep mtimes) is an unchanged copy of `src`. */
export function unchanged(
  src: SyncEntry,
  dst: SyncEntry | undefined,
  keepsMtime: boolean,
): boolean {
  if (dst === undefined || dst.size !== src.size) return false;
  return keepsMtime ? Math.abs(dst.mtime - src.mtime) < 1 : dst.mtime >= src.mtime - 1000;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function sameContents(src: SyncTree, dst: SyncTree, path: string, size: number) {
  const [a, b] = await Promise.all([src.open(path), dst.open(path)]);
  try {
    for (let off = 0; off < size; off += SYNC_PIECE) {
      const n = Math.min(SYNC_PIECE, size - off);
      const [x, y] = await Promise.all([a.read(off, n), b.read(off, n)]);
      if (x.byteLength !== y.byteLength) return false;
      for (let i = 0; i < x.byteLength; i++) if (x[i] !== y[i]) return false;
    }
    return true;
  } finally {
    await a.close().catch(() => {});
    await b.close().catch(() => {});
  }
}

async function copyFile(
  src: SyncTree,
  dst: SyncTree,
  e: SyncEntry,
  progress?: (n: number) => void,
) {
  const reader = await src.open(e.path);
  try {
    const writer = await dst.create(e.path, e.size, e.mtime, e.mode);
    try {
      for (let off = 0; off < e.size; off += SYNC_PIECE) {
        const piece = await reader.read(off, Math.min(SYNC_PIECE, e.size - off));
        if (piece.byteLength === 0) throw new Error(`"${e.path}" shrank while being copied`);
        await writer.write(piece);
        progress?.(piece.byteLength);
      }
      await writer.close();
    } catch (err) {
      await writer.abort().catch(() => {});
      throw err;
    }
  } finally {
    await reader.close().catch(() => {});
  }
}

/** Syncs `src` into `dst` (see the module notes). */
export async function syncTrees(
  src: SyncTree,
  dst: SyncTree,
  opts: SyncOptions,
  plan?: SyncPlan,
): Promise<SyncResult> {
  const p = plan ?? await planSync(src, dst, opts.filter);
  const result: SyncResult = {
    files: p.src.size,
    bytes: 0,
    copied: [],
    copiedBytes: 0,
    unchanged: 0,
    excluded: p.excluded,
    deleted: [],
    failed: [],
  };
  const limit = pLimit(opts.threads);
  const tasks: Promise<void>[] = [];
  for (const e of [...p.src.values()].sort((a, b) => a.path < b.path ? -1 : 1)) {
    result.bytes += e.size;
    const there = p.dst.get(e.path);
    tasks.push(limit(async () => {
      let copy = !unchanged(e, there, dst.keepsMtime);
      if (opts.check && there !== undefined && there.size === e.size) {
        try {
          copy = !(await sameContents(src, dst, e.path, e.size));
        } catch (err) {
          result.failed.push({ path: e.path, op: "compare", error: message(err) });
          return;
        }
      }
      if (!copy) {
        result.unchanged++;
        opts.onProgress?.(e.size);
        return;
      }
      try {
        if (!opts.dryRun) await copyFile(src, dst, e, opts.onProgress);
        else opts.onProgress?.(e.size);
        result.copied.push(e.path);
        result.copiedBytes += e.size;
      } catch (err) {
        result.failed.push({ path: e.path, op: "copy", error: message(err) });
      }
    }));
  }
  await Promise.all(tasks);
  if (opts.delete) {
    const gone = [...p.dst.keys()].filter((k) => !p.src.has(k)).sort();
    await Promise.all(gone.map((path) =>
      limit(async () => {
        try {
          if (!opts.dryRun) await dst.remove(path);
          result.deleted.push(path);
        } catch (err) {
          result.failed.push({ path, op: "delete", error: message(err) });
        }
      })
    ));
  }
  result.copied.sort();
  result.deleted.sort();
  result.failed.sort((a, b) => a.path < b.path ? -1 : 1);
  return result;
}
