/**
 * What the Docker volume plugin and the CSI driver share: a "sub-volume" is a folder of a
 * SlayerFS volume with an optional quota, mounted on its own with `slayerfs mount --subdir`.
 * The quotas are set and read as `slayerfs quota` does (`_volume_admin.ts`); the mounts go
 * through the `slayerfs` CLI itself (`mount`, `umount`), run as child processes, so a mount
 * daemon outlives the plugin that started it.
 *
 * @module
 */

import { type QuotaJson, runVolumeAdmin } from "./_volume_admin.ts";

/** Extra environment for the child processes (credentials from a CSI request's secrets). */
export type ChildEnv = Record<string, string>;

/** The entry point of this CLI (`cli.ts`). */
const ENTRY = new URL("../cli.ts", import.meta.url).pathname;

/** Where a folder's quota stands (`slayerfs quota get --json`). */
export type QuotaInfo = QuotaJson;

/**
 * `text` with every value of `secrets` and the password of any URL in it replaced by `***`:
 * an error from a child process may quote the metadata URL it was given.
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const v of secrets) out = out.replaceAll(v, "***");
  return out.replace(/(\/\/[^/@\s:]*):[^/@\s]*@/g, "$1:***@");
}

/** An error of a `slayerfs` child process, with its one-line message. */
export class SubvolumeError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "SubvolumeError";
  }
}

/** Runs `slayerfs ARGS…` in a child process; returns its output or throws its message. */
export async function runSlayerfs(args: string[], env: ChildEnv = {}): Promise<string> {
  const self = Deno.execPath();
  const compiled = !/deno$/.test(self);
  const out = await new Deno.Command(self, {
    args: compiled ? args : ["run", "-A", ENTRY, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    const line = stderr.split("\n").findLast((l) => l.startsWith("slayerfs: ")) ??
      stderr.split("\n").at(-1) ?? "";
    throw new SubvolumeError(line.replace(/^slayerfs: /, "") || `slayerfs ${args[0]} failed`);
  }
  return stdout;
}

/** Sets the quota of folder `path` (each limit only when given). */
export async function setQuota(
  meta: string,
  path: string,
  limits: { capacity?: number | undefined; inodes?: number | undefined },
  env: ChildEnv = {},
): Promise<void> {
  await runVolumeAdmin(meta, [{ op: "quotaSet", path, ...limits }], env);
}

/** The quota and usage of folder `path`; throws when it has none. */
export async function getQuota(meta: string, path: string, env: ChildEnv = {}): Promise<QuotaInfo> {
  const [r] = await runVolumeAdmin(meta, [{ op: "quotaGet", path }], env);
  if (!r?.quota) throw new SubvolumeError(`No quota on "${path}"`);
  return r.quota;
}

/** Removes the quota of folder `path`; a folder without one is fine. */
export async function deleteQuota(meta: string, path: string, env: ChildEnv = {}): Promise<void> {
  await runVolumeAdmin(meta, [{ op: "quotaDelete", path }], env);
}

/** Options of {@link mountSubdir}. */
export interface SubdirMountOptions {
  /** Mount read-only (`-o ro`). */
  readonly?: boolean;
  /** The daemon's log file. */
  log?: string;
}

/** Mounts folder `subdir` of volume `meta` at `mnt` with a background daemon. */
export async function mountSubdir(
  meta: string,
  subdir: string,
  mnt: string,
  opts: SubdirMountOptions = {},
  env: ChildEnv = {},
): Promise<void> {
  const args = ["mount", "--subdir", subdir];
  if (opts.readonly) args.push("-o", "ro");
  if (opts.log) args.push("--log", opts.log);
  await runSlayerfs([...args, meta, mnt], env);
}

/** Unmounts `mnt` (waiting for its daemon), lazily when it is busy. */
export async function unmountSubdir(mnt: string): Promise<void> {
  try {
    await runSlayerfs(["umount", mnt]);
  } catch (err) {
    if (err instanceof SubvolumeError && /is not mounted/.test(err.message)) return;
    await runSlayerfs(["umount", "--lazy", mnt]).catch((e) => {
      if (!(e instanceof SubvolumeError && /is not mounted/.test(e.message))) throw err;
    });
  }
}

/** Every SlayerFS mountpoint, from /proc/self/mountinfo (never touches the mounts). */
function slayerMounts(): string[] {
  const unescape = (f: string) =>
    f.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: string[] = [];
  for (const line of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const f = line.split(" ");
    const sep = f.indexOf("-");
    if (sep > 4 && f[sep + 1] === "fuse.slayerfs") out.push(unescape(f[4]!));
  }
  return out;
}

/** The SlayerFS mountpoints at or under `dir`. */
export function slayerMountsUnder(dir: string): string[] {
  return slayerMounts().filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Whether a SlayerFS mount is at `mnt`. */
export function isSlayerMount(mnt: string): boolean {
  return slayerMounts().includes(mnt);
}
