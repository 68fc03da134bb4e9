/**
 * Several daemons mount one `sqlite3://` volume at once on one host: each serves, sees what the
 * others wrote, and gets its own writeback staging folder (the default one of a second mount is
 * `UUID-2`); a staging folder given twice on the command line fails the second mount with a line
 * naming the first daemon. `status META_URL` and `gc` keep working beside them. Through the real
 * CLI and real mounts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { forceUnmountSync, isMounted, runCli } from "./_mount.ts";

Deno.test({
  name: "two daemons serve one sqlite3 volume at once, each with its own staging folder",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-lock-" });
    const meta = `sqlite3://${dir}/meta.db`;
    const [a, b, c] = [`${dir}/a`, `${dir}/b`, `${dir}/c`];
    const status = async (mnt: string) => {
      const st = await runCli(["status", "--json", mnt]);
      assert.equal(st.code, 0, st.stderr);
      return JSON.parse(st.stdout) as { pid: number; writeback?: { dir?: string } };
    };
    try {
      for (const m of [a, b, c]) await Deno.mkdir(m);
      const f = await runCli(["format", "--storage", `file://${dir}/blocks`, meta, "one"]);
      assert.equal(f.code, 0, f.stderr);
      for (const mnt of [a, b]) {
        const r = await runCli(["mount", "--writeback", meta, mnt]);
        assert.equal(r.code, 0, `mount at ${mnt}: ${r.stderr}`);
      }
      const [sa, sb] = [await status(a), await status(b)];
      assert.notEqual(sa.pid, sb.pid);
      assert.ok(sa.writeback?.dir && sb.writeback?.dir, "both stage writes");
      assert.notEqual(sa.writeback.dir, sb.writeback.dir, "each has its own staging folder");
      assert.equal(sb.writeback.dir, `${sa.writeback.dir}-2`);

      // Each sees what the other wrote.
      await Deno.writeTextFile(`${a}/hello`, "from a");
      assert.equal(await Deno.readTextFile(`${b}/hello`), "from a");
      await Deno.writeTextFile(`${b}/more`, "from b");
      assert.equal(await Deno.readTextFile(`${a}/more`), "from b");

      // A staging folder chosen twice: the second mount fails, naming the first daemon.
      const third = await runCli([
        "mount",
        "--writeback",
        "--writeback-dir",
        sa.writeback.dir,
        meta,
        c,
      ]);
      assert.equal(third.code, 1, third.stderr);
      assert.match(third.stderr, new RegExp(`in use by another mount \\(pid ${sa.pid}\\)`));
      assert.ok(!isMounted(c), "the third mount is not there");

      // The offline tools work beside the mounts.
      const st = await runCli(["status", meta]);
      assert.equal(st.code, 0, st.stderr);
      assert.equal((await runCli(["gc", meta])).code, 0);
      for (const mnt of [a, b]) assert.equal((await runCli(["umount", mnt])).code, 0);
      // The folder is free again once its daemon is gone.
      const again = await runCli([
        "mount",
        "--writeback-dir",
        sa.writeback.dir,
        "--writeback",
        meta,
        c,
      ]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(await Deno.readTextFile(`${c}/more`), "from b");
      assert.equal((await runCli(["umount", c])).code, 0);
    } finally {
      for (const mnt of [a, b, c]) {
        if (isMounted(mnt)) await runCli(["umount", mnt]).catch(() => {});
        forceUnmountSync(mnt);
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
