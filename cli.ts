/**
 * The `slayerfs` command line: format, mount, umount, status, info.
 *
 * Usage: `deno task cli <command> ...` or `deno task mount ...`; `slayerfs --help` lists it all.
 * Bad input prints one line `slayerfs: <message>` and exits 2 (usage) or 1 (anything else).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { dirname, resolve } from "node:path";
import { BackendError, openBlockStore, openKvEngine } from "./backends/mod.ts";
import { formatVolume, Volume } from "./core/volume.ts";
import { Meta } from "./core/meta/mod.ts";
import { collectVolumeGarbage } from "./core/gc.ts";
import { parseSize, type VolumeFormat } from "./core/format.ts";
import { FsError } from "./core/errno.ts";
import type { Ino } from "./core/types.ts";
import { blockKey, resolveSegments, sliceBlocks } from "./core/slice.ts";
import type { KvEngine } from "./core/kv.ts";

const USAGE = `SlayerFS: a POSIX filesystem on object storage

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

Metadata URLs: sqlite3:///abs/path/meta.db, mem://[name]
Storage URLs:  file:///abs/dir, mem://[name]
Mount options (-o, comma separated): allow_other, ro, debug, nonempty, writeback_cache,
  fs_flock, loop=js|mt, loop_spin_us=N, attr_timeout=SEC, entry_timeout=SEC
`;

/** An error that ends the command with one line and an exit code. */
export class CliError extends Error {
  /** The process exit code (2 for usage errors). */
  readonly exitCode: number;
  /** Creates the error. */
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

function home(): string {
  return Deno.env.get("SLAYERFS_HOME") ?? `${Deno.env.get("HOME") ?? "/root"}/.slayerfs`;
}

function runDir(): string {
  return `${home()}/run`;
}

function stateFile(mountpoint: string): string {
  return `${runDir()}/${encodeURIComponent(mountpoint)}.json`;
}

/** What a running daemon records about its mount. */
interface MountState {
  pid: number;
  meta: string;
  mountpoint: string;
  volume: string;
  storage: string;
  started: string;
  updated: string;
  openFiles?: number;
  handles?: number;
  cacheBytes?: number;
  cacheHits?: number;
  /** FUSE requests answered per operation, with errors and mean latency in microseconds. */
  ops?: Record<string, { count: number; errors: number; meanUs: number }>;
  cacheMisses?: number;
  predictor?: { recorded: number; replays: number; prefetchedBlocks: number };
  cache?: unknown;
  hottestFiles?: unknown;
  writeback?: unknown;
}

function parse(
  args: string[],
  options: NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>["options"]>,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, allowPositionals: true, strict: true });
    return {
      values: r.values as Record<string, string | boolean | undefined>,
      positionals: r.positionals,
    };
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0]! : String(err);
    throw new CliError(`${msg.replace(/\. To specify.*$/, "")} (see slayerfs --help)`, 2);
  }
}

function expectArgs(positionals: string[], n: number, usage: string): void {
  if (positionals.length !== n) {
    throw new CliError(`Expected ${usage} (see slayerfs --help)`, 2);
  }
}

function describe(err: unknown): string {
  if (err instanceof CliError || err instanceof BackendError || err instanceof FsError) {
    return err.message;
  }
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return err.message + cause;
  }
  return String(err);
}

async function openMeta(url: string, readOnly = false): Promise<KvEngine> {
  if (url.startsWith("sqlite3://")) {
    const path = decodeURIComponent(new URL(url).pathname);
    try {
      const st = await Deno.stat(path);
      if (!st.isFile) throw new CliError(`Metadata file "${path}" is not a file`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new CliError(`Metadata file "${path}" does not exist: run slayerfs format first`);
      }
      throw err;
    }
  }
  return await openKvEngine(url, readOnly ? { readOnly: true } : {});
}

async function cmdFormat(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    storage: { type: "string" },
    "block-size": { type: "string" },
    capacity: { type: "string" },
    inodes: { type: "string" },
    compress: { type: "string" },
    dedup: { type: "boolean" },
    "inline-max": { type: "string" },
  });
  const compress = (values.compress as string | undefined) ?? "lz4";
  if (compress !== "lz4" && compress !== "none") {
    throw new CliError(`Invalid --compress "${compress}": expected lz4 or none`, 2);
  }
  expectArgs(positionals, 2, "META_URL NAME");
  const [metaUrl, name] = positionals as [string, string];
  let storage = values.storage as string | undefined;
  if (!storage) {
    storage = metaUrl.startsWith("sqlite3://")
      ? `file://${dirname(decodeURIComponent(new URL(metaUrl).pathname))}/${name}-data`
      : "mem://" + (metaUrl.slice("mem://".length) || name);
  }
  const blockSize = values["block-size"] ? sizeArg(values["block-size"] as string) : undefined;
  const capacity = values.capacity ? sizeArg(values.capacity as string) : undefined;
  if (metaUrl.startsWith("sqlite3://")) {
    const dir = dirname(decodeURIComponent(new URL(metaUrl).pathname));
    await Deno.mkdir(dir, { recursive: true });
  }
  // Check the storage first, so a bad URL leaves no half-formatted volume behind.
  const store = await openBlockStore(storage);
  await store.close();
  const kv = await openKvEngine(metaUrl);
  try {
    const f = await formatVolume(kv, {
      name,
      storage,
      compression: compress,
      ...(values.dedup ? { dedup: true } : {}),
      ...(values["inline-max"] !== undefined
        ? { inlineMax: sizeArg(values["inline-max"] as string) }
        : {}),
      ...(blockSize ? { blockSize } : {}),
      ...(capacity ? { capacity } : {}),
      ...(values.inodes ? { inodes: Number(values.inodes) } : {}),
    });
    console.log(
      `Volume "${f.name}" (${f.uuid}): metadata ${metaUrl}, storage ${f.storage}, ` +
        `block size ${f.blockSize >> 10} KiB, compression ${f.compression}` +
        (f.dedup ? ", dedup" : ""),
    );
  } catch (err) {
    if (err instanceof FsError) throw new CliError(err.message);
    if (err instanceof Error && /Invalid/.test(err.message)) throw new CliError(err.message, 2);
    throw err;
  } finally {
    await kv.close();
  }
}

function sizeArg(text: string): number {
  try {
    return parseSize(text);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
}

interface MountOpts {
  foreground: boolean;
  options: Map<string, string>;
  cacheMiB: number;
  cacheDirs: string[];
  noCacheDir: boolean;
  cacheDirMiB: number;
  writeback: boolean;
  writebackDir: string | undefined;
  writebackMiB: number;
  log: string;
}

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

async function cmdMount(args: string[]): Promise<void> {
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
    metaUrl = await ensureDefaultVolume();
    mnt = positionals[0]!;
  } else {
    expectArgs(positionals, 2, "META_URL MOUNTPOINT, or MOUNTPOINT alone");
    [metaUrl, mnt] = positionals as [string, string];
  }
  const options = new Map<string, string>();
  const oList = (values.o as unknown as string[] | undefined) ?? [];
  for (const o of oList.flatMap((s) => s.split(","))) {
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
  if (!/^(sqlite3|mem):\/\//.test(metaUrl)) {
    const scheme = /^([a-z0-9+.-]+):/i.exec(metaUrl)?.[1];
    throw new CliError(
      scheme
        ? `Unknown metadata scheme "${scheme}": expected one of sqlite3, mem`
        : `Invalid metadata URL "${metaUrl}": expected sqlite3:///path or mem://`,
      2,
    );
  }
  await prepareMountpoint(mnt, options.has("nonempty"));
  await checkLibfuse();
  if (opts.foreground) return await serve(metaUrl, mnt, opts);
  await daemonize(args, mnt, opts.log);
}

async function ensureDefaultVolume(): Promise<string> {
  const dir = `${home()}/default`;
  await Deno.mkdir(dir, { recursive: true });
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
  const { loadLibfuse } = await import("./ffi/libfuse.ts");
  try {
    loadLibfuse();
  } catch (err) {
    throw new CliError(describe(err));
  }
  try {
    await Deno.stat("/dev/fuse");
  } catch {
    throw new CliError("/dev/fuse is missing: load the fuse kernel module (modprobe fuse)");
  }
}

async function prepareMountpoint(mnt: string, nonempty: boolean): Promise<void> {
  const { isMounted, forceUnmount } = await import("./ffi/mounts.ts");
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

function processAlive(pid: number): boolean {
  try {
    // A zombie (killed, not yet reaped) is not alive.
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
}

async function readState(mnt: string): Promise<MountState | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(stateFile(mnt))) as MountState;
  } catch {
    return undefined;
  }
}

/** Writes the daemon's state file; the run directory must exist (made once at mount). */
async function writeState(s: MountState): Promise<void> {
  const path = stateFile(s.mountpoint);
  await Deno.writeTextFile(path + ".tmp", JSON.stringify(s, null, 2));
  await Deno.rename(path + ".tmp", path);
}

/** Starts `mount --foreground` as a detached daemon and returns once it serves. */
async function daemonize(args: string[], mnt: string, log: string): Promise<void> {
  await Deno.mkdir(dirname(log), { recursive: true });
  const self = Deno.execPath();
  const script = new URL(import.meta.url).pathname;
  const compiled = !/deno$/.test(self);
  const inner = compiled ? [self, "mount", "--foreground", ...args] : [
    self,
    "run",
    "-A",
    "--v8-flags=--max-old-space-size=1024",
    script,
    "mount",
    "--foreground",
    ...args,
  ];
  const cmd = new Deno.Command("setsid", {
    args: ["sh", "-c", 'log="$1"; shift; exec "$@" >>"$log" 2>&1 </dev/null', "sh", log, ...inner],
    // Fewer malloc arenas: the I/O threads otherwise each keep freed block buffers resident.
    env: { MALLOC_ARENA_MAX: Deno.env.get("MALLOC_ARENA_MAX") ?? "2" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  });
  const child = cmd.spawn();
  let exited = false;
  child.status.then(() => exited = true);
  const { isMounted } = await import("./ffi/mounts.ts");
  const started = Date.now();
  const logStart = await Deno.stat(log).then((s) => s.size).catch(() => 0);
  while (Date.now() - started < 60_000) {
    await new Promise((r) => setTimeout(r, 50));
    if (exited) break;
    if (isMounted(mnt) && (await readState(mnt))?.pid === child.pid) {
      child.unref();
      console.log(`SlayerFS mounted at ${mnt} (pid ${child.pid}, log ${log})`);
      return;
    }
  }
  if (!exited) {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    throw new CliError(`The mount at "${mnt}" did not become ready in 60 s (see ${log})`);
  }
  const text = await Deno.readTextFile(log).catch(() => "");
  const lines = text.slice(logStart).trim().split("\n").filter((l) => l.startsWith("slayerfs:"));
  throw new CliError(lines.at(-1)?.replace(/^slayerfs: /, "") ?? `The daemon failed (see ${log})`);
}

/**
 * Keeps the daemon's memory from creeping up while it streams: the I/O threads share two malloc
 * arenas instead of one each, and every second the freed block buffers go back to the kernel
 * (`malloc_trim`). (A fixed mmap threshold kept RSS low too, but the page faults of a fresh mapping
 * per block halved sequential throughput.) Returns a function that stops the trimming.
 */
function tuneMalloc(): () => void {
  if (Deno.env.get("SLAYERFS_MALLOPT") === "0") return () => {};
  try {
    const libc = Deno.dlopen("libc.so.6", {
      mallopt: { parameters: ["i32", "i32"], result: "i32" }, // int mallopt(int param, int value)
      malloc_trim: { parameters: ["usize"], result: "i32" }, // int malloc_trim(size_t pad)
    });
    const M_ARENA_MAX = -8;
    libc.symbols.mallopt(M_ARENA_MAX, 2);
    const timer = setInterval(() => libc.symbols.malloc_trim(0n), 1000);
    Deno.unrefTimer(timer);
    return () => {
      clearInterval(timer);
      libc.close();
    };
  } catch {
    return () => {}; // Not glibc: nothing to tune.
  }
}

async function serve(metaUrl: string, mnt: string, opts: MountOpts): Promise<void> {
  const stopTrimming = tuneMalloc();
  const { mountFs } = await import("./ffi/mod.ts");
  let kv: KvEngine;
  try {
    kv = await openMeta(metaUrl);
  } catch (err) {
    throw err instanceof CliError ? err : new CliError(describe(err));
  }
  let vol: Volume;
  let writeback:
    | { stats(): unknown; flush(o?: { signal?: AbortSignal }): Promise<void> }
    | undefined;
  try {
    let format = await Meta.readFormat(kv);
    if (!format && metaUrl.startsWith("mem://")) {
      format = await formatVolume(kv, { name: "mem", storage: "mem://" });
    }
    if (!format) throw new CliError(`No volume in "${metaUrl}": run slayerfs format first`);
    let store = await openBlockStore(format.storage);
    if (opts.writeback) {
      const { WritebackBlockStore } = await import("./backends/store_writeback.ts");
      const staged = await WritebackBlockStore.open(store, {
        dir: opts.writebackDir ?? `${home()}/writeback/${format.uuid}`,
        capacityBytes: opts.writebackMiB * 2 ** 20,
        onError: (err, key) => console.error(`slayerfs: upload of "${key}": ${describe(err)}`),
      });
      writeback = staged;
      store = staged;
    }
    // Remote storage gets a disk cache by default, as JuiceFS does; local storage needs none.
    if (!opts.cacheDirs.length && !opts.noCacheDir && !/^(file|mem):/.test(format.storage)) {
      opts.cacheDirs.push(`${home()}/cache/${format.uuid}`);
    }
    vol = await Volume.openWith(kv, store, {
      cacheBytes: opts.cacheMiB * 2 ** 20,
      ...(opts.cacheDirs.length
        ? {
          cacheDirs: opts.cacheDirs.map((path) => ({
            path,
            capacityBytes: opts.cacheDirMiB * 2 ** 20,
          })),
        }
        : {}),
    });
  } catch (err) {
    await kv.close();
    throw err instanceof CliError ? err : new CliError(describe(err));
  }
  const o = opts.options;
  const num = (k: string) => o.has(k) ? Number(o.get(k)) : undefined;
  const session = await mountFs(vol.vfs, mnt, {
    fsname: `slayerfs:${vol.format.name}`,
    subtype: "slayerfs",
    allowOther: o.has("allow_other"),
    readOnly: o.has("ro"),
    debug: o.has("debug"),
    writebackCache: o.has("writeback_cache"),
    flockLocks: o.has("fs_flock"),
    // The daemon serves no calls into its own mount, so it can use the JS loop (see ffi/README.md).
    loop: o.get("loop") === "mt" ? "mt" as const : "js" as const,
    ...(num("loop_spin_us") !== undefined ? { spinUs: num("loop_spin_us")! } : {}),
    ...(num("attr_timeout") !== undefined ? { attrTimeout: num("attr_timeout")! } : {}),
    ...(num("entry_timeout") !== undefined ? { entryTimeout: num("entry_timeout")! } : {}),
    ...(num("negative_timeout") !== undefined ? { negativeTimeout: num("negative_timeout")! } : {}),
  }).catch(async (err) => {
    await vol.close();
    throw new CliError(describe(err));
  });
  const state: MountState = {
    pid: Deno.pid,
    meta: metaUrl,
    mountpoint: mnt,
    volume: vol.format.name,
    storage: vol.format.storage,
    started: new Date().toISOString(),
    updated: new Date().toISOString(),
  };
  const refresh = async () => {
    const s = vol.vfs.stats();
    Object.assign(state, {
      updated: new Date().toISOString(),
      openFiles: s.openFiles,
      handles: s.handles,
      cacheBytes: s.cacheBytes,
      cacheHits: vol.vfs.data.cache.hits,
      cacheMisses: vol.vfs.data.cache.misses,
      ...(s.predictor ? { predictor: s.predictor } : {}),
      ...(s.cache ? { cache: s.cache, hottestFiles: s.hottestFiles } : {}),
      ...(writeback ? { writeback: writeback.stats() } : {}),
      ops: Object.fromEntries(
        Object.entries(session.opStats()).sort(([a], [b]) => a < b ? -1 : 1).map((
          [op, st],
        ) => [op, {
          count: st.count,
          errors: st.errors,
          meanUs: st.count ? Math.round(st.totalUs / st.count) : 0,
        }]),
      ),
    });
    await writeState(state).catch(() => {});
  };
  await Deno.mkdir(runDir(), { recursive: true });
  await refresh();
  const timer = setInterval(refresh, 2000);
  console.error(`slayerfs: serving "${vol.format.name}" at ${mnt} (pid ${Deno.pid})`);
  let stopping: Promise<void> | undefined;
  const stop = (why: string) =>
    stopping ??= (async () => {
      console.error(`slayerfs: ${why}: unmounting ${mnt}`);
      clearInterval(timer);
      stopTrimming();
      try {
        await session.unmount();
      } catch (err) {
        console.error(`slayerfs: unmount: ${describe(err)}`);
      }
      try {
        // Give staged uploads a bounded chance to finish; what remains uploads at the next mount.
        await writeback?.flush({ signal: AbortSignal.timeout(30_000) }).catch((err) => {
          console.error(`slayerfs: staged blocks remain for the next mount: ${describe(err)}`);
        });
        await vol.close();
      } catch (err) {
        console.error(`slayerfs: flushing on exit failed: ${describe(err)}`);
      }
      await Deno.remove(stateFile(mnt)).catch(() => {});
      console.error(`slayerfs: stopped`);
    })();
  Deno.addSignalListener("SIGINT", () => stop("SIGINT").then(() => Deno.exit(0)));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM").then(() => Deno.exit(0)));
  await session.closed;
  await stop("unmounted");
  Deno.exit(0);
}

async function cmdUmount(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { lazy: { type: "boolean", short: "l" } });
  expectArgs(positionals, 1, "MOUNTPOINT");
  const mnt = resolve(positionals[0]!);
  const { isMounted, forceUnmount } = await import("./ffi/mounts.ts");
  if (!isMounted(mnt)) throw new CliError(`"${mnt}" is not mounted`);
  const state = await readState(mnt);
  if (values.lazy) {
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
    for (let i = 0; i < 600 && processAlive(state.pid); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  console.log(`Unmounted ${mnt}`);
}

async function volumeSummary(kv: KvEngine): Promise<{ format: VolumeFormat; usage: string }> {
  const meta = await Meta.open(kv);
  const u = await meta.usage();
  return {
    format: meta.format,
    usage: `${(u.space / 2 ** 20).toFixed(1)} MiB used, ${u.inodes} inodes`,
  };
}

async function cmdStatus(args: string[]): Promise<void> {
  const { positionals } = parse(args, {});
  expectArgs(positionals, 1, "MOUNTPOINT or META_URL");
  const target = positionals[0]!;
  if (/^[a-z0-9+.-]+:\/\//i.test(target)) {
    const kv = await openMeta(target, true);
    try {
      const { format, usage } = await volumeSummary(kv);
      console.log(JSON.stringify({ ...format, usage }, null, 2));
    } finally {
      await kv.close();
    }
    return;
  }
  const mnt = resolve(target);
  const { isMounted } = await import("./ffi/mounts.ts");
  if (!isMounted(mnt)) throw new CliError(`"${mnt}" is not mounted`);
  const state = await readState(mnt);
  if (!state) throw new CliError(`"${mnt}" is not a SlayerFS mount of this host`);
  const out: Record<string, unknown> = { ...state, alive: processAlive(state.pid) };
  if (state.meta.startsWith("sqlite3://")) {
    const kv = await openMeta(state.meta, true);
    try {
      out.usage = (await volumeSummary(kv)).usage;
    } finally {
      await kv.close();
    }
  }
  console.log(JSON.stringify(out, null, 2));
}

async function cmdInfo(args: string[]): Promise<void> {
  const { positionals } = parse(args, {});
  expectArgs(positionals, 1, "PATH");
  const path = resolve(positionals[0]!);
  const { mountInfo } = await import("./ffi/mounts.ts");
  let m: { mountpoint: string } | undefined;
  for (let dir = path; !m; dir = dirname(dir)) {
    m = mountInfo(dir).findLast((x) => x.fsType === "fuse.slayerfs");
    if (dir === "/") break;
  }
  if (!m) throw new CliError(`"${path}" is not inside a SlayerFS mount`);
  const state = await readState(m.mountpoint);
  if (!state) throw new CliError(`No daemon state for the mount at "${m.mountpoint}"`);
  if (!state.meta.startsWith("sqlite3://")) {
    throw new CliError(`info needs a shared metadata engine; "${state.meta}" lives in the daemon`);
  }
  let st: Deno.FileInfo;
  try {
    st = await Deno.lstat(path);
  } catch {
    throw new CliError(`"${path}" does not exist`);
  }
  const kv = await openMeta(state.meta, true);
  try {
    const meta = await Meta.open(kv);
    const ino = st.ino as Ino;
    const chunks = await meta.listChunks(ino);
    const bs = meta.format.blockSize;
    console.log(`${path}\n  inode: ${ino}\n  size: ${st.size}\n  chunks: ${chunks.length}`);
    for (const c of chunks) {
      const segs = resolveSegments(c.records);
      console.log(`  chunk ${c.index}: ${c.records.length} slice records`);
      for (const s of segs) {
        if (s.id === 0) continue;
        console.log(
          `    [${s.pos}, ${s.pos + s.len}) slice ${s.id} (size ${s.size}) offset ${s.off}`,
        );
        for (const [i, len] of sliceBlocks(s.size, bs)) {
          if ((i + 1) * bs <= s.off || i * bs >= s.off + s.len) continue;
          console.log(`      block ${blockKey(s.id, i, len)} (${len} bytes)`);
        }
      }
    }
  } finally {
    await kv.close();
  }
}

async function cmdGc(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    delete: { type: "boolean" },
    "min-age": { type: "string" },
  });
  expectArgs(positionals, 1, "META_URL");
  const rawAge = values["min-age"] as string | undefined;
  const minAge = rawAge === undefined ? 3600 : Number(rawAge);
  if (rawAge === "" || !Number.isFinite(minAge) || minAge < 0) {
    throw new CliError(`Invalid --min-age "${rawAge}": expected seconds >= 0`, 2);
  }
  const remove = values.delete === true;
  const kv = await openMeta(positionals[0]!, !remove);
  try {
    const meta = await Meta.open(kv);
    const store = await openBlockStore(meta.format.storage);
    try {
      const r = await collectVolumeGarbage(meta, store, {
        delete: remove,
        minAgeMs: minAge * 1000,
      });
      const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
      const done = remove ? "deleted" : "run with --delete to delete them";
      console.log(`objects: ${r.objects} (${mib(r.bytes)}) in ${store.url}`);
      console.log(`referenced: ${r.referenced}`);
      console.log(
        `pending deletes: ${r.pendingSlices} freed slices, ${r.pendingObjects} objects` +
          (r.pendingSlices ? ` (${done})` : ""),
      );
      console.log(`leaked: ${r.leaked} (${mib(r.leakedBytes)})` + (r.leaked ? ` (${done})` : ""));
      for (const key of r.examples) console.log(`  ${key}`);
      if (r.leaked > r.examples.length) console.log(`  ...`);
      console.log(`not referenced yet, younger than ${minAge} s (may be in flight): ${r.young}`);
      if (r.foreign) console.log(`other keys under chunks/ and blobs/, left alone: ${r.foreign}`);
      if (remove) console.log(`deleted: ${r.deleted} objects`);
    } finally {
      await store.close();
    }
  } finally {
    await kv.close();
  }
}

async function cmdWarmup(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    threads: { type: "string" },
    quiet: { type: "boolean", short: "q" },
  });
  if (positionals.length === 0) throw new CliError("Expected PATH... (see slayerfs --help)", 2);
  const threads = Number(values.threads ?? 8);
  if (!Number.isInteger(threads) || threads < 1) {
    throw new CliError(`Invalid --threads "${values.threads}"`, 2);
  }
  const files: Array<{ path: string; size: number }> = [];
  const walk = async (path: string) => {
    const st = await Deno.lstat(path);
    if (st.isFile) files.push({ path, size: st.size });
    else if (st.isDirectory) {
      for await (const e of Deno.readDir(path)) await walk(`${path}/${e.name}`);
    }
  };
  for (const p of positionals) {
    try {
      await walk(resolve(p));
    } catch (err) {
      throw new CliError(`Cannot read "${p}": ${describe(err)}`);
    }
  }
  const total = files.reduce((n, f) => n + f.size, 0);
  let done = 0;
  let doneFiles = 0;
  const started = Date.now();
  const tty = !values.quiet && Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  const draw = (final = false) => {
    if (values.quiet) return;
    const frac = total ? done / total : 1;
    const bar = "#".repeat(Math.round(frac * 30)).padEnd(30, " ");
    const mib = (n: number) => (n / 2 ** 20).toFixed(1);
    const rate = done / 2 ** 20 / Math.max(0.001, (Date.now() - started) / 1000);
    const line =
      `[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${mib(done)}/${mib(total)} MiB ` +
      `${doneFiles}/${files.length} files ${rate.toFixed(1)} MiB/s`;
    if (tty) Deno.stderr.writeSync(enc.encode(`\r${line}${final ? "\n" : ""}`));
    else if (final) console.error(line);
  };
  const timer = setInterval(draw, 200);
  let next = 0;
  const failures: string[] = [];
  const buf = () => new Uint8Array(1 << 20);
  await Promise.all(Array.from({ length: threads }, async () => {
    const b = buf();
    while (next < files.length) {
      const f = files[next++]!;
      try {
        using file = await Deno.open(f.path, { read: true });
        for (;;) {
          const n = await file.read(b);
          if (n === null) break;
          done += n;
        }
      } catch (err) {
        failures.push(`${f.path}: ${describe(err)}`);
      }
      doneFiles++;
    }
  }));
  clearInterval(timer);
  draw(true);
  if (failures.length) {
    throw new CliError(`${failures.length} files could not be read, first: ${failures[0]}`);
  }
}

/** Runs the CLI with `args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  try {
    switch (cmd) {
      case "format":
        await cmdFormat(rest);
        return 0;
      case "mount":
        await cmdMount(rest);
        return 0;
      case "umount":
      case "unmount":
        await cmdUmount(rest);
        return 0;
      case "status":
        await cmdStatus(rest);
        return 0;
      case "info":
        await cmdInfo(rest);
        return 0;
      case "warmup":
        await cmdWarmup(rest);
        return 0;
      case "gc":
        await cmdGc(rest);
        return 0;
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        throw new CliError(`Unknown command "${cmd}" (see slayerfs --help)`, 2);
    }
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

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
