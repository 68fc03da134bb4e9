/**
 * Written blocks in the disk cache, on real mounts of a volume on s3rver (`core/data.ts`,
 * "Caches"): by default a block shorter than the block size (a small file, the end of a file) is
 * kept in the disk cache when written, and full 4 MiB blocks are not, so reading a 12 MiB file back
 * fetches its three blocks while the small file costs no GET; with `--cache-large-write` every
 * written block is kept and reading both back costs no GET. Every read is checked byte for byte.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startSlayer } from "./_mount.ts";
import { diskBlocks, mountStatus } from "./_status.ts";
import { startS3Server } from "./_s3server.ts";
import { bytesEqual, pseudoRandom } from "./posix/_helpers.ts";

const MiB = 2 ** 20;

/**
 * Writes a 12 MiB file and a 100 KiB one through a mount with a disk cache and `args`; returns the
 * blocks its disk cache holds once settled, and the GETs that reading both back then took.
 */
async function writeThenRead(name: string, args: string[]): Promise<[number, number]> {
  await using server = await startS3Server();
  await server.createBucket(name);
  server.exportCredentials();
  await using fs = await startSlayer({ storage: server.storeUrl(name, "v"), extraArgs: args });
  const big = pseudoRandom(12 * MiB, 1);
  const small = pseudoRandom(100 * 1024, 2);
  await Deno.writeFile(`${fs.mnt}/big`, big);
  await Deno.writeFile(`${fs.mnt}/small`, small);
  // The disk tier writes behind; the state file is rewritten every 2 s.
  let s = await mountStatus(fs);
  for (let prev = -1, end = Date.now() + 30_000; diskBlocks(s) !== prev && Date.now() < end;) {
    prev = diskBlocks(s);
    await new Promise((r) => setTimeout(r, 2500));
    s = await mountStatus(fs);
  }
  // Past the kernel's page cache: a fresh mount of the same volume and disk cache.
  await fs.restart();
  const before = (await mountStatus(fs)).storeGets ?? 0;
  bytesEqual(await Deno.readFile(`${fs.mnt}/big`), big, "the 12 MiB file read back");
  bytesEqual(await Deno.readFile(`${fs.mnt}/small`), small, "the 100 KiB file read back");
  await new Promise((r) => setTimeout(r, 2500));
  return [diskBlocks(s), ((await mountStatus(fs)).storeGets ?? 0) - before];
}

Deno.test({
  name: "S3 mount: written blocks shorter than a block are disk-cached, full ones are not",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const [cached, gets] = await writeThenRead("partial", []);
    assert.equal(cached, 1, "only the small file's block is in the disk cache");
    assert.equal(gets, 3, "the three blocks of the 12 MiB file are fetched");
  },
});

Deno.test({
  name: "S3 mount with --cache-large-write: every written block is disk-cached",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const [cached, gets] = await writeThenRead("large", ["--cache-large-write"]);
    assert.equal(cached, 4, "three full blocks and the small file's");
    assert.equal(gets, 0, "both files read back from the disk cache");
  },
});
