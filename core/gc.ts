/**
 * Garbage collection of a volume's block store: what `slayerfs gc` runs.
 *
 * Two kinds of garbage build up in object storage:
 * - **Pending deletes**: slices freed by an unlink or overwrite whose objects were not deleted yet
 *   (the daemon deletes them in the background and at every mount; a crash leaves some behind).
 *   They are listed in the metadata's garbage list.
 * - **Leaked objects**: blocks and dedup blobs that no committed slice refers to. A writer that
 *   uploads a block and dies before it commits the slice leaves one; so does a commit that fails
 *   for good after its uploads.
 *
 * {@linkcode collectVolumeGarbage} lists the store once under `chunks/` and `blobs/` and checks
 * every object against the metadata. An object not referred to and younger than `minAgeMs`
 * (default one hour) is left alone, because a live mount may be about to commit it; so is one
 * whose store cannot tell its age. Objects outside those two prefixes are never touched. It
 * never opens the filesystem, so it is safe to run while the volume is mounted.
 *
 * @module
 */

import type { BlockStore, ObjectInfo } from "./block_store.ts";
import type { Meta } from "./meta/mod.ts";
import { fromHex } from "./block_codec.ts";
import { freedSliceKeys, parseBlobKey, parseBlockKey } from "./slice.ts";
import type { SliceId } from "./types.ts";

/** What {@linkcode collectVolumeGarbage} found, and did when asked to delete. */
export interface GcReport {
  /** Objects listed under `chunks/` and `blobs/`, and their bytes. */
  objects: number;
  bytes: number;
  /** Objects a committed slice refers to. */
  referenced: number;
  /** Freed slices in the metadata's garbage list, and the keys of the objects they may leave. */
  pendingSlices: number;
  pendingObjects: number;
  /** Objects no slice refers to, old enough to be leaked, and their bytes. */
  leaked: number;
  leakedBytes: number;
  /** Objects no slice refers to yet, too young (or of unknown age) to call leaked. */
  young: number;
  /** Objects with keys SlayerFS does not write under those prefixes (left alone). */
  foreign: number;
  /** Objects deleted (pending and leaked), when deleting. */
  deleted: number;
  /** Up to 20 leaked keys, as examples. */
  examples: string[];
}

/** Options of {@linkcode collectVolumeGarbage}. */
export interface GcOptions {
  /** Delete pending and leaked objects (default: only report). */
  delete?: boolean;
  /** Unreferenced objects younger than this may still be committed (default one hour). */
  minAgeMs?: number;
}

const BATCH = 1000;

/**
 * Finds pending and leaked objects of the volume whose metadata is `meta` and whose blocks are
 * in `store`, and deletes them if asked; see the module documentation.
 */
export async function collectVolumeGarbage(
  meta: Meta,
  store: BlockStore,
  options: GcOptions = {},
): Promise<GcReport> {
  const minAge = options.minAgeMs ?? 3_600_000;
  const report: GcReport = {
    objects: 0,
    bytes: 0,
    referenced: 0,
    pendingSlices: 0,
    pendingObjects: 0,
    leaked: 0,
    leakedBytes: 0,
    young: 0,
    foreign: 0,
    deleted: 0,
    examples: [],
  };
  const deleteKeys = async (keys: string[]) => {
    for (let i = 0; i < keys.length; i += BATCH) {
      const batch = keys.slice(i, i + BATCH);
      await store.delete(batch);
      report.deleted += batch.length;
    }
  };

  // Pending deletes first: their objects would otherwise look leaked.
  const pendingKeys = new Set<string>();
  const blockSize = meta.format.blockSize;
  if (options.delete) {
    for (;;) {
      const batch = await meta.listGarbage(BATCH);
      if (batch.length === 0) break;
      const keys = batch.flatMap((f) => freedSliceKeys(f, blockSize));
      report.pendingSlices += batch.length;
      report.pendingObjects += keys.length;
      await deleteKeys(keys);
      await meta.clearGarbage(batch.map((f) => f.id));
    }
  } else {
    const all = await meta.listGarbage(Number.MAX_SAFE_INTEGER);
    report.pendingSlices = all.length;
    for (const f of all) for (const k of freedSliceKeys(f, blockSize)) pendingKeys.add(k);
    report.pendingObjects = pendingKeys.size;
  }

  const now = Date.now();
  const classify = async (page: ObjectInfo[], kind: "chunks" | "blobs") => {
    const unknown: { o: ObjectInfo; id?: SliceId; hash?: string }[] = [];
    for (const o of page) {
      report.objects++;
      report.bytes += o.size;
      if (pendingKeys.has(o.key)) continue;
      if (kind === "chunks") {
        const block = parseBlockKey(o.key);
        if (block === undefined) report.foreign++;
        else unknown.push({ o, id: block.id });
        continue;
      }
      const hash = parseBlobKey(o.key);
      if (hash === undefined) report.foreign++;
      else unknown.push({ o, hash });
    }
    let refs: boolean[];
    if (kind === "chunks") {
      refs = await meta.slicesExist(unknown.map((u) => u.id!));
    } else {
      const named = await meta.blobs(unknown.map((u) => fromHex(u.hash!)));
      refs = unknown.map((u, i) => named[i] === u.o.key);
    }
    const leaked: string[] = [];
    unknown.forEach((u, i) => {
      if (refs[i]) {
        report.referenced++;
      } else if (u.o.mtime === undefined || now - u.o.mtime < minAge) {
        report.young++;
      } else {
        report.leaked++;
        report.leakedBytes += u.o.size;
        if (report.examples.length < 20) report.examples.push(u.o.key);
        leaked.push(u.o.key);
      }
    });
    if (options.delete) await deleteKeys(leaked);
  };

  for (const kind of ["chunks", "blobs"] as const) {
    let startAfter: string | undefined;
    for (;;) {
      const page = await store.list(
        `${kind}/`,
        startAfter === undefined ? { limit: BATCH } : { limit: BATCH, startAfter },
      );
      await classify(page.objects, kind);
      if (!page.truncated || page.objects.length === 0) break;
      startAfter = page.objects.at(-1)!.key;
    }
  }
  return report;
}
