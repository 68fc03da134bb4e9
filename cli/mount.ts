/**
 * `slayerfs mount [options] META_URL MOUNTPOINT` (or `MOUNTPOINT` alone, for the embedded default
 * volume): checks the arguments, the mountpoint and libfuse3, then serves in the foreground
 * (`serve.ts`) or starts a background daemon (`_daemonize.ts`).
 *
 * @module
 */

import type { AtimeMode } from "../core/_atime.ts";
import { resolve } from "node:path";
import { openKvEngine } from "../backends/mod.ts";
import { Meta } from "../core/meta/mod.ts";
import { formatVolume } from "../core/volume.ts";
import { parseSize } from "../core/format.ts";
import { makePrivateDir } from "../core/_private_fs.ts";
import { findCommand, MOUNT_OPTIONS } from "./_commands.ts";
import { effectiveSettings, outranks } from "./_config.ts";
import { daemonize } from "./_daemonize.ts";
import { CliError, describe } from "./_errors.ts";
import { openMeta } from "./_meta.ts";
import { volumeKeyOf } from "./_encrypt_key.ts";
import { type CommandSpec, type ParsedArgs, usageError } from "./_spec.ts";
import { closest, didYouMean } from "./_suggest.ts";
import { home, makeHomeDir, processAlive, readState, stateFile } from "./_state.ts";
import { checkMetaUrl } from "./_urls.ts";
import { type MountOpts, resolveSubdir, serve } from "./serve.ts";
import { telemetryOptions } from "./_telemetry.ts";
import { TimeWindow } from "../core/_bandwidth.ts";

/** The `-o` option names (without `=VALUE`). */
const KNOWN_O = MOUNT_OPTIONS.map((o) => o.name.replace(/=.*$/, ""));

const MiB = 2 ** 20;

/** Runs `slayerfs mount` with its checked arguments. */
export async function cmdMount(args: ParsedArgs): Promise<void> {
  const spec = findCommand("mount")!;
  // Both given: the one from the higher source wins (a flag over the settings file).
  let foreground = args.flag("foreground");
  if (foreground && args.flag("background")) {
    const [fg, bg] = [args.source("foreground"), args.source("background")];
    if (fg === bg) {
      throw usageError(spec, "Choose one of -d/--background and -f/--foreground", false);
    }
    foreground = outranks(fg, bg);
  }
  let metaUrl: string | undefined;
  let mnt: string;
  if (args.positionals.length === 2) {
    [metaUrl, mnt] = args.positionals as [string, string];
  } else {
    mnt = args.positionals[0]!;
    // `mount META_URL` with the mountpoint forgotten, not the default volume's mountpoint.
    if (/^[a-z][a-z0-9+.-]*:/i.test(mnt) && !await isDirectory(mnt)) {
      throw usageError(spec, `Missing MOUNTPOINT after META_URL "${mnt}"`);
    }
  }
  const upgrade = args.flag("upgrade");
  if (upgrade && args.flag("supervise")) {
    throw usageError(
      spec,
      "--upgrade keeps the running daemon's supervisor: leave out --supervise",
      false,
    );
  }
  const options = mountOptions(args.list("o"));
  const opts: MountOpts = {
    foreground,
    options,
    cacheMiB: args.number("cache-size") / MiB,
    cacheDirs: args.list("cache-dir").map((d) => resolve(d)),
    noCacheDir: args.flag("no-cache-dir"),
    cacheLargeWrite: args.flag("cache-large-write"),
    // Unset: a share of the free space (see serve.ts).
    cacheDirMiB: args.has("cache-dir-size") ? args.number("cache-dir-size") / MiB : undefined,
    writeback: args.flag("writeback"),
    writebackDir: args.has("writeback-dir") ? resolve(args.string("writeback-dir")!) : undefined,
    writebackMiB: args.has("writeback-size") ? args.number("writeback-size") / MiB : undefined,
    log: args.string("log") ?? `${home()}/slayerfs.log`,
    ...telemetryOptions(args),
    sessionTimeoutSec: args.number("session-timeout"),
    atimeMode: (args.string("atime-mode") ?? "noatime") as AtimeMode,
    settings: mountSettings(spec, args),
    ...(args.has("encrypt-key") ? { encryptKeyFile: args.string("encrypt-key")! } : {}),
    subdir: args.string("subdir"),
    uploadLimitMbit: args.has("upload-limit") ? args.number("upload-limit") : undefined,
    downloadLimitMbit: args.has("download-limit") ? args.number("download-limit") : undefined,
    uploadWindow: args.string("upload-window"),
  };
  if (opts.uploadWindow !== undefined) {
    if (!opts.writeback) {
      throw usageError(
        spec,
        "--upload-window needs --writeback (uploads wait in the stage)",
        false,
      );
    }
    try {
      new TimeWindow(opts.uploadWindow);
    } catch (err) {
      throw usageError(spec, `Invalid --upload-window: ${(err as Error).message}`, false);
    }
  }
  if (!(opts.sessionTimeoutSec > 0)) {
    throw usageError(spec, `--session-timeout must be more than 0 seconds`);
  }
  mnt = resolve(mnt);
  // libfuse and /dev/fuse before anything is made: a failure leaves no volume or mountpoint.
  await checkLibfuse();
  if (upgrade) return await upgradeMount(args, metaUrl, mnt, opts);
  // A daemon started to take a live connection over (a supervisor's restart): the mount is
  // there, and looking at it would wait for this very daemon.
  if (opts.foreground && Deno.env.get("SLAYERFS_TAKEOVER")) {
    return await serve(metaUrl ?? (await readState(mnt))?.meta ?? "", mnt, opts);
  }
  if (metaUrl === undefined) {
    metaUrl = await ensureDefaultVolume();
  } else {
    // The URL and the volume first: a mistake there must not create the mountpoint.
    checkMetaUrl(metaUrl);
    if (!metaUrl.startsWith("mem:")) {
      // ... and the key of an encrypted volume: a missing or wrong one fails here, at once.
      await volumeKeyOf(metaUrl, opts.encryptKeyFile);
      const kv = await openMeta(metaUrl, true);
      try {
        // A missing --subdir fails the mount here, before a daemon starts (as JuiceFS does).
        if (opts.subdir !== undefined) await resolveSubdir(kv, opts.subdir);
      } finally {
        await kv.close();
      }
    }
  }
  const madeMountpoint = await prepareMountpoint(mnt, options.has("nonempty"));
  try {
    const supervised = args.flag("supervise");
    if (opts.foreground && supervised) {
      const { supervise } = await import("./_supervise.ts");
      const { configureDaemonLogging } = await import("./_telemetry.ts");
      configureDaemonLogging({ ...opts, logMaxBytes: 0 }, false, mnt); // rotation: the daemon's
      return await supervise(daemonArgs(args.raw), mnt);
    }
    if (opts.foreground) return await serve(metaUrl, mnt, opts);
    const inner = args.raw.filter((a) => a !== "-d" && a !== "--background");
    await daemonize(inner, mnt, opts.log, {
      ...(supervised ? { ready: (s, pid) => s.supervisor === pid } : {}),
    });
  } catch (err) {
    if (madeMountpoint) await Deno.remove(mnt).catch(() => {});
    throw err;
  }
}

/**
 * The settings the state file records: how the CLI runs the daemon (`--background`, and the
 * `--foreground` it adds for the daemon itself) is not one of them.
 */
function mountSettings(spec: CommandSpec, args: ParsedArgs): Record<string, unknown> {
  const { background: _b, foreground: _f, ...settings } = effectiveSettings(spec, args);
  return settings;
}

async function isDirectory(path: string): Promise<boolean> {
  return await Deno.stat(path).then((st) => st.isDirectory, () => false);
}

/** The `-o` options (each a comma-separated list) by name; unknown or bad ones are usage errors. */
function mountOptions(list: string[]): Map<string, string> {
  const options = new Map<string, string>();
  for (const o of list.flatMap((s) => s.split(","))) {
    if (!o) continue;
    const [k, v = ""] = o.split("=", 2) as [string, string?];
    if (!KNOWN_O.includes(k)) {
      throw new CliError(
        `Unknown mount option "${k}"${didYouMean(closest(k, KNOWN_O))} (see slayerfs mount --help)`,
        2,
      );
    }
    options.set(k, v);
  }
  if (options.has("allow_other") && options.has("no_allow_other")) {
    throw new CliError("Mount options allow_other and no_allow_other contradict each other", 2);
  }
  for (const k of ["suid", "dev", "rootfs"]) {
    if (options.has(k) && Deno.uid() !== 0) {
      throw new CliError(`Mount option ${k} needs root (the kernel allows it only to root)`, 2);
    }
  }
  if (options.has("loop") && options.get("loop") !== "js" && options.get("loop") !== "mt") {
    throw new CliError(`Invalid mount option loop=${options.get("loop")}: expected js or mt`, 2);
  }
  for (
    const k of ["attr_timeout", "entry_timeout", "negative_timeout", "loop_spin_us", "io_deadline"]
  ) {
    const v = options.get(k);
    if (v !== undefined && !(v !== "" && Number(v) >= 0)) {
      throw new CliError(`Invalid mount option ${k}=${v}: expected a number >= 0`, 2);
    }
  }
  const around = options.get("read_around");
  if (around !== undefined) {
    let bytes = NaN;
    try {
      bytes = parseSize(around);
    } catch { /* reported below */ }
    if (!(bytes >= 0 && bytes % 4096 === 0 && bytes <= 1 << 20)) {
      throw new CliError(
        `Invalid mount option read_around=${around}: expected a size in whole 4 KiB pages ` +
          "up to 1M (e.g. 64K), or 0 to turn it off",
        2,
      );
    }
  }
  for (const k of ["random_fill", "readahead"]) {
    const v = options.get(k);
    if (v === undefined) continue;
    try {
      parseSize(v);
    } catch (err) {
      throw new CliError(`Invalid mount option ${k}=${v}: ${(err as Error).message}`, 2);
    }
  }
  return options;
}

async function ensureDefaultVolume(): Promise<string> {
  const dir = `${home()}/default`;
  await makeHomeDir(dir);
  await makePrivateDir(dir, () => true);
  const metaUrl = `sqlite3://${dir}/meta.db`;
  const kv = await openKvEngine(metaUrl);
  try {
    if (!await Meta.readFormat(kv)) {
      await formatVolume(kv, { name: "default", storage: `file://${dir}/data` });
      console.error(`slayerfs: formatted the default volume in ${dir}`);
    }
  } finally {
    await kv.close();
  }
  return metaUrl;
}

async function checkLibfuse(): Promise<void> {
  const { loadLibfuse } = await import("../ffi/libfuse.ts");
  try {
    loadLibfuse();
  } catch (err) {
    throw new CliError(describe(err));
  }
  try {
    (await Deno.open("/dev/fuse", { read: true, write: true })).close();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new CliError("/dev/fuse is missing: load the fuse kernel module (modprobe fuse)");
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new CliError(
        "Failed to open /dev/fuse: Permission denied (mount as root, or let this user read and " +
          "write /dev/fuse: chmod 666 /dev/fuse, as most distributions ship it)",
      );
    }
    throw new CliError(`Failed to open /dev/fuse: ${describe(err)}`);
  }
}

/**
 * Checks that `mnt` can be mounted on, clearing a dead SlayerFS mount there and creating the
 * folder when it is missing (as JuiceFS does); returns whether it created it.
 */
async function prepareMountpoint(mnt: string, nonempty: boolean): Promise<boolean> {
  const { isMounted, forceUnmount } = await import("../ffi/mounts.ts");
  if (isMounted(mnt)) {
    const state = await readState(mnt);
    const alive = state && processAlive(state.pid);
    let dead = !alive;
    if (alive) {
      dead = false;
    } else {
      try {
        await Deno.stat(mnt);
        dead = state !== undefined; // answering, but not by a SlayerFS daemon we know
        if (!dead) throw new CliError(`"${mnt}" is already mounted`);
      } catch (err) {
        if (err instanceof CliError) throw err;
        dead = true; // ENOTCONN: the daemon died
      }
    }
    if (!dead) throw new CliError(`"${mnt}" is already mounted (pid ${state?.pid})`);
    if (!await forceUnmount(mnt)) throw new CliError(`Cannot clear the dead mount at "${mnt}"`);
    await Deno.remove(stateFile(mnt)).catch(() => {});
  }
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(mnt);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      try {
        await Deno.mkdir(mnt, { recursive: true });
      } catch (cause) {
        throw new CliError(`Cannot create mountpoint "${mnt}": ${describe(cause)}`);
      }
      return true;
    }
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new CliError(`No permission to use mountpoint "${mnt}"`);
    }
    throw err;
  }
  if (!st.isDirectory) throw new CliError(`Mountpoint "${mnt}" is not a directory`);
  if (!nonempty) {
    for await (const _ of Deno.readDir(mnt)) {
      throw new CliError(`Mountpoint "${mnt}" is not empty (use -o nonempty to mount anyway)`);
    }
  }
  try {
    await Deno.open(mnt, { read: true }).then((f) => f.close());
  } catch (err) {
    if (err instanceof Deno.errors.PermissionDenied) {
      throw new CliError(`No permission to use mountpoint "${mnt}"`);
    }
  }
  return false;
}

/** The mount arguments for a daemon: without the ones that choose how it runs. */
function daemonArgs(raw: readonly string[]): string[] {
  const drop = ["-d", "--background", "-f", "--foreground", "--supervise", "--upgrade"];
  return raw.filter((a) => !drop.includes(a));
}

/**
 * `mount --upgrade`: starts a new daemon that takes the live connection of the one serving `mnt`
 * over (`_upgrade.ts`), and returns once it serves (with `--foreground`, serves here).
 */
async function upgradeMount(
  args: ParsedArgs,
  metaUrl: string | undefined,
  mnt: string,
  opts: MountOpts,
): Promise<void> {
  const { isMounted } = await import("../ffi/mounts.ts");
  const state = await readState(mnt);
  if (!isMounted(mnt) || !state || !processAlive(state.pid)) {
    throw new CliError(`No running SlayerFS daemon serves "${mnt}" to upgrade (mount it instead)`);
  }
  const url = metaUrl ?? state.meta;
  if (url !== state.meta) {
    throw new CliError(`"${mnt}" serves ${state.meta}, not ${url}`, 2);
  }
  const { controlSocket } = await import("./_upgrade.ts");
  const socket = controlSocket(mnt);
  if (opts.foreground) {
    Deno.env.set("SLAYERFS_TAKEOVER", socket);
    return await serve(url, mnt, opts);
  }
  const positional = new Set(args.positionals);
  const given = daemonArgs(args.raw).filter((a) => !positional.has(a));
  // Without options, the new daemon serves with the running one's.
  const options = given.length ? given : daemonArgs(state.args ?? [])
    .filter((a) => a !== state.meta && resolve(a) !== mnt);
  const inner = [...options, "--upgrade", url, mnt];
  await daemonize(inner, mnt, opts.log, {
    env: { SLAYERFS_TAKEOVER: socket },
    ready: (s, pid) => s.pid === pid && pid !== state.pid,
    verb: `upgraded (pid ${state.pid} handed over)`,
  });
}
