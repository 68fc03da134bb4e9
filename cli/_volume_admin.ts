/**
 * Folder and file chores on a volume without mounting it, for the Docker volume plugin and the
 * CSI driver: make a volume's folder, remove it with everything in it, read and write a small
 * record. With credentials a caller was handed (a CSI request's secrets), they run in a child
 * process (`runVolumeAdmin`) that reads its request, metadata URL included, from standard input
 * and gets the credentials (`AWS_*`) in its environment: they never reach a command line or this
 * process's environment. Without, they run in this process.
 *
 * @module
 */

import { openBlockStore } from "../backends/mod.ts";
import { Errno, FsError } from "../core/errno.ts";
import { S_IFDIR, S_IFMT } from "../core/types.ts";
import { Volume } from "../core/volume.ts";
import { openMeta } from "./_meta.ts";

/** One chore. Paths are absolute inside the volume. */
export type AdminOp =
  | { op: "mkdirp"; path: string }
  | { op: "stat"; path: string }
  | { op: "rmrf"; path: string }
  | { op: "read"; path: string }
  | { op: "write"; path: string; text: string }
  | { op: "list"; path: string }
  | { op: "quotaSet"; path: string; capacity?: number | undefined; inodes?: number | undefined }
  | { op: "quotaGet"; path: string }
  | { op: "quotaDelete"; path: string };

/** A folder's quota and usage, as `slayerfs quota get --json` prints it. */
export interface QuotaJson {
  /** The folder, inside the volume. */
  path: string;
  /** Bytes allowed, or `null` for no limit. */
  capacity: number | null;
  /** Inodes allowed, or `null` for no limit. */
  inodes: number | null;
  /** Bytes used under the folder. */
  usedSpace: number;
  /** Inodes used under the folder. */
  usedInodes: number;
}

/** What each chore answers, in order. */
export interface AdminResult {
  /** mkdirp: whether the folder was made now; stat: whether the path exists. */
  created?: boolean;
  exists?: boolean;
  isDir?: boolean;
  /** read: the file's text, `null` when missing. */
  text?: string | null;
  /** list: the folder's names, `null` when missing. */
  names?: string[] | null;
  /** quotaGet: the quota, `null` when the folder has none. */
  quota?: QuotaJson | null;
}

/**
 * Runs `ops` on the volume `meta`; returns one result per op. With `env` (credentials from a
 * request), in a child process with `env` added to its environment, throwing the child's error
 * message; without, in this process.
 */
export async function runVolumeAdmin(
  meta: string,
  ops: AdminOp[],
  env: Record<string, string> = {},
): Promise<AdminResult[]> {
  if (Object.keys(env).length === 0) return await runOps(meta, ops);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname],
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(JSON.stringify({ meta, ops })));
  await w.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1) ?? "";
    throw new Error(err.replace(/^error: /, "") || `exit code ${out.code}`);
  }
  return JSON.parse(text) as AdminResult[];
}

function isNotFound(err: unknown): boolean {
  return err instanceof FsError && err.errno === Errno.ENOENT;
}

async function removeTree(vol: Volume, path: string): Promise<void> {
  for (const e of await vol.readdir(path)) {
    const child = `${path}/${e.name as unknown as string}`;
    if ((e.type & S_IFMT) === S_IFDIR) await removeTree(vol, child);
    else await vol.unlink(child);
  }
  await vol.rmdir(path);
}

async function runOp(vol: Volume, o: AdminOp): Promise<AdminResult> {
  switch (o.op) {
    case "mkdirp": {
      const exists = await vol.stat(o.path).then(() => true, (e) => {
        if (isNotFound(e)) return false;
        throw e;
      });
      if (!exists) await vol.mkdir(o.path, { recursive: true, mode: 0o777 });
      return { created: !exists };
    }
    case "stat":
      try {
        const st = await vol.stat(o.path);
        return { exists: true, isDir: (st.mode & S_IFMT) === S_IFDIR };
      } catch (err) {
        if (isNotFound(err)) return { exists: false, isDir: false };
        throw err;
      }
    case "rmrf":
      try {
        const st = await vol.lstat(o.path);
        if ((st.mode & S_IFMT) === S_IFDIR) await removeTree(vol, o.path);
        else await vol.unlink(o.path);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      return {};
    case "read":
      try {
        return { text: new TextDecoder().decode(await vol.readFile(o.path)) };
      } catch (err) {
        if (isNotFound(err)) return { text: null };
        throw err;
      }
    case "write": {
      const dir = o.path.replace(/\/[^/]*$/, "") || "/";
      await vol.mkdir(dir, { recursive: true, mode: 0o700 });
      const tmp = `${o.path}.tmp-${crypto.randomUUID()}`;
      await vol.writeFile(tmp, new TextEncoder().encode(o.text));
      await vol.rename(tmp, o.path);
      return {};
    }
    case "quotaSet": {
      const dir = await vol.resolve(o.path);
      const limits: { capacity?: number | null; inodes?: number | null } = {};
      if (o.capacity !== undefined) limits.capacity = o.capacity || null;
      if (o.inodes !== undefined) limits.inodes = o.inodes || null;
      await vol.vfs.meta.setQuota(dir.ino, limits);
      return {};
    }
    case "quotaGet": {
      const q = await vol.vfs.meta.getQuota((await vol.resolve(o.path)).ino);
      if (!q) return { quota: null };
      const { capacity, inodes, usedSpace, usedInodes } = q;
      return { quota: { path: o.path, capacity, inodes, usedSpace, usedInodes } };
    }
    case "quotaDelete":
      try {
        await vol.vfs.meta.deleteQuota((await vol.resolve(o.path)).ino);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      return {};
    case "list":
      try {
        return { names: (await vol.readdir(o.path)).map((e) => e.name as unknown as string) };
      } catch (err) {
        if (isNotFound(err)) return { names: null };
        throw err;
      }
  }
}

/** How long an opened volume is kept for the next chores before it is closed. */
const IDLE_CLOSE_MS = 30_000;

/** Volumes opened by {@link runOps}, by metadata URL, kept while chores keep coming. */
const opened = new Map<
  string,
  { vol: Promise<Volume>; timer?: ReturnType<typeof setTimeout> }
>();

function openCached(meta: string): Promise<Volume> {
  let entry = opened.get(meta);
  if (!entry) {
    const vol = Volume.open(meta, {
      openKvEngine: (u) => openMeta(u),
      openBlockStore: (u) => openBlockStore(u),
    }, { predict: false }).then((v) => {
      v.ctx = { ...v.ctx, umask: 0 };
      return v;
    });
    entry = { vol };
    opened.set(meta, entry);
    vol.catch(() => opened.delete(meta));
  }
  const e = entry;
  if (e.timer !== undefined) clearTimeout(e.timer);
  const timer = setTimeout(() => dropCached(meta), IDLE_CLOSE_MS);
  Deno.unrefTimer(timer);
  e.timer = timer;
  return e.vol;
}

async function dropCached(meta: string): Promise<void> {
  const e = opened.get(meta);
  if (!e) return;
  opened.delete(meta);
  if (e.timer !== undefined) clearTimeout(e.timer);
  await (await e.vol.catch(() => undefined))?.close().catch(() => {});
}

/**
 * Runs `ops` in order on the volume `meta`, opened once and kept open for the next chores (the
 * filesystem layer caches no metadata, so other clients' changes are seen at once; opening a
 * volume costs a garbage pass and hundreds of milliseconds). An unexpected error closes it.
 */
async function runOps(meta: string, ops: AdminOp[]): Promise<AdminResult[]> {
  const vol = await openCached(meta);
  try {
    const results: AdminResult[] = [];
    for (const o of ops) results.push(await runOp(vol, o));
    return results;
  } catch (err) {
    if (!(err instanceof FsError)) await dropCached(meta);
    throw err;
  }
}

if (import.meta.main) {
  const input = JSON.parse(await new Response(Deno.stdin.readable).text()) as {
    meta: string;
    ops: AdminOp[];
  };
  console.log(JSON.stringify(await runOps(input.meta, input.ops)));
  await dropCached(input.meta);
}
