/**
 * The mount(8) helper (`/sbin/mount.slayerfs`, started by `ops/mount.slayerfs`): mount(8) runs
 * `mount.slayerfs SPEC DIR [-sfnv] [-o OPTS]` for an `/etc/fstab` line of type `slayerfs` or for
 * `mount -t slayerfs`. This turns that into `slayerfs mount -d` (a background daemon, returning
 * once mounted):
 *
 * - SPEC is the metadata URL (`none`: the `--config` file's, or the default volume);
 * - options only mount(8) or fstab care about are dropped (`defaults`, `_netdev`, `nofail`,
 *   `noauto`, `user`, `x-*`, `rw`, and `nosuid`, `nodev`, `exec`, `async`, SlayerFS's defaults);
 * - `noatime`, `relatime` and `strictatime` become `--atime-mode`, `config=FILE` `--config FILE`;
 * - SlayerFS's `-o` options (`allow_other`, `ro`, `noexec`, `attr_timeout=1`, ...) stay `-o`;
 * - `mount` options as `NAME=VALUE` or `NAME` (`cache-size=1G`, `writeback`) become `--NAME VALUE`.
 *
 * `-f` (fake) translates the options and mounts nothing, `-v` prints the `slayerfs mount` command, `-s`
 * (sloppy) drops unknown options with a warning instead of failing, `-n` is ignored. The exit code
 * is mount(8)'s: 1 for a usage error, 32 for a mount that failed.
 *
 * @module
 */

import { findCommand, MOUNT_OPTIONS } from "./_commands.ts";
import { Redactor } from "../core/_log_output.ts";
import { CliError } from "./_errors.ts";
import { main } from "./main.ts";
import { closest, didYouMean } from "./_suggest.ts";

/** Options of mount(8) and fstab that SlayerFS leaves out (or that are its defaults anyway). */
const DROPPED = new Set([
  "defaults",
  "_netdev",
  "nofail",
  "noauto",
  "auto",
  "user",
  "nouser",
  "users",
  "owner",
  "group",
  "rw",
  "nosuid",
  "nodev",
  "exec",
  "async",
]);
const ATIME = new Set(["noatime", "relatime", "strictatime"]);
const O_NAMES = MOUNT_OPTIONS.map((o) => o.name.replace(/=.*$/, ""));

/** What mount(8) asked for, as a `slayerfs mount` command line. */
export interface HelperCall {
  /** The `slayerfs` arguments (`mount -d ... META_URL DIR`). */
  readonly args: string[];
  /** `-f`: check only, mount nothing. */
  readonly fake: boolean;
  /** `-v`: say what is run. */
  readonly verbose: boolean;
  /** Options dropped with `-s`, for a warning. */
  readonly ignored: string[];
}

/** Translates mount(8)'s helper arguments; a bad one is a usage error (exit 2). */
export function helperArgs(argv: readonly string[]): HelperCall {
  const mount = findCommand("mount")!;
  const long = mount.options.filter((o) =>
    !["o", "config", "background", "foreground"].includes(o.name)
  );
  const positionals: string[] = [];
  const opts: string[] = [];
  let fake = false, verbose = false, sloppy = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-o" || a === "-t" || a === "-N") {
      if (argv[i + 1] === undefined) throw new CliError(`mount.slayerfs: ${a} needs a value`, 2);
      if (a === "-o") opts.push(argv[i + 1]!);
      i++;
    } else if (a.startsWith("-o")) {
      opts.push(a.slice(2));
    } else if (/^-[sfnvri]+$/.test(a)) {
      fake ||= a.includes("f");
      verbose ||= a.includes("v");
      sloppy ||= a.includes("s");
    } else if (a.startsWith("-")) {
      throw new CliError(`mount.slayerfs: unknown flag "${a}" (expected -s, -f, -n, -v or -o)`, 2);
    } else {
      positionals.push(a);
    }
  }
  if (positionals.length !== 2) {
    throw new CliError(
      "mount.slayerfs: usage: mount.slayerfs META_URL|none MOUNTPOINT [-sfnv] [-o OPTIONS]",
      2,
    );
  }
  const [spec, dir] = positionals as [string, string];
  const flags: string[] = [];
  const fuse: string[] = [];
  const ignored: string[] = [];
  for (const opt of opts.flatMap((o) => o.split(",")).filter(Boolean)) {
    const eq = opt.indexOf("=");
    const [name, value] = eq < 0 ? [opt, undefined] : [opt.slice(0, eq), opt.slice(eq + 1)];
    const o = long.find((x) => x.name === name);
    if (DROPPED.has(opt) || name.startsWith("x-") || name === "comment") continue;
    if (ATIME.has(opt)) flags.push("--atime-mode", opt);
    else if (name === "config" && value !== undefined) flags.push("--config", value);
    else if (O_NAMES.includes(name)) fuse.push(opt);
    else if (o?.kind === "flag" && (value === undefined || value === "true")) {
      flags.push(`--${name}`);
    } else if (o?.kind === "flag" && value === "false") continue;
    else if (o !== undefined && o.kind !== "flag" && value !== undefined) {
      flags.push(`--${name}`, value);
    } else if (sloppy) ignored.push(opt);
    else {
      const why = o === undefined
        ? `unknown option "${name}"${
          didYouMean(closest(name, [...O_NAMES, ...long.map((x) => x.name), "config"]))
        }`
        : `option "${name}" ${o.kind === "flag" ? "takes no value" : "needs a value (NAME=VALUE)"}`;
      throw new CliError(`mount.slayerfs: ${why}`, 2);
    }
  }
  const args = [
    "mount",
    "--background",
    ...flags,
    ...(fuse.length ? ["-o", fuse.join(",")] : []),
    ...(spec === "none" ? [] : [spec]),
    dir,
  ];
  return { args, fake, verbose, ignored };
}

/** Runs the helper with mount(8)'s arguments; returns mount(8)'s exit code. */
export async function mountHelper(argv: readonly string[]): Promise<number> {
  let call: HelperCall;
  try {
    call = helperArgs(argv);
  } catch (err) {
    console.error((err as Error).message);
    return 1;
  }
  for (const o of call.ignored) console.error(`mount.slayerfs: ignoring unknown option "${o}"`);
  if (call.verbose) {
    console.error(`mount.slayerfs: slayerfs ${new Redactor().redact(call.args.join(" "))}`);
  }
  if (call.fake) return 0;
  const code = await main(call.args);
  return code === 0 ? 0 : code === 2 ? 1 : 32;
}

if (import.meta.main) Deno.exit(await mountHelper(Deno.args));
