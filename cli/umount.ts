/**
 * `slayerfs umount [--lazy] [--flush] MOUNTPOINT`: unmounts, then waits for the daemon to finish
 * and exit. With `--writeback` blocks not uploaded yet, it says how many are left and where they
 * are staged (they upload at the next mount); `--flush` first waits until every staged block is
 * uploaded.
 *
 * @module
 */

import { resolve } from "node:path";
import { CliError } from "./_errors.ts";
import { humanBytes } from "./_human.ts";
import type { ParsedArgs } from "./_spec.ts";
import { type MountState, processAlive, readState } from "./_state.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `slayerfs umount` with its checked arguments. */
export async function cmdUmount(args: ParsedArgs): Promise<void> {
  const mnt = resolve(args.positionals[0]!);
  const { isMounted, forceUnmount } = await import("../ffi/mounts.ts");
  if (!isMounted(mnt)) throw new CliError(`"${mnt}" is not mounted`);
  let state = await readState(mnt);
  if (args.flag("flush") && state && processAlive(state.pid)) {
    state = await waitForUploads(mnt, state);
  }
  if (args.flag("lazy")) {
    await forceUnmount(mnt);
  } else {
    const r = await new Deno.Command("fusermount3", { args: ["-u", mnt], stderr: "piped" })
      .output().catch(() => undefined);
    if (!r || !r.success) {
      const umount = await new Deno.Command("umount", { args: [mnt], stderr: "piped" }).output();
      if (!umount.success) {
        const msg = new TextDecoder().decode(umount.stderr).trim() ||
          (r ? new TextDecoder().decode(r.stderr).trim() : "");
        throw new CliError(`Cannot unmount "${mnt}": ${msg || "busy"} (try --lazy)`);
      }
    }
  }
  // Wait for the daemon to finish flushing and exit.
  if (state && processAlive(state.pid)) {
    for (let i = 0; i < 1200 && processAlive(state.pid); i++) await sleep(50);
  }
  console.log(`Unmounted ${mnt}`);
  const staged = state?.writeback;
  if (staged?.dir) {
    const left = await stagedFiles(staged.dir);
    if (left.count > 0) {
      console.error(
        `slayerfs: warning: ${left.count} blocks (${humanBytes(left.bytes)}) written with ` +
          `--writeback are not uploaded yet; they stay staged in ${staged.dir} and upload at the ` +
          `next mount of this volume (umount --flush waits for them)`,
      );
    }
  }
}

/** Waits until the daemon's state shows nothing staged; returns that state. */
async function waitForUploads(mnt: string, state: MountState): Promise<MountState> {
  const since = Date.now();
  let said = 0;
  for (let s: MountState | undefined = state; s && processAlive(s.pid); s = await readState(mnt)) {
    const wb = s.writeback;
    const fresh = Date.parse(s.updated) >= since - 100;
    if (!wb || (fresh && wb.stagedObjects === 0 && wb.uploading === 0)) return s;
    if (wb.stagedObjects > 0 && Date.now() - said >= 10_000) {
      said = Date.now();
      console.error(
        `slayerfs: waiting for ${wb.stagedObjects} staged blocks (${
          humanBytes(wb.stagedBytes)
        }) to upload from ${wb.dir ?? "the writeback folder"}`,
      );
    }
    await sleep(250);
    state = s;
  }
  return state;
}

/** The staged blocks left in a writeback folder (its temporary files and lock left out). */
async function stagedFiles(dir: string): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || e.name.startsWith(".")) continue; // temporary files, the mount's lock
      count++;
      bytes += await Deno.stat(`${dir}/${e.name}`).then((s) => s.size, () => 0);
    }
  } catch { /* gone: nothing left */ }
  return { count, bytes };
}
