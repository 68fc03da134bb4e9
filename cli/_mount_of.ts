/**
 * The SlayerFS mount that holds a path: walks up from any path inside a mount to its mountpoint,
 * reads the daemon's state file, and tells a dead mount (daemon gone, `ENOTCONN`) from a live one.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { CliError } from "./_errors.ts";
import { type MountState, processAlive, readState, runDir } from "./_state.ts";

/** A live SlayerFS mount and what its daemon last recorded. */
export interface LiveMount {
  /** The absolute mountpoint. */
  mountpoint: string;
  /** The daemon's state file. */
  state: MountState;
}

/** The mountpoint of the innermost SlayerFS mount holding `path`, if any (never touches it). */
export async function slayerMountpoint(path: string): Promise<string | undefined> {
  const { mountInfo } = await import("../ffi/mounts.ts");
  for (let dir = resolve(path);; dir = dirname(dir)) {
    const m = mountInfo(dir).findLast((x) => x.fsType === "fuse.slayerfs");
    if (m) return m.mountpoint;
    if (dir === "/") return undefined;
  }
}

/** Whether the mount at `mnt` answers: `false` for `ENOTCONN` (its daemon died). */
async function answers(mnt: string): Promise<boolean> {
  try {
    await Deno.stat(mnt);
    return true;
  } catch (err) {
    return !(err instanceof Error && /not connected|os error 107/i.test(err.message));
  }
}

/**
 * The live SlayerFS mount holding `path`. Throws a {@linkcode CliError} (exit 1) for a path
 * outside any SlayerFS mount, and for a dead mount, saying so and how to clear it.
 */
export async function liveMountOf(path: string): Promise<LiveMount> {
  const abs = resolve(path);
  const mountpoint = await slayerMountpoint(abs);
  if (mountpoint === undefined) throw new CliError(`"${abs}" is not inside a SlayerFS mount`);
  const state = await readState(mountpoint);
  const live = await answers(mountpoint);
  if (state === undefined && live) {
    throw new CliError(
      `No state of the mount at "${mountpoint}" in ${runDir()} (mounted by another user, or ` +
        `with another SLAYERFS_HOME?)`,
    );
  }
  if (state === undefined || !live || !processAlive(state.pid)) {
    const who = state ? `its daemon (pid ${state.pid}) is gone` : "its daemon is gone";
    throw new CliError(
      `The mount at "${mountpoint}" is dead: ${who} (Transport endpoint is not connected); ` +
        `mount it again or run slayerfs umount ${mountpoint}`,
    );
  }
  return { mountpoint, state };
}
