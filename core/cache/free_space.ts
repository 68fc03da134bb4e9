/**
 * Free and total bytes of a filesystem, for the free-space reserve of the disk cache tiers.
 *
 * @module
 */

import { tryLoadLibc } from "../libc.ts";

/** Free and total bytes of a filesystem, as available to unprivileged users. */
export interface FreeSpace {
  /** Bytes available (`f_bavail * f_frsize`). */
  free: number;
  /** Size of the filesystem (`f_blocks * f_frsize`). */
  total: number;
}

const encoder = new TextEncoder();

/**
 * Free and total bytes of the filesystem holding `path`: `statvfs(3)` from libc through FFI
 * (`SLAYERFS_LIBC` overrides the library path), or `df -Pk` when FFI is unavailable.
 *
 * @example
 * ```ts
 * import { statFreeSpace } from "./free_space.ts";
 * import { ok } from "node:assert/strict";
 *
 * const { free, total } = await statFreeSpace(Deno.cwd());
 * ok(total > 0 && free <= total);
 * ```
 */
export async function statFreeSpace(path: string): Promise<FreeSpace> {
  const lib = tryLoadLibc();
  if (lib !== null) {
    const buf = new Uint8Array(128); // struct statvfs is 112 bytes on 64-bit glibc
    const cpath = encoder.encode(`${path}\0`);
    if ((await lib.statvfs(cpath, buf)) !== 0) {
      throw new Error(`statvfs failed for "${path}"`);
    }
    const v = new DataView(buf.buffer);
    const frsize = Number(v.getBigUint64(8, true)); // f_frsize
    return {
      total: Number(v.getBigUint64(16, true)) * frsize, // f_blocks
      free: Number(v.getBigUint64(32, true)) * frsize, // f_bavail
    };
  }
  const out = await new Deno.Command("df", { args: ["-Pk", path], stdout: "piped", stderr: "null" })
    .output();
  const fields = new TextDecoder().decode(out.stdout).trim().split("\n")[1]?.trim().split(/\s+/);
  const total = Number(fields?.[1]) * 1024;
  const free = Number(fields?.[3]) * 1024;
  if (!out.success || !Number.isFinite(total) || !Number.isFinite(free)) {
    throw new Error(`df failed for "${path}"`);
  }
  return { free, total };
}
