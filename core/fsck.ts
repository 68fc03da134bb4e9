/**
 * Checking a volume: what `slayerfs fsck` runs, on any metadata engine.
 *
 * {@linkcode checkVolume} lists the block store once (under `chunks/` and `blobs/`, like `gc`),
 * then reads the metadata in ordered scans of `batch` keys, each in its own read-only transaction:
 * 1. every committed slice (`K`): each of its blocks must be in the store with the size its
 *    record gives (`storedLen`), or, for an inline block, in the metadata (`I`), or, for a dedup
 *    block, named by a blob (`B`) whose object is in the store with that size;
 * 2. every inode (`A`): counts inodes and the space of regular files, counts the references of
 *    each slice from the chunk lists, and notes the files whose chunks use a broken slice or one
 *    that is not there at all;
 * 3. only if some file is broken: the directory entries, to name those files by path (a
 *    directory's path follows its `parent` up to the root).
 *
 * Then it compares each slice's reference count with the references counted, and the `Ninodes`
 * and `Nspace` counters with what it counted. With `repair`, it rewrites wrong reference counts
 * and counters (a slice no chunk refers to is left alone: `gc` reports its objects once it is
 * freed). Missing blocks cannot be repaired: the report names the files to restore. The volume
 * should not be written meanwhile: a check of a volume in use can report files written during it.
 * Unlike `dump`, a check keeps the listing (key and size of each object) and each slice's
 * reference count in memory: some 100-200 bytes per object and slice.
 *
 * @module
 */

import type { BlockStore } from "./block_store.ts";
import { BLOCK_DEDUP, BLOCK_EXTERNAL, BLOCK_INLINE, decodeBlockRecords } from "./block_codec.ts";
import { externalProblems } from "./import/check.ts";
import type { VolumeFormat } from "./format.ts";
import { SEALED_OVERHEAD } from "./_crypto.ts";
import type { KvEngine, KvPair } from "./kv.ts";
import {
  attrKey,
  blobKey,
  entryPrefix,
  inlineKey,
  keyUsedInodes,
  keyUsedSpace,
  readU32,
  readU64,
  sliceKey,
} from "./meta/keys.ts";
import {
  decodeAttr,
  decodeBlob,
  decodeEntry,
  decodeNum,
  decodeSliceInfo,
  encodeNum,
  encodeSliceInfo,
  SLICE_INFO_SIZE,
} from "./meta/_codec.ts";
import { blockKey, concatBytes, decodeRecords, sliceBlocks } from "./slice.ts";
import { type Ino, ROOT_INO, S_IFDIR, S_IFMT, S_IFREG, type SliceId } from "./types.ts";

/** A file that cannot be read whole. */
export interface BrokenFile {
  /** Its inode. */
  ino: Ino;
  /** Its paths (hard links: several; none if it is unlinked but still open). */
  paths: string[];
  /** What is wrong, one line per broken slice (up to 5). */
  problems: string[];
}

/** A counter that does not match what the check counted. */
export interface CounterMismatch {
  /** The counter's key (`Ninodes`, `Nspace`). */
  name: string;
  /** Its stored value. */
  stored: number;
  /** What the check counted. */
  counted: number;
}

/** What {@linkcode checkVolume} found (and repaired). */
export interface FsckReport {
  /** Objects listed in the store. */
  objects: number;
  /** Slices and blocks checked. */
  slices: number;
  blocks: number;
  /** Slices with at least one missing or wrong block. */
  brokenSlices: number;
  /** Chunk records naming a slice that does not exist. */
  missingSlices: number;
  /** Files using a broken or missing slice, with their paths. */
  brokenFiles: BrokenFile[];
  /** Inodes counted. */
  inodes: number;
  /** Slices whose reference count differs from the references counted. */
  refMismatches: number;
  /** Up to 20 of them, as lines. */
  refExamples: string[];
  /** Counters that differ from what was counted. */
  counters: CounterMismatch[];
  /** Reference counts and counters rewritten (with `repair`). */
  repaired: number;
}

/** Options of {@linkcode checkVolume}. */
export interface FsckOptions {
  /** Rewrite wrong reference counts and counters. */
  repair?: boolean;
  /** Keys per scan (default 1000). */
  batch?: number;
  /** Called as the check goes: the step and how many keys or objects it went through. */
  onProgress?: (step: string, done: number) => void;
}

/** Whether the report shows something broken or inconsistent (after repairs). */
export function fsckFailed(r: FsckReport, repaired = false): boolean {
  if (r.brokenSlices || r.missingSlices || r.brokenFiles.length) return true;
  return !repaired && (r.refMismatches > 0 || r.counters.length > 0);
}

/** Reads every key of `prefix`, `batch` at a time, each page in its own read transaction. */
async function* scanAll(kv: KvEngine, prefix: string, batch: number): AsyncGenerator<KvPair[]> {
  let after: string | undefined;
  for (;;) {
    const page = await kv.txn(
      (tx) =>
        tx.scan(
          prefix,
          after === undefined ? { limit: batch } : { limit: batch, startAfter: after },
        ),
      { readOnly: true },
    );
    if (page.length) yield page;
    if (page.length < batch) return;
    after = page.at(-1)![0];
  }
}

/** Checks the volume whose metadata is `kv` and whose blocks are in `store`; see the module. */
export async function checkVolume(
  kv: KvEngine,
  format: VolumeFormat,
  store: BlockStore,
  options: FsckOptions = {},
): Promise<FsckReport> {
  const batch = options.batch ?? 1000;
  const progress = options.onProgress ?? (() => {});
  const report: FsckReport = {
    objects: 0,
    slices: 0,
    blocks: 0,
    brokenSlices: 0,
    missingSlices: 0,
    brokenFiles: [],
    inodes: 0,
    refMismatches: 0,
    refExamples: [],
    counters: [],
    repaired: 0,
  };

  // The store, listed once: object key → size.
  const sizes = new Map<string, number>();
  for (const prefix of ["chunks/", "blobs/"]) {
    let startAfter: string | undefined;
    for (;;) {
      const page = await store.list(
        prefix,
        startAfter === undefined ? { limit: batch } : { limit: batch, startAfter },
      );
      for (const o of page.objects) sizes.set(o.key, o.size);
      report.objects += page.objects.length;
      progress("listing the store", report.objects);
      if (!page.truncated || page.objects.length === 0) break;
      startAfter = page.objects.at(-1)!.key;
    }
  }

  // 1. Slices and their blocks.
  const refs = new Map<number, number>(); // slice id → stored reference count
  const broken = new Map<number, string>(); // slice id → what is wrong
  for await (const page of scanAll(kv, "K", batch)) {
    // Each block's check runs once the page's inline blocks and blobs are read (one read).
    const inline: string[] = [];
    const blobs: string[] = [];
    let inlineValues: (Uint8Array | undefined)[] = [];
    let blobValues: (Uint8Array | undefined)[] = [];
    const checks: Array<{ id: number; problem: () => string | undefined }> = [];
    const external: SliceId[] = []; // imported objects, checked by a HEAD each (import/check.ts)
    let externalFound = new Map<number, string>();
    for (const [key, value] of page) {
      const id = readU64(key, 1) as SliceId;
      const info = decodeSliceInfo(value);
      const records = decodeBlockRecords(value.subarray(SLICE_INFO_SIZE));
      refs.set(id, info.refs);
      report.slices++;
      const blocks = sliceBlocks(info.size, format.blockSize);
      if (records.length !== blocks.length) {
        broken.set(id, `slice ${id}: ${records.length} block records for ${blocks.length} blocks`);
        continue;
      }
      for (const [i, len] of blocks) {
        const { flags, hash } = records[i]!;
        // A sealed object (encryption at rest) carries its nonce and tag besides the block.
        const sealed = format.encryption && !(flags & BLOCK_INLINE);
        const want = records[i]!.storedLen + (sealed ? SEALED_OVERHEAD : 0);
        report.blocks++;
        if (flags & BLOCK_INLINE) {
          const at = inline.push(inlineKey(id, i)) - 1;
          checks.push({
            id,
            problem: () => {
              const got = inlineValues[at];
              if (got === undefined) return `slice ${id}: inline block ${i} is missing`;
              if (got.byteLength !== want) {
                return `slice ${id}: inline block ${i} has ${got.byteLength} bytes, expected ${want}`;
              }
            },
          });
        } else if (flags & BLOCK_DEDUP && hash) {
          const at = blobs.push(blobKey(hash)) - 1;
          checks.push({
            id,
            problem: () => {
              const raw = blobValues[at];
              if (raw === undefined) {
                return `slice ${id}: block ${i} names a dedup blob that is gone`;
              }
              return objectProblem(id, i, decodeBlob(raw).key, want);
            },
          });
        } else if (flags & BLOCK_EXTERNAL) {
          if (i === 0) external.push(id);
          checks.push({ id, problem: () => externalFound.get(id) });
        } else {
          checks.push({ id, problem: () => objectProblem(id, i, blockKey(id, i, len), want) });
        }
      }
    }
    [inlineValues, blobValues] = await kv.txn(
      async (tx) => [await tx.getMany(inline), await tx.getMany(blobs)],
      { readOnly: true },
    );
    if (external.length) externalFound = await externalProblems(kv, external);
    for (const { id, problem } of checks) {
      if (broken.has(id)) continue;
      const p = problem();
      if (p !== undefined) broken.set(id, p);
    }
    progress("checking slices", report.slices);
  }
  report.brokenSlices = broken.size;
  function objectProblem(id: number, i: number, key: string, want: number): string | undefined {
    const size = sizes.get(key);
    if (size === undefined) return `slice ${id}: block ${i} ("${key}") is missing from the store`;
    if (size !== want) {
      return `slice ${id}: block ${i} ("${key}") has ${size} bytes, expected ${want}`;
    }
  }

  // 2. Inodes and chunks.
  const counted = new Map<number, number>(); // slice id → references from chunks
  const brokenInos = new Map<number, string[]>();
  let space = 0;
  let keys = 0;
  for await (const page of scanAll(kv, "A", batch)) {
    for (const [key, value] of page) {
      const ino = readU64(key, 1);
      const kind = key[9];
      if (kind === "I" && key.length === 10) {
        report.inodes++;
        const a = decodeAttr(ino as Ino, value);
        if ((a.mode & S_IFMT) === S_IFREG) space += Math.ceil(a.size / 4096) * 4096;
      } else if (kind === "C" && key.length === 14) {
        for (const r of decodeRecords(value)) {
          if (r.id === 0) continue;
          counted.set(r.id, (counted.get(r.id) ?? 0) + 1);
          let problem = broken.get(r.id);
          if (problem === undefined && !refs.has(r.id)) {
            problem = `chunk ${readU32(key, 10)} uses slice ${r.id}, which does not exist`;
            report.missingSlices++;
          }
          if (problem === undefined) continue;
          const list = brokenInos.get(ino) ?? [];
          if (!list.includes(problem) && list.length < 5) list.push(problem);
          brokenInos.set(ino, list);
        }
      }
    }
    keys += page.length;
    progress("checking inodes", keys);
  }

  // 3. Paths of broken files.
  if (brokenInos.size) {
    const paths = await pathsOf(kv, new Set(brokenInos.keys()), batch);
    for (const [ino, problems] of brokenInos) {
      report.brokenFiles.push({ ino: ino as Ino, paths: (paths.get(ino) ?? []).sort(), problems });
    }
  }

  // Reference counts and counters.
  const fixes: Array<[string, Uint8Array | ((v: Uint8Array) => Uint8Array)]> = [];
  for (const [id, stored] of refs) {
    const n = counted.get(id) ?? 0;
    if (n === stored || n === 0) continue; // unreferenced: left to gc once freed
    report.refMismatches++;
    if (report.refExamples.length < 20) {
      report.refExamples.push(`slice ${id}: reference count ${stored}, referenced ${n} times`);
    }
    fixes.push([sliceKey(id as SliceId), (v) => {
      const size = decodeSliceInfo(v).size;
      return concatBytes(encodeSliceInfo(n, size), v.subarray(SLICE_INFO_SIZE));
    }]);
  }
  const stored = await kv.txn(
    async (tx) => (await tx.getMany([keyUsedInodes, keyUsedSpace])).map(decodeNum),
    { readOnly: true },
  );
  for (
    const [name, was, now] of [[keyUsedInodes, stored[0]!, report.inodes], [
      keyUsedSpace,
      stored[1]!,
      space,
    ]] as const
  ) {
    if (was === now) continue;
    report.counters.push({ name, stored: was, counted: now });
    fixes.push([name, encodeNum(now)]);
  }
  if (options.repair) {
    for (let i = 0; i < fixes.length; i += batch) {
      const part = fixes.slice(i, i + batch);
      await kv.txn(async (tx) => {
        for (const [key, fix] of part) {
          if (fix instanceof Uint8Array) {
            tx.set(key, fix);
          } else {
            const v = await tx.get(key);
            if (v) tx.set(key, fix(v));
          }
        }
      });
      report.repaired += part.length;
    }
  }
  return report;
}

/**
 * The paths of the inodes in `want`: one scan of the directory entries finds the entries naming
 * them, then each directory's path is found up its `parent` links.
 */
async function pathsOf(
  kv: KvEngine,
  want: Set<number>,
  batch: number,
): Promise<Map<number, string[]>> {
  const found: Array<{ parent: number; name: string; ino: number }> = [];
  for await (const page of scanAll(kv, "A", batch)) {
    for (const [key, value] of page) {
      if (key[9] !== "D") continue;
      const e = decodeEntry(value);
      if (want.has(e.ino)) found.push({ parent: readU64(key, 1), name: key.slice(10), ino: e.ino });
    }
  }
  const dirs = new Map<number, string>([[ROOT_INO, ""]]);
  const dirPath = async (dir: number, depth = 0): Promise<string> => {
    const known = dirs.get(dir);
    if (known !== undefined) return known;
    const raw = await kv.txn((tx) => tx.get(attrKey(dir as Ino)), { readOnly: true });
    let path = `?inode ${dir}`;
    if (raw && depth < 4096) {
      const a = decodeAttr(dir as Ino, raw);
      if ((a.mode & S_IFMT) === S_IFDIR) {
        const name = await nameIn(kv, a.parent, dir, batch);
        if (name !== undefined) path = `${await dirPath(a.parent, depth + 1)}/${name}`;
      }
    }
    dirs.set(dir, path);
    return path;
  };
  const out = new Map<number, string[]>();
  for (const f of found) {
    const list = out.get(f.ino) ?? [];
    list.push(`${await dirPath(f.parent)}/${toText(f.name)}`);
    out.set(f.ino, list);
  }
  return out;
}

/** The name under which directory `parent` holds `ino`. */
async function nameIn(
  kv: KvEngine,
  parent: number,
  ino: number,
  batch: number,
): Promise<string | undefined> {
  for await (const page of scanAll(kv, entryPrefix(parent as Ino), batch)) {
    for (const [key, value] of page) {
      if (decodeEntry(value).ino === ino) return toText(key.slice(10));
    }
  }
  return undefined;
}

/** A byte-string name as text (UTF-8 decoded, lossy). */
function toText(name: string): string {
  const bytes = Uint8Array.from(name, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}
