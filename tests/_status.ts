/**
 * `slayerfs status --json` of a mount, as the block-layer tests read it: the store's GETs, the
 * random fill and the cache tiers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runCli, type SlayerMount } from "./_mount.ts";

/** The parts of `slayerfs status --json` these tests read. */
export interface MountStatus {
  storeGets?: number;
  randomFill?: { files: number; blocks: number };
  cache?: { droppedWrites?: number; tiers: Array<{ name: string; entries: number }> };
}

/** `slayerfs status --json` of `fs` (the daemon rewrites its state every 2 s). */
export async function mountStatus(fs: SlayerMount): Promise<MountStatus> {
  const r = await runCli(["status", "--json", fs.mnt]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Blocks in the disk tiers of `s`. */
export function diskBlocks(s: MountStatus): number {
  return (s.cache?.tiers ?? []).filter((t) => t.name !== "memory")
    .reduce((n, t) => n + t.entries, 0);
}
