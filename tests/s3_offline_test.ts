/**
 * S3 behaviour through a real mount: writeback staging and offline mode, the disk cache tier,
 * kill -9 with staged blocks, and EIO (not a hang) for an outage without writeback. The S3 server
 * is a real s3rver process that the tests stop and restart.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runCli, startSlayer } from "./_mount.ts";
import { noise, writeSynced } from "./_io.ts";
import { startS3Server } from "./_s3server.ts";
import { openBlockStore } from "../backends/mod.ts";
import { DIR_LOCK_NAME } from "../core/_private_fs.ts";

async function status(mnt: string): Promise<Record<string, unknown>> {
  const r = await runCli(["status", "--json", mnt]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

Deno.test({
  name: "writeback mount keeps writing and reading through an S3 outage, then uploads",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using server = await startS3Server();
    await server.createBucket("offline");
    server.exportCredentials();
    const work = await Deno.makeTempDir({ prefix: "slayerfs-wb-" });
    try {
      const a = noise(3 << 20);
      const b = noise(5 << 20);
      await using fs = await startSlayer({
        storage: server.storeUrl("offline", "v"),
        extraArgs: [
          "--writeback",
          "--writeback-dir",
          `${work}/stage`,
          "--cache-dir",
          `${work}/cache`,
        ],
      });
      await writeSynced(`${fs.mnt}/a`, a);
      // The daemon's log tells why, if the mount dies under the outage.
      const dump = () => console.error(`daemon log:\n${fs.log()}`);
      await server.kill(); // the outage starts
      await writeSynced(`${fs.mnt}/b`, b); // staged on local disk: fsync still succeeds
      try {
        assert.deepEqual(await Deno.readFile(`${fs.mnt}/b`), b);
        assert.deepEqual(await Deno.readFile(`${fs.mnt}/a`), a);
      } catch (err) {
        dump();
        throw err;
      }
      let staged = 0;
      for (let i = 0; i < 40 && staged === 0; i++) {
        await new Promise((r) => setTimeout(r, 250)); // the daemon refreshes its status every 2 s
        const st = await status(fs.mnt) as { writeback?: { stagedObjects: number } };
        staged = st.writeback?.stagedObjects ?? 0;
      }
      assert.ok(staged > 0, "blocks wait in the staging area");
      // kill -9 with blocks staged: the next mount must upload them.
      await fs.kill9();
      await server.start();
      await fs.restart();
      try {
        assert.deepEqual(await Deno.readFile(`${fs.mnt}/b`), b);
      } catch (err) {
        dump();
        throw err;
      }
      await fs.stop(); // umount flushes the staging area
      // Everything reached S3, and nothing is left staged.
      const left = [];
      for await (const e of Deno.readDir(`${work}/stage`)) {
        if (e.isFile && e.name !== DIR_LOCK_NAME) left.push(e.name);
      }
      assert.deepEqual(left, []);
      const store = await openBlockStore(server.storeUrl("offline", "v"));
      try {
        let bytes = 0;
        let page = await store.list("chunks/");
        for (;;) {
          for (const o of page.objects) bytes += o.size;
          if (!page.truncated) break;
          page = await store.list("chunks/", { startAfter: page.objects.at(-1)!.key });
        }
        assert.ok(bytes >= a.length + b.length, `${bytes} bytes in S3`);
      } finally {
        await store.close();
      }
    } finally {
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "an S3 outage without writeback surfaces as EIO, not a hang",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using server = await startS3Server();
    await server.createBucket("outage");
    server.exportCredentials();
    await using fs = await startSlayer({ storage: server.storeUrl("outage", "v") });
    await writeSynced(`${fs.mnt}/ok`, noise(1 << 20));
    await server.kill();
    const started = Date.now();
    await assert.rejects(writeSynced(`${fs.mnt}/fails`, noise(1 << 20)), (err: Error) => {
      return /Input\/output error|EIO/i.test(String(err)) || err.name === "Interrupted" ||
        (err as { code?: string }).code === "EIO";
    });
    assert.ok(Date.now() - started < 120_000, "the error comes in bounded time");
    await server.start();
  },
});
