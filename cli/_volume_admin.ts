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
  | { op: "list"; path: string };

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
    case "list":
      try {
        return { names: (await vol.readdir(o.path)).map((e) => e.name as unknown as string) };
      } catch (err) {
        if (isNotFound(err)) return { names: null };
        throw err;
      }
  }
}

/** Opens the volume, runs `ops` in order, closes it. */
async function runOps(meta: string, ops: AdminOp[]): Promise<AdminResult[]> {
  const vol = await Volume.open(meta, {
    openKvEngine: (u) => openMeta(u),
    openBlockStore: (u) => openBlockStore(u),
  }, { predict: false });
  try {
    vol.ctx = { ...vol.ctx, umask: 0 };
    const results: AdminResult[] = [];
    for (const o of ops) results.push(await runOp(vol, o));
    return results;
  } finally {
    await vol.close();
  }
}

if (import.meta.main) {
  const input = JSON.parse(await new Response(Deno.stdin.readable).text()) as {
    meta: string;
    ops: AdminOp[];
  };
  console.log(JSON.stringify(await runOps(input.meta, input.ops)));
}
