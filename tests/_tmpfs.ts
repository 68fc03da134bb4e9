/**
 * A private tmpfs for the reference runs (the POSIX suite and the model test check themselves
 * against it): mounted on `mnt/` inside a fresh temporary directory (mode 0755, so uid 65534 can
 * traverse it), lazily unmounted and removed on dispose. Needs root.
 *
 * @example
 * ```ts ignore
 * await using tmp = await mountTmpfs("2g");
 * await Deno.writeTextFile(`${tmp.mnt}/f`, "x");
 * ```
 *
 * @module
 */

import { run } from "./_run.ts";

/** A mounted private tmpfs. */
export interface TmpfsMount extends AsyncDisposable {
  /** The mountpoint. */
  readonly mnt: string;
}

/** Mounts a tmpfs of at most `size` (a `mount -o size=` value, e.g. `"2g"`) in a temp dir. */
export async function mountTmpfs(size: string): Promise<TmpfsMount> {
  const root = await Deno.makeTempDir({ prefix: "slayerfs-tmpfs-" });
  const mnt = `${root}/mnt`;
  try {
    await Deno.chmod(root, 0o755);
    await Deno.mkdir(mnt);
    const out = await run("mount", [
      "-t",
      "tmpfs",
      "-o",
      `size=${size},mode=0755`,
      "slayerfs-ref",
      mnt,
    ]);
    if (out.code !== 0) throw new Error(`mount -t tmpfs failed: ${out.stderr}`);
  } catch (e) {
    await Deno.remove(root, { recursive: true });
    throw e;
  }
  return {
    mnt,
    async [Symbol.asyncDispose]() {
      await run("umount", ["-l", mnt]);
      await Deno.remove(root, { recursive: true });
    },
  };
}
