/**
 * `slayerfs info PATH`: for a file, its inode, logical size, stored size (after compression and
 * dedup; inline blocks live in the metadata) and its chunks, slices and blocks with the object
 * each block is stored as; for a directory, a recursive summary (files, directories, length,
 * stored bytes) with a progress bar on big trees, like `juicefs info`.
 *
 * @module
 */

import { resolve } from "node:path";
import { BLOCK_DEDUP, BLOCK_INLINE, BLOCK_LZ4, type BlockRecord } from "../core/block_codec.ts";
import { Meta } from "../core/meta/mod.ts";
import { blockKey, resolveSegments, sliceBlocks } from "../core/slice.ts";
import { type Ino, S_IFDIR, S_IFMT, S_IFREG, type SliceId } from "../core/types.ts";
import { CliError } from "./_errors.ts";
import { humanBytes, Progress, table } from "./_human.ts";
import { openMeta } from "./_meta.ts";
import type { ParsedArgs } from "./_spec.ts";
import { liveMountOf } from "./_mount_of.ts";

/** Runs `slayerfs info` with its checked arguments. */
export async function cmdInfo(args: ParsedArgs): Promise<void> {
  const path = resolve(args.positionals[0]!);
  const { mountpoint, state } = await liveMountOf(path);
  if (state.meta.startsWith("mem:")) {
    throw new CliError(`info needs a shared metadata engine; "${state.meta}" lives in the daemon`);
  }
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(path);
  } catch {
    throw new CliError(`"${path}" does not exist`);
  }
  const kv = await openMeta(state.meta, true);
  try {
    const meta = await Meta.open(kv);
    // The root of the volume is inode 1 whatever the kernel reports for the mountpoint.
    const ino = (path === mountpoint ? 1 : st.ino) as Ino;
    const lines = st.isDirectory ? await dirInfo(meta, ino) : await fileInfo(meta, ino, st.size);
    console.log([path, ...lines].join("\n"));
  } finally {
    await kv.close();
  }
}

/** Stored bytes, each stored object counted once (dedup blobs and shared slices). */
class Stored {
  #seen = new Set<string>();
  /** Bytes of objects in the block store. */
  objectBytes = 0;
  /** Bytes of blocks kept in the metadata engine. */
  inlineBytes = 0;

  /** Counts one block; returns whether it was new. */
  add(id: SliceId, index: number, rec: BlockRecord | undefined, len: number): boolean {
    const name = rec?.hash && rec.flags & BLOCK_DEDUP ? toHex(rec.hash) : `${id}_${index}`;
    if (this.#seen.has(name)) return false;
    this.#seen.add(name);
    if (rec && rec.flags & BLOCK_INLINE) this.inlineBytes += rec.storedLen;
    else this.objectBytes += rec?.storedLen ?? len;
    return true;
  }

  /** `5.2 MiB in the block store, 300 B inline in the metadata`. */
  text(): string {
    return `${humanBytes(this.objectBytes)} in the block store, ` +
      `${humanBytes(this.inlineBytes)} inline in the metadata`;
  }
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** How one block is stored, for a block line. */
async function describeBlock(
  meta: Meta,
  id: SliceId,
  i: number,
  len: number,
  rec: BlockRecord | undefined,
): Promise<string> {
  const how = (rec && rec.flags & BLOCK_LZ4) ? "lz4" : "raw";
  if (rec && rec.flags & BLOCK_INLINE) {
    return `block ${i} (${humanBytes(len)}): inline in the metadata, ${
      humanBytes(rec.storedLen)
    } ${how}`;
  }
  const key = rec?.hash && rec.flags & BLOCK_DEDUP
    ? `${await meta.blob(rec.hash) ?? "a dedup blob not found"} (dedup)`
    : blockKey(id, i, len);
  return `block ${i} (${humanBytes(len)}): ${key}, ${humanBytes(rec?.storedLen ?? len)} ${how}`;
}

/**
 * Walks the visible blocks of file `ino`, counting them in `stored`; `each` gets every chunk's
 * and slice's line when the caller prints them.
 */
async function walkFile(
  meta: Meta,
  ino: Ino,
  stored: Stored,
  each?: (line: string) => void,
): Promise<number> {
  const bs = meta.format.blockSize;
  const chunks = await meta.listChunks(ino);
  for (const c of chunks) {
    const segs = resolveSegments(c.records).filter((s) => s.id !== 0);
    each?.(`chunk ${c.index}: ${c.records.length} slice records, ${segs.length} visible`);
    for (const s of segs) {
      each?.(`  [${s.pos}, ${s.pos + s.len}) slice ${s.id} (size ${s.size}) offset ${s.off}`);
      const recs = await meta.sliceBlockRecords(s.id);
      for (const [i, len] of sliceBlocks(s.size, bs)) {
        if ((i + 1) * bs <= s.off || i * bs >= s.off + s.len) continue;
        stored.add(s.id, i, recs[i], len);
        if (each) each(`    ${await describeBlock(meta, s.id, i, len, recs[i])}`);
      }
    }
  }
  return chunks.length;
}

async function fileInfo(meta: Meta, ino: Ino, size: number): Promise<string[]> {
  const stored = new Stored();
  const detail: string[] = [];
  const chunks = await walkFile(meta, ino, stored, (l) => detail.push(`  ${l}`));
  return [
    ...table([
      ["inode:", String(ino)],
      ["size:", `${humanBytes(size)} (${size} bytes)`],
      ["stored:", stored.text()],
      ["chunks:", String(chunks)],
    ]),
    ...detail,
  ];
}

async function dirInfo(meta: Meta, ino: Ino): Promise<string[]> {
  const stored = new Stored();
  const seen = new Set<Ino>();
  let files = 0;
  let dirs = 1;
  let others = 0;
  let length = 0;
  const queue: Ino[] = [ino];
  let listed = 0;
  const progress = new Progress(() => ({
    fraction: listed / (listed + queue.length),
    text: `${dirs} directories, ${files} files, ${humanBytes(length)}`,
  }), { afterMs: 1000 });
  try {
    while (queue.length) {
      const entries = await meta.listDir(queue.shift()!);
      listed++;
      const fresh = entries.filter((e) => (e.type & S_IFMT) !== S_IFDIR && !seen.has(e.ino));
      const attrs = await meta.getattrs(fresh.map((e) => e.ino));
      for (const e of entries) {
        if ((e.type & S_IFMT) === S_IFDIR) {
          dirs++;
          queue.push(e.ino);
        }
      }
      for (const [i, e] of fresh.entries()) {
        seen.add(e.ino); // a hard link counts once
        if ((e.type & S_IFMT) !== S_IFREG) {
          others++;
          continue;
        }
        files++;
        length += attrs[i]?.size ?? 0;
        await walkFile(meta, e.ino, stored);
      }
    }
  } finally {
    progress.done();
  }
  return table([
    ["inode:", String(ino)],
    ["files:", String(files)],
    ["directories:", String(dirs)],
    ...(others ? [["others:", `${others} (symlinks, devices, fifos, sockets)`]] : []),
    ["length:", `${humanBytes(length)} (${length} bytes)`],
    ["stored:", stored.text()],
  ]);
}
