/**
 * `slayerfs info PATH`: a file's inode, size, chunks, slices and the blocks that hold it.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { Meta } from "../core/meta/mod.ts";
import { blockKey, resolveSegments, sliceBlocks } from "../core/slice.ts";
import type { Ino } from "../core/types.ts";
import { CliError } from "./_errors.ts";
import { openMeta } from "./_meta.ts";
import type { ParsedArgs } from "./_spec.ts";
import { readState } from "./_state.ts";

/** Runs `slayerfs info` with its checked arguments. */
export async function cmdInfo(args: ParsedArgs): Promise<void> {
  const path = resolve(args.positionals[0]!);
  const { mountInfo } = await import("../ffi/mounts.ts");
  let m: { mountpoint: string } | undefined;
  for (let dir = path; !m; dir = dirname(dir)) {
    m = mountInfo(dir).findLast((x) => x.fsType === "fuse.slayerfs");
    if (dir === "/") break;
  }
  if (!m) throw new CliError(`"${path}" is not inside a SlayerFS mount`);
  const state = await readState(m.mountpoint);
  if (!state) throw new CliError(`No daemon state for the mount at "${m.mountpoint}"`);
  if (!state.meta.startsWith("sqlite3://")) {
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
    const ino = st.ino as Ino;
    const chunks = await meta.listChunks(ino);
    const bs = meta.format.blockSize;
    console.log(`${path}\n  inode: ${ino}\n  size: ${st.size}\n  chunks: ${chunks.length}`);
    for (const c of chunks) {
      const segs = resolveSegments(c.records);
      console.log(`  chunk ${c.index}: ${c.records.length} slice records`);
      for (const s of segs) {
        if (s.id === 0) continue;
        console.log(
          `    [${s.pos}, ${s.pos + s.len}) slice ${s.id} (size ${s.size}) offset ${s.off}`,
        );
        for (const [i, len] of sliceBlocks(s.size, bs)) {
          if ((i + 1) * bs <= s.off || i * bs >= s.off + s.len) continue;
          console.log(`      block ${blockKey(s.id, i, len)} (${len} bytes)`);
        }
      }
    }
  } finally {
    await kv.close();
  }
}
