/**
 * The disk cache and the writeback stage sharing one small filesystem (a 64 MiB tmpfs) through a
 * real mount over a real s3rver: a write far larger than the disk succeeds while S3 answers (the
 * cache gives way, the stage waits for uploads), and fails with ENOSPC only when S3 is down and
 * the stage is full, without harming what was fsync'ed before.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runCli, type SlayerMount, startSlayer } from "./_mount.ts";
import { type S3TestServer, startS3Server } from "./_s3server.ts";
import { mountTmpfs } from "./_tmpfs.ts";
import { run } from "./_run.ts";

const MiB = 1 << 20;

/** Writes `mib` MiB of random bytes to `path` outside the mount, for `dd` to copy. */
async function randomFile(path: string, mib: number): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  const chunk = new Uint8Array(MiB);
  for (let i = 0; i < mib; i++) {
    for (let o = 0; o < MiB; o += 65536) crypto.getRandomValues(chunk.subarray(o, o + 65536));
    await f.write(chunk);
  }
}

/** `dd if=src of=dst bs=1M conv=fsync`. */
function dd(src: string, dst: string): ReturnType<typeof run> {
  return run("dd", [`if=${src}`, `of=${dst}`, "bs=1M", "conv=fsync"]);
}

async function sameFile(a: string, b: string): Promise<boolean> {
  return (await run("cmp", ["-s", a, b])).code === 0;
}

async function duBytes(path: string): Promise<number> {
  let bytes = 0;
  for await (const e of Deno.readDir(path)) {
    const p = `${path}/${e.name}`;
    if (e.isDirectory) bytes += await duBytes(p);
    else if (e.isFile) bytes += (await Deno.stat(p)).size;
  }
  return bytes;
}

async function status(mnt: string): Promise<Record<string, unknown>> {
  const r = await runCli(["status", "--json", mnt]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/**
 * Runs `fn` over a writeback mount of a fresh s3rver bucket whose cache and staging directories
 * are on one 64 MiB tmpfs (`disk`), with `work` a scratch folder outside the mount.
 */
async function withSmallDisk(
  fn: (ctx: { fs: SlayerMount; server: S3TestServer; disk: string; work: string }) => Promise<void>,
): Promise<void> {
  await using tmpfs = await mountTmpfs("64m");
  await using server = await startS3Server();
  await server.createBucket("small");
  server.exportCredentials();
  const work = await Deno.makeTempDir({ prefix: "slayerfs-small-" });
  try {
    await using fs = await startSlayer({
      storage: server.storeUrl("small", "v"),
      extraArgs: [
        "--writeback",
        "--writeback-dir",
        `${tmpfs.mnt}/stage`,
        "--cache-dir",
        `${tmpfs.mnt}/cache`,
      ],
    });
    await fn({ fs, server, disk: tmpfs.mnt, work });
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

Deno.test({
  name: "a 300 MiB dd conv=fsync fits through a 64 MiB cache and writeback disk while S3 answers",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withSmallDisk(async ({ fs, work }) => {
      const st = await status(fs.mnt) as { cache: { tiers: Array<{ capacity: number }> } };
      const cap = st.cache.tiers[1]?.capacity ?? 0;
      assert.ok(cap >= 31 * MiB && cap <= 32 * MiB, `the cache may take half the disk: ${cap}`);
      await randomFile(`${work}/src`, 300);
      const r = await dd(`${work}/src`, `${fs.mnt}/big`);
      assert.equal(r.code, 0, `dd failed: ${r.stderr}\n${fs.log().slice(-3000)}`);
      await fs.restart(); // a clean stop uploads the rest; the next mount reads from S3
      assert.ok(await sameFile(`${work}/src`, `${fs.mnt}/big`), "the file reads back intact");
    }),
});

Deno.test({
  name: "with S3 down a write fills the 64 MiB stage, then gets ENOSPC; fsync'ed data survives",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withSmallDisk(async ({ fs, server, disk, work }) => {
      await randomFile(`${work}/before`, 40);
      await randomFile(`${work}/src`, 300);
      // Uploaded while S3 answers; its blocks then fill the cache.
      assert.equal((await dd(`${work}/before`, `${fs.mnt}/before`)).code, 0);
      assert.ok(await sameFile(`${work}/before`, `${fs.mnt}/before`));
      await server.kill(); // the outage starts
      const r = await dd(`${work}/src`, `${fs.mnt}/big`);
      assert.notEqual(r.code, 0, "the write cannot fit while S3 is down");
      assert.match(r.stderr, /No space left on device/, r.stderr);
      // The stage filled the disk first: the cache gave its room (its blocks are in S3) and
      // only the free-space reserve (10% of the disk) and a block or two are left.
      const staged = await duBytes(`${disk}/stage`);
      assert.ok(staged >= 44 * MiB, `only ${staged} bytes staged when ENOSPC came`);
      const cached = await duBytes(`${disk}/cache`);
      assert.ok(cached <= 8 * MiB, `the cache still holds ${cached} bytes`);
      // `status` shows it too (the daemon refreshes its state file every 2 s).
      const stagedBytes = async () =>
        ((await status(fs.mnt)).writeback as { stagedBytes: number } | undefined)?.stagedBytes ?? 0;
      let seen = await stagedBytes();
      for (let i = 0; i < 20 && seen < 44 * MiB; i++) {
        await new Promise((r) => setTimeout(r, 250));
        seen = await stagedBytes();
      }
      assert.ok(seen >= 44 * MiB, `status shows ${seen} bytes staged`);
      await server.start(); // S3 is back: the stage drains
      assert.ok(await sameFile(`${work}/before`, `${fs.mnt}/before`), "fsync'ed data reads back");
      await fs.restart();
      assert.ok(await sameFile(`${work}/before`, `${fs.mnt}/before`), "and after a remount");
    }),
});
