/**
 * `slayerfs clone SRC DST` and the daemon's side of `clone` and `snapshot`: SRC and DST are
 * paths inside one mounted volume; the command finds the mount (`_mount_of.ts`), turns the paths
 * into paths from the volume root, and asks the mount's daemon over its control socket
 * (`_control.ts`) to make the metadata-only copy (`core/clone.ts`).
 *
 * @module
 */

import { basename, dirname, relative, resolve } from "node:path";
import type { Volume } from "../core/volume.ts";
import type { Session } from "../core/session.ts";
import type { Ino, Name } from "../core/types.ts";
import { Snapshots } from "../core/snapshots.ts";
import type { CloneResult } from "../core/clone.ts";
import { callControl, type ControlRequest } from "./_control.ts";
import { CliError, describe } from "./_errors.ts";
import { humanBytes } from "./_human.ts";
import { liveMountOf } from "./_mount_of.ts";
import type { ParsedArgs } from "./_spec.ts";
import type { MountState } from "./_state.ts";

/**
 * The daemon's handler of control requests for the volume `vol` served under `session`;
 * `changed` tells the kernel of each entry made or removed.
 */
export function controlHandler(
  vol: Volume,
  session: Session,
  changed: (parent: Ino, name: Name) => Promise<void>,
): (req: ControlRequest) => Promise<unknown> {
  const snaps = new Snapshots(vol.vfs.meta.kv, {
    sid: () => session.id,
    flush: () => vol.vfs.flushAll(),
    changed,
  });
  return async ({ op, args }) => {
    const [a = "", b = ""] = args;
    switch (op) {
      case "clone":
        return await snaps.clone(a, b);
      case "snapshot-create":
        return await snaps.create(a, b);
      case "snapshot-ls":
        return await snaps.list(a);
      case "snapshot-rm":
        return await snaps.remove(a, b);
      default:
        throw new Error(`Unknown control request "${op}"`);
    }
  };
}

/** A path inside a live mount: the mount's state and the path from the volume root. */
export interface VolumePath {
  /** The mount's mountpoint. */
  mountpoint: string;
  /** The daemon's state. */
  state: MountState;
  /** `/`-separated, from the volume root. */
  path: string;
}

/**
 * Where `path` is in its mount: its parent folder resolved (symlinks followed), its last name
 * kept as given (a symlink there is not followed). `mustExist` for the last name as well.
 */
export async function volumePath(path: string, mustExist: boolean): Promise<VolumePath> {
  const abs = resolve(path);
  let dir: string;
  try {
    dir = abs === "/" ? "/" : await Deno.realPath(dirname(abs));
    if (mustExist) await Deno.lstat(abs);
  } catch (err) {
    throw new CliError(`Cannot use "${path}": ${describe(err)}`);
  }
  const full = abs === "/" ? "/" : `${dir}/${basename(abs)}`;
  const { mountpoint, state } = await liveMountOf(dir);
  const rel = relative(mountpoint, full);
  if (rel.startsWith("..")) throw new CliError(`"${path}" is not inside a SlayerFS mount`);
  return { mountpoint, state, path: rel === "" ? "/" : rel };
}

/** Runs `slayerfs clone` with its checked arguments. */
export async function cmdClone(args: ParsedArgs): Promise<void> {
  const [srcArg, dstArg] = args.positionals as [string, string];
  const src = await volumePath(srcArg, true);
  const dst = await volumePath(dstArg, false);
  if (src.mountpoint !== dst.mountpoint) {
    throw new CliError(
      `"${srcArg}" and "${dstArg}" are on different mounts (${src.mountpoint}, ` +
        `${dst.mountpoint}): a clone stays inside one volume`,
    );
  }
  const started = performance.now();
  const r = await callControl(src.state.control, {
    op: "clone",
    args: [src.path, dst.path],
  }) as CloneResult;
  const ms = performance.now() - started;
  if (!args.flag("quiet")) {
    console.log(
      `Cloned ${srcArg} to ${dstArg}: ${r.inodes} inodes, ${humanBytes(r.bytes)} shared ` +
        `(no data copied) in ${ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`}`,
    );
  }
}
