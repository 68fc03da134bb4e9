/**
 * Runs every POSIX suite case on a private tmpfs, the reference: every case must pass there.
 *
 * @module
 */

import { posixCases } from "./posix/suite.ts";

Deno.test({
  name: "tmpfs passes every POSIX suite case",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const root = await Deno.makeTempDir({ prefix: "slayerfs-tmpfs-" });
    await Deno.chmod(root, 0o755);
    const mnt = `${root}/mnt`;
    await Deno.mkdir(mnt);
    let mounted = false;
    try {
      const out = await new Deno.Command("mount", {
        args: ["-t", "tmpfs", "-o", "size=2g,mode=0755", "slayerfs-ref", mnt],
        stderr: "piped",
      }).output();
      if (!out.success) {
        throw new Error(`mount -t tmpfs failed: ${new TextDecoder().decode(out.stderr)}`);
      }
      mounted = true;
      for (const [name, run] of Object.entries(posixCases)) {
        await t.step(name, () => run(mnt));
      }
    } finally {
      if (mounted) await new Deno.Command("umount", { args: ["-l", mnt] }).output();
      await Deno.remove(root, { recursive: true });
    }
  },
});
