/**
 * A `sqlite3://` volume is single-host: a second `mount` of it (at another mountpoint) fails with
 * exit 1 and a message naming the first mount and the multi-host engines, while the first keeps
 * serving and `status`/`gc` keep working beside it; the lock goes with an unmount or a kill -9.
 * Through the real CLI and real mounts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { forceUnmountSync, isMounted, runCli } from "./_mount.ts";
import { processAlive } from "../cli/_state.ts";

Deno.test({
  name: "a second mount of a sqlite3 volume fails until the first ends, even by kill -9",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-lock-" });
    const meta = `sqlite3://${dir}/meta.db`;
    const a = `${dir}/a`;
    const b = `${dir}/b`;
    const mount = async (mnt: string) => {
      const r = await runCli(["mount", meta, mnt]);
      assert.equal(r.code, 0, `mount at ${mnt}: ${r.stderr}`);
      const st = await runCli(["status", "--json", mnt]);
      return (JSON.parse(st.stdout) as { pid: number }).pid;
    };
    try {
      await Deno.mkdir(a);
      await Deno.mkdir(b);
      const f = await runCli(["format", "--storage", `file://${dir}/blocks`, meta, "one"]);
      assert.equal(f.code, 0, f.stderr);
      const first = await mount(a);
      await Deno.writeTextFile(`${a}/hello`, "hi");

      for (const fg of [[], ["--foreground"]]) {
        const second = await runCli(["mount", ...fg, meta, b]);
        assert.equal(second.code, 1, `second mount ${fg}: ${second.stderr}`);
        assert.match(second.stderr, new RegExp(`already mounted at ${a} \\(pid ${first}\\)`));
        assert.match(second.stderr, /multi-host metadata engine/);
        assert.ok(!isMounted(b), "the second mount is not there");
      }
      // The first still serves; the offline tools still work beside it.
      assert.equal(await Deno.readTextFile(`${a}/hello`), "hi");
      await Deno.writeTextFile(`${a}/more`, "still serving");
      const status = await runCli(["status", meta]);
      assert.equal(status.code, 0, status.stderr);
      assert.equal((await runCli(["gc", meta])).code, 0);
      assert.equal((await runCli(["gc", "--delete", meta])).code, 0);

      // After an unmount, another mountpoint can have it.
      assert.equal((await runCli(["umount", a])).code, 0);
      const next = await mount(b);
      assert.equal(await Deno.readTextFile(`${b}/more`), "still serving");

      // A daemon killed with SIGKILL takes its lock with it.
      Deno.kill(next, "SIGKILL");
      for (let i = 0; i < 100 && processAlive(next); i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await mount(a);
      assert.equal(await Deno.readTextFile(`${a}/hello`), "hi");
      assert.equal((await runCli(["umount", a])).code, 0);
    } finally {
      for (const mnt of [a, b]) {
        if (isMounted(mnt)) await runCli(["umount", mnt]).catch(() => {});
        forceUnmountSync(mnt);
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
