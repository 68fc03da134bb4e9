/**
 * Mount-table helpers that never touch the mounted filesystem itself (safe to call from the
 * daemon that serves it): {@linkcode isMounted}, {@linkcode mountInfo}, {@linkcode forceUnmount}.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";

/** One line of `/proc/self/mountinfo`. */
export interface MountInfo {
  /** `major:minor` of the mounted device (for FUSE, the connection's bdi name). */
  device: string;
  /** The mount point, unescaped. */
  mountpoint: string;
  /** The filesystem type, e.g. `fuse.slayerfs`. */
  fsType: string;
  /** The mount source, e.g. the `fsname`. */
  source: string;
}

/** Undoes the octal escapes (`\040` for a space) of `/proc/self/mountinfo`. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Resolves `path` to an absolute path, following symlinks in its parent only: the last
 * component is not looked up, so a (possibly hung) mount at `path` is never touched.
 */
export function resolveMountpoint(path: string): string {
  const abs = resolve(path);
  if (abs === "/") return abs;
  try {
    return join(Deno.realPathSync(dirname(abs)), basename(abs));
  } catch {
    return abs;
  }
}

/** The entries of `/proc/self/mountinfo` whose mount point is `path` (last = topmost). */
export function mountInfo(path: string): MountInfo[] {
  const want = resolveMountpoint(path);
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/self/mountinfo");
  } catch {
    return [];
  }
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const fields = line.split(" ");
    const mp = fields[4];
    if (mp === undefined || unescapeMount(mp) !== want) continue;
    const sep = fields.indexOf("-");
    out.push({
      device: fields[2] ?? "",
      mountpoint: want,
      fsType: sep >= 0 ? fields[sep + 1] ?? "" : "",
      source: sep >= 0 ? unescapeMount(fields[sep + 2] ?? "") : "",
    });
  }
  return out;
}

/**
 * Whether something is mounted at `path`, from `/proc/self/mountinfo`.
 *
 * @example
 * ```ts
 * import { isMounted } from "./mounts.ts";
 * if (!isMounted("/proc")) throw new Error("expected /proc to be a mount point");
 * ```
 */
export function isMounted(path: string): boolean {
  return mountInfo(path).length > 0;
}

/**
 * Detaches whatever is mounted at `path`: `fusermount3 -u -z`, falling back to `umount -l`.
 * Resolves to whether `path` is no longer a mount point. Never throws.
 */
export async function forceUnmount(path: string): Promise<boolean> {
  const target = resolveMountpoint(path);
  const attempts: [string, string[]][] = [
    ["fusermount3", ["-u", "-z", target]],
    ["umount", ["-l", target]],
  ];
  for (const [cmd, args] of attempts) {
    if (!isMounted(target)) return true;
    try {
      await new Deno.Command(cmd, { args, stdin: "null", stdout: "null", stderr: "null" })
        .output();
    } catch {
      // Command missing: try the next one.
    }
  }
  return !isMounted(target);
}
