/**
 * `slayerfs mount [options] META_URL MOUNTPOINT` (or `MOUNTPOINT` alone, for the embedded default
 * volume): checks the arguments, the mountpoint and libfuse3, then serves in the foreground
 * (`serve.ts`) or starts a background daemon (`_daemonize.ts`).
 *
 * @module
 */

import { resolve } from "node:path";
import { kvSchemes, openKvEngine } from "../backends/mod.ts";
import { Meta } from "../core/meta/mod.ts";
import { formatVolume } from "../core/volume.ts";
import { expectArgs, parse } from "./_args.ts";
import { daemonize } from "./_daemonize.ts";
import { CliError, describe } from "./_errors.ts";
import { home, makeHomeDir, processAlive, readState, stateFile } from "./_state.ts";
import { type MountOpts, serve } from "./serve.ts";

const KNOWN_O = new Set([
  "allow_other",
  "ro",
  "debug",
  "nonempty",
  "writeback_cache",
  "attr_timeout",
  "entry_timeout",
  "negative_timeout",
  "default_permissions",
  "fs_flock",
  "loop",
  "loop_spin_us",
]);

/** Runs `slayerfs mount` with the arguments after the command name. */
export async function cmdMount(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    foreground: { type: "boolean", short: "f" },
    d: { type: "boolean" },
    o: { type: "string", multiple: true } as never,
    "cache-size": { type: "string" },
    "cache-dir": { type: "string", multiple: true } as never,
    "cache-dir-size": { type: "string" },
    "no-cache-dir": { type: "boolean" },
    writeback: { type: "boolean" },
    "writeback-dir": { type: "string" },
    "writeback-size": { type: "string" },
    log: { type: "string" },
  });
  let metaUrl: string;
  let mnt: string;
  if (positionals.length === 1) {
    await checkLibfuse(); // before the default volume is formatted: nothing made for a failure
    metaUrl = await ensureDefaultVolume();
    mnt = positionals[0]!;
  } else {
    expectArgs(positionals, 2, "META_URL MOUNTPOINT, or MOUNTPOINT alone");
    [metaUrl, mnt] = positionals as [string, string];
  }
  const options = mountOptions((values.o as unknown as string[] | undefined) ?? []);
  const mib = (name: string, def: number): number => {
    const v = values[name];
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) {
      throw new CliError(`Invalid --${name} "${v}": expected MiB`, 2);
    }
    return n;
  };
  const opts: MountOpts = {
    foreground: !!values.foreground || !!values.d,
    options,
    cacheMiB: mib("cache-size", 32),
    cacheDirs: ((values["cache-dir"] as unknown as string[] | undefined) ?? []).map((d) =>
      resolve(d)
    ),
    noCacheDir: !!values["no-cache-dir"],
    cacheDirMiB: mib("cache-dir-size", 10240),
    writeback: !!values.writeback,
    writebackDir: values["writeback-dir"] ? resolve(values["writeback-dir"] as string) : undefined,
    writebackMiB: mib("writeback-size", 10240),
    log: (values.log as string | undefined) ?? `${home()}/slayerfs.log`,
  };
  mnt = resolve(mnt);
  // Validate the scheme before anything else touches the system.
  checkMetaScheme(metaUrl);
  await prepareMountpoint(mnt, options.has("nonempty"));
  await checkLibfuse();
  if (opts.foreground) return await serve(metaUrl, mnt, opts);
  await daemonize(args, mnt, opts.log);
}

/** The `-o` options (each a comma-separated list) by name; unknown or bad ones are usage errors. */
function mountOptions(list: string[]): Map<string, string> {
  const options = new Map<string, string>();
  for (const o of list.flatMap((s) => s.split(","))) {
    if (!o) continue;
    const [k, v = ""] = o.split("=", 2) as [string, string?];
    if (!KNOWN_O.has(k)) throw new CliError(`Unknown mount option "${k}" (see slayerfs --help)`, 2);
    options.set(k, v);
  }
  if (options.has("loop") && options.get("loop") !== "js" && options.get("loop") !== "mt") {
    throw new CliError(`Invalid mount option loop=${options.get("loop")}: expected js or mt`, 2);
  }
  for (const k of ["attr_timeout", "entry_timeout", "negative_timeout", "loop_spin_us"]) {
    const v = options.get(k);
    if (v !== undefined && !(v !== "" && Number(v) >= 0)) {
      throw new CliError(`Invalid mount option ${k}=${v}: expected a number >= 0`, 2);
    }
  }
  return options;
}

/** Throws a usage error unless `metaUrl` is `SCHEME://...` of a registered metadata engine. */
function checkMetaScheme(metaUrl: string): void {
  const known = kvSchemes();
  const scheme = /^([a-z0-9+.-]+):/i.exec(metaUrl)?.[1];
  if (scheme !== undefined && !known.includes(scheme)) {
    throw new CliError(
      `Unknown metadata scheme "${scheme}": expected one of ${known.join(", ")}`,
      2,
    );
  }
  if (scheme === undefined || !metaUrl.startsWith(`${scheme}://`)) {
    const expected = known.map((s) => `${s}://`).join(", ");
    throw new CliError(`Invalid metadata URL "${metaUrl}": expected one of ${expected}`, 2);
  }
}

async function ensureDefaultVolume(): Promise<string> {
  const dir = `${home()}/default`;
  await makeHomeDir(dir);
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

async function prepareMountpoint(mnt: string, nonempty: boolean): Promise<void> {
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
      throw new CliError(`Mountpoint "${mnt}" does not exist`);
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
}
