/**
 * Mounting while S3 is down: with `--writeback` a volume mounts offline (cached reads and staged
 * writes work, an uncached read is EIO) and uploads once the real s3rver process is back; without
 * it, the mount still refuses to start. Through the real CLI (`mount` in the background, `umount`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { CLI, forceUnmountSync, isMounted, REPO_ROOT } from "./_mount.ts";
import { run, type RunResult } from "./_run.ts";
import { startS3Server } from "./_s3server.ts";
import { DIR_LOCK_NAME } from "../core/_private_fs.ts";

function noise(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/**
 * The CLI with this server's credentials in its environment (and its daemons'), not in this
 * process's, which the test files running in parallel share.
 */
let credentials: Record<string, string> = {};

function runCli(args: string[]): Promise<RunResult> {
  return run(Deno.execPath(), ["run", "-A", CLI, ...args], { cwd: REPO_ROOT, env: credentials });
}

async function mount(args: string[]): Promise<void> {
  const r = await runCli(["mount", ...args]);
  assert.equal(r.code, 0, `mount ${args.join(" ")}: ${r.stderr}${r.stdout}`);
}

async function umount(mnt: string): Promise<void> {
  const r = await runCli(["umount", mnt]);
  assert.equal(r.code, 0, `umount: ${r.stderr}`);
}

Deno.test({
  name: "mount --writeback starts while S3 is down: cached reads, staged writes, upload later",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using server = await startS3Server();
    await server.createBucket("edge");
    credentials = {
      AWS_ACCESS_KEY_ID: server.accessKeyId,
      AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    };
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-offline-" });
    const meta = `sqlite3://${dir}/meta.db`;
    const mnt = `${dir}/mnt`;
    const log = ["--log", `${dir}/daemon.log`];
    const staged = ["--writeback", "--writeback-dir", `${dir}/stage`];
    const cached = ["--cache-dir", `${dir}/cache`];
    try {
      await Deno.mkdir(mnt);
      const f = await runCli(["format", "--storage", server.storeUrl("edge", "v"), meta, "edge"]);
      assert.equal(f.code, 0, f.stderr);
      // Two files reach S3 through a mount without a disk cache.
      const warm = noise(3 << 20);
      const cold = noise(2 << 20);
      const fresh = noise(5 << 20);
      await mount([...log, "--no-cache-dir", meta, mnt]);
      await Deno.writeFile(`${mnt}/warm`, warm);
      await Deno.writeFile(`${mnt}/cold`, cold);
      await umount(mnt);
      // Reading one of them fills the disk cache.
      await mount([...log, ...staged, ...cached, meta, mnt]);
      assert.deepEqual(await Deno.readFile(`${mnt}/warm`), warm);
      await umount(mnt);

      await server.kill(); // the outage starts
      // Without --writeback there is nothing to do offline: the mount refuses, as before.
      const refused = await runCli(["mount", ...log, ...cached, meta, mnt]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.ok(!isMounted(mnt));
      await mount([...log, ...staged, ...cached, meta, mnt]);
      assert.match(await Deno.readTextFile(`${dir}/daemon.log`), /does not answer.*offline/);
      assert.deepEqual(await Deno.readFile(`${mnt}/warm`), warm, "a cached file reads");
      await Deno.writeFile(`${mnt}/fresh`, fresh); // staged: close succeeds
      assert.deepEqual(await Deno.readFile(`${mnt}/fresh`), fresh);
      await assert.rejects(Deno.readFile(`${mnt}/cold`), (err: Error) => {
        assert.match(String(err), /Input\/output error|EIO/i, "an uncached file is EIO");
        return true;
      });

      await server.start(); // the outage ends: umount flushes the staged blocks to S3
      await umount(mnt);
      const left = [];
      for await (const e of Deno.readDir(`${dir}/stage`)) {
        if (e.isFile && e.name !== DIR_LOCK_NAME) left.push(e.name);
      }
      assert.deepEqual(left, [], "nothing left staged");
      // A mount with neither disk cache nor staging reads everything back from S3.
      await mount([...log, "--no-cache-dir", meta, mnt]);
      assert.deepEqual(await Deno.readFile(`${mnt}/fresh`), fresh);
      assert.deepEqual(await Deno.readFile(`${mnt}/cold`), cold);
      await umount(mnt);
    } finally {
      if (isMounted(mnt)) await runCli(["umount", mnt]).catch(() => {});
      forceUnmountSync(mnt);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
