/**
 * The `slayerfs` command line: format, mount, umount, status, stats, info, warmup, gc, dump,
 * load, fsck, quota, bench, doctor, sync, import, image, docker-plugin, csi, destroy, config, completion,
 * version. What each command
 * takes is declared once in `_commands.ts`; this module reads the command line against it
 * (`_spec.ts`), answers `--help` and `--version`, runs the command's module, and turns errors into
 * one line and an exit code.
 *
 * @module
 */

import { BackendError } from "../backends/mod.ts";
import { FsError } from "../core/errno.ts";
import { COMMANDS, findCommand } from "./_commands.ts";
import { applySettings } from "./_config.ts";
import { CliError, describe } from "./_errors.ts";
import { commandHelp, mainHelp } from "./_help.ts";
import { hasSettings, parseCommand, type ParsedArgs } from "./_spec.ts";
import { closest, didYouMean } from "./_suggest.ts";
import { cmdBench } from "./bench.ts";
import { cmdCompletion } from "./completion.ts";
import { cmdDoctor } from "./doctor.ts";
import { cmdConfig } from "./config.ts";
import { cmdDump, cmdLoad } from "./dump.ts";
import { cmdFsck } from "./fsck.ts";
import { cmdDestroy } from "./destroy.ts";
import { cmdDockerPlugin } from "./docker_plugin.ts";
import { cmdFormat } from "./format.ts";
import { cmdGc } from "./gc.ts";
import { cmdImage } from "./image.ts";
import { cmdInfo } from "./info.ts";
import { cmdMount } from "./mount.ts";
import { cmdQuota } from "./quota.ts";
import { cmdStats } from "./stats.ts";
import { cmdStatus } from "./status.ts";
import { cmdSync } from "./sync.ts";
import { cmdImport } from "./import.ts";
import { cmdUmount } from "./umount.ts";
import { cmdVersion } from "./version.ts";
import { cmdWarmup } from "./warmup.ts";
import { cmdClone } from "./clone.ts";
import { cmdSnapshot } from "./snapshot.ts";

/** The module that runs each command of `_commands.ts`, by name. */
const RUN: Record<string, (args: ParsedArgs) => Promise<void>> = {
  format: cmdFormat,
  mount: cmdMount,
  umount: cmdUmount,
  status: cmdStatus,
  stats: cmdStats,
  info: cmdInfo,
  warmup: cmdWarmup,
  clone: cmdClone,
  snapshot: cmdSnapshot,
  gc: cmdGc,
  dump: cmdDump,
  load: cmdLoad,
  fsck: cmdFsck,
  bench: cmdBench,
  doctor: cmdDoctor,
  sync: cmdSync,
  import: cmdImport,
  quota: cmdQuota,
  image: cmdImage,
  "docker-plugin": cmdDockerPlugin,
  // gRPC loads only for this command.
  csi: async (args) => await (await import("./csi.ts")).cmdCsi(args),
  destroy: cmdDestroy,
  config: cmdConfig,
  completion: cmdCompletion,
  version: cmdVersion,
};

/** Runs the CLI with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  try {
    if (cmd === undefined) {
      console.error(mainHelp());
      return 2;
    }
    if (cmd === "help" || cmd === "--help" || cmd === "-h") {
      const about = rest[0] === undefined ? undefined : findCommand(rest[0]);
      if (rest[0] !== undefined && !about) throw unknownCommand(rest[0]);
      console.log(about ? commandHelp(about) : mainHelp());
      return 0;
    }
    if (cmd === "--version" || cmd === "-V") {
      await cmdVersion();
      return 0;
    }
    const spec = findCommand(cmd);
    if (!spec) throw unknownCommand(cmd);
    const parsed = parseCommand(spec, rest);
    if (parsed.flag("help")) {
      console.log(commandHelp(spec));
      return 0;
    }
    // The one place the --config file and SLAYERFS_* variables join the command line.
    await RUN[spec.name]!(hasSettings(spec) ? applySettings(spec, parsed) : parsed);
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

function unknownCommand(name: string): CliError {
  const known = name.startsWith("-") ? ["--help", "--version"] : COMMANDS.map((c) => c.name);
  const near = closest(name, known);
  return new CliError(`Unknown command "${name}"${didYouMean(near)} (see slayerfs --help)`, 2);
}
