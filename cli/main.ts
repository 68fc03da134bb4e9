/**
 * The `slayerfs` command line: format, mount, umount, status, info, warmup, gc. One module per
 * command family in this folder; this one dispatches and turns errors into one line and an exit
 * code.
 *
 * @module
 */

import { BackendError, kvSchemes, storeSchemes } from "../backends/mod.ts";
import { FsError } from "../core/errno.ts";
import { CliError, describe } from "./_errors.ts";
import { cmdFormat } from "./format.ts";
import { cmdGc } from "./gc.ts";
import { cmdInfo } from "./info.ts";
import { cmdMount } from "./mount.ts";
import { cmdStatus } from "./status.ts";
import { cmdUmount } from "./umount.ts";
import { cmdWarmup } from "./warmup.ts";

/** How the help shows a URL of each known scheme; another registered scheme shows as `NAME://...`. */
const URL_EXAMPLES: Record<string, string> = {
  sqlite3: "sqlite3:///abs/path/meta.db",
  file: "file:///abs/dir",
  mem: "mem://[name]",
  s3: "s3://BUCKET/PREFIX?endpoint=URL",
};

function urlExamples(schemes: string[]): string {
  return schemes.map((s) => URL_EXAMPLES[s] ?? `${s}://...`).join(", ");
}

function usage(): string {
  return `SlayerFS: a POSIX filesystem on object storage

Usage:
  slayerfs format [--storage URL] [--block-size SIZE] [--compress lz4|none] [--dedup] [--inline-max SIZE] [--capacity SIZE]
                  META_URL NAME
  slayerfs mount [--foreground] [-o OPTS] [--cache-size MIB] [--cache-dir DIR]...
                 [--cache-dir-size MIB] [--no-cache-dir] [--writeback [--writeback-dir DIR]
                 [--writeback-size MIB]] META_URL MOUNTPOINT
  slayerfs mount MOUNTPOINT            (the embedded default volume in $SLAYERFS_HOME)
  slayerfs umount [--lazy] MOUNTPOINT
  slayerfs status MOUNTPOINT|META_URL
  slayerfs info PATH
  slayerfs warmup [--threads N] [--quiet] PATH...   (fetch files into the cache)
  slayerfs gc [--delete] [--min-age SECONDS] META_URL
                 (report, or delete, objects no file refers to: pending deletes and leaked
                 uploads older than --min-age, default 3600; safe while mounted)

Metadata URLs: ${urlExamples(kvSchemes())}
Storage URLs:  ${urlExamples(storeSchemes())}
Mount options (-o, comma separated): allow_other, ro, debug, nonempty, writeback_cache,
  fs_flock, loop=js|mt, loop_spin_us=N, attr_timeout=SEC, entry_timeout=SEC,
  io_deadline=SEC (EIO for a request the store cannot answer in time; default 60, 0 = none)
`;
}

/** The commands by name, each run with the arguments after its name. */
const COMMANDS = new Map<string, (args: string[]) => Promise<void>>([
  ["format", cmdFormat],
  ["mount", cmdMount],
  ["umount", cmdUmount],
  ["unmount", cmdUmount],
  ["status", cmdStatus],
  ["info", cmdInfo],
  ["warmup", cmdWarmup],
  ["gc", cmdGc],
]);

/** Runs the CLI with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  try {
    if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") {
      console.log(usage());
      return cmd === undefined ? 2 : 0;
    }
    const run = COMMANDS.get(cmd);
    if (!run) throw new CliError(`Unknown command "${cmd}" (see slayerfs --help)`, 2);
    await run(rest);
    return 0;
  } catch (err) {
    console.error(`slayerfs: ${describe(err)}`);
    if (err instanceof CliError) return err.exitCode;
    if (err instanceof BackendError) return 2;
    if (!(err instanceof FsError) && err instanceof Error && Deno.env.get("SLAYERFS_DEBUG")) {
      console.error(err.stack);
    }
    return 1;
  }
}
