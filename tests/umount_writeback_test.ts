/**
 * `umount` of a `--writeback` mount on a real s3rver: with blocks not uploaded yet it says how
 * many are left and where they are staged; `umount --flush` waits until they are uploaded.
 *
 * @module
 */

import assert from "node:assert/strict";
import { forceUnmountSync, isMounted, runCli } from "./_mount.ts";
import { noise, writeSynced } from "./_io.ts";
import { startS3Server } from "./_s3server.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The staged block files in the writeback folder (not its temporary files or lock). */
function staged(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].filter((e) => e.isFile && !e.name.startsWith("."))
      .map((e) => e.name);
  } catch {
    return [];
  }
}

Deno.test({
  name: "umount warns of staged uploads and where they are; umount --flush waits for them",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using server = await startS3Server();
    await server.createBucket("wbvol");
    server.exportCredentials();
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-umount-" });
    const mnt = `${dir}/mnt`;
    const stage = `${dir}/stage`;
    const meta = `sqlite3://${dir}/meta.db`;
    const mountArgs = [
      "mount",
      "--writeback",
      "--writeback-dir",
      stage,
      "--no-cache-dir",
      meta,
      mnt,
    ];
    const mount = async () => {
      const r = await runCli(mountArgs);
      assert.equal(r.code, 0, r.stderr);
    };
    try {
      await Deno.mkdir(mnt);
      const f = await runCli(["format", "--storage", server.storeUrl("wbvol", "v"), meta, "wbvol"]);
      assert.equal(f.code, 0, f.stderr);
      await mount();

      // --flush: the server is down, a file is staged, umount waits until it is uploaded.
      await server.kill();
      const a = noise(3 << 20);
      await writeSynced(`${mnt}/a`, a);
      assert.ok(staged(stage).length > 0, "staged while the server is down");
      const flushing = runCli(["umount", "--flush", mnt]);
      await sleep(2500);
      assert.ok(isMounted(mnt), "umount --flush waits for the uploads");
      await server.start();
      const fl = await flushing;
      assert.equal(fl.code, 0, fl.stderr);
      assert.match(fl.stderr, /waiting for \d+ staged blocks \([\d.]+ MiB\) to upload from /);
      assert.doesNotMatch(fl.stderr, /not uploaded/);
      assert.deepEqual(staged(stage), [], "everything uploaded");
      assert.ok(!isMounted(mnt));

      // Without --flush, during an outage: a warning with how much is left and where.
      await mount();
      await server.kill();
      const b = noise(2 << 20);
      await writeSynced(`${mnt}/b`, b);
      const u = await runCli(["umount", mnt]);
      assert.equal(u.code, 0, u.stderr);
      assert.ok(!isMounted(mnt));
      const left = staged(stage).length;
      assert.ok(left > 0, "the blocks stay staged");
      assert.match(
        u.stderr,
        new RegExp(
          `warning: ${left} blocks \\(2\\.0 MiB\\) written with --writeback are not uploaded ` +
            `yet; they stay staged in ${stage} and upload at the next mount`,
        ),
      );

      // They upload at the next mount.
      await server.start();
      await mount();
      assert.deepEqual(await Deno.readFile(`${mnt}/b`), b);
      assert.deepEqual(await Deno.readFile(`${mnt}/a`), a);
      const last = await runCli(["umount", "--flush", mnt]);
      assert.equal(last.code, 0, last.stderr);
      assert.deepEqual(staged(stage), []);
    } finally {
      forceUnmountSync(mnt);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
