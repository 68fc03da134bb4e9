/**
 * `slayerfs umount [--lazy] MOUNTPOINT`: unmounts, then waits for the daemon to finish flushing
 * and exit.
 *
 * @module
 */

import { resolve } from "node:path";
import { CliError } from "./_errors.ts";
import type { ParsedArgs } from "./_spec.ts";
import { processAlive, readState } from "./_state.ts";

/** Runs `slayerfs umount` with its checked arguments. */
export async function cmdUmount(args: ParsedArgs): Promise<void> {
  const mnt = resolve(args.positionals[0]!);
  const { isMounted, forceUnmount } = await import("../ffi/mounts.ts");
  if (!isMounted(mnt)) throw new CliError(`"${mnt}" is not mounted`);
  const state = await readState(mnt);
  if (args.flag("lazy")) {
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
