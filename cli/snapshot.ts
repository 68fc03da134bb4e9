/**
 * `slayerfs snapshot create|ls|rm PATH [NAME]`: read-only snapshots of a folder of a mounted
 * volume, visible as `PATH/.snapshots/NAME` (`core/snapshots.ts`), made by the mount's daemon
 * through its control socket (`_control.ts`).
 *
 * @module
 */

import type { CloneResult } from "../core/clone.ts";
import type { SnapshotInfo } from "../core/snapshots.ts";
import { callControl } from "./_control.ts";
import { CliError } from "./_errors.ts";
import { humanBytes, table } from "./_human.ts";
import type { ParsedArgs } from "./_spec.ts";
import { volumePath } from "./clone.ts";

/** Runs `slayerfs snapshot` with its checked arguments. */
export async function cmdSnapshot(args: ParsedArgs): Promise<void> {
  const [action, pathArg, name] = args.positionals as [string, string, string?];
  const at = await volumePath(pathArg, true);
  const quiet = args.flag("quiet");
  if (action === "ls") {
    if (name !== undefined) throw new CliError("slayerfs snapshot ls takes PATH only", 2);
    const list = await callControl(at.state.control, {
      op: "snapshot-ls",
      args: [at.path],
    }) as SnapshotInfo[];
    if (args.flag("json")) {
      console.log(JSON.stringify(list, null, 2));
    } else if (list.length) {
      console.log(
        table([
          ["name", "created"],
          ...list.map((s) => [s.name, new Date(s.created).toISOString()]),
        ], "").join("\n"),
      );
    } else if (!quiet) {
      console.log(`No snapshots of ${pathArg}`);
    }
    return;
  }
  if (name === undefined) throw new CliError(`slayerfs snapshot ${action} needs PATH and NAME`, 2);
  if (action === "create") {
    const r = await callControl(at.state.control, {
      op: "snapshot-create",
      args: [at.path, name],
    }) as CloneResult;
    if (!quiet) {
      console.log(
        `Snapshot ${pathArg}/.snapshots/${name}: ${r.inodes} inodes, ${humanBytes(r.bytes)} shared`,
      );
    }
  } else if (action === "rm") {
    const r = await callControl(at.state.control, {
      op: "snapshot-rm",
      args: [at.path, name],
    }) as { freedSlices: number };
    if (!quiet) {
      console.log(
        `Removed snapshot ${name} of ${pathArg}: ${r.freedSlices} slices no longer referenced ` +
          `(slayerfs gc --delete removes their objects now, the next mount otherwise)`,
      );
    }
  } else {
    throw new CliError(`Unknown snapshot action "${action}": expected create, ls or rm`, 2);
  }
}
