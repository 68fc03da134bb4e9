/**
 * Sequential readahead on real mounts of a volume on s3rver (`core/data.ts`, "Readahead"; the
 * mount's `-o readahead=SIZE`): a 48 MiB file (twelve 4 MiB blocks) is written through a mount
 * without a disk cache, and its first 8 MiB are read in order through a second mount with an empty
 * disk cache. By default the window grows to 48 blocks, so the whole file is fetched ahead;
 * `readahead=8M` fetches at most 8 MiB past the read, and `readahead=0` only the blocks read. A
 * 160 MiB file read whole lands whole in the disk cache: readahead waits for room in the disk
 * tier's write-behind queue (64 MiB) for the blocks it has in flight, so none is dropped.
 * Every read is checked byte for byte.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runCli, type SlayerMount, startSlayer } from "./_mount.ts";
import { diskBlocks, type MountStatus, mountStatus } from "./_status.ts";
import { startS3Server } from "./_s3server.ts";
import { bytesEqual, pseudoRandom } from "./posix/_helpers.ts";
import { readAt as pread } from "../core/_file_range.ts";

const MiB = 2 ** 20;
const SIZE = 48 * MiB; // twelve 4 MiB blocks

async function storeGets(fs: SlayerMount): Promise<number> {
  return (await mountStatus(fs)).storeGets ?? 0;
}

/** GETs of `fs` once they have not changed for 3 s (its state is written every 2 s), or at 30 s. */
async function settledGets(fs: SlayerMount): Promise<number> {
  const end = Date.now() + 30_000;
  let last = await storeGets(fs);
  for (;;) {
    await new Promise((r) => setTimeout(r, 3000));
    const now = await storeGets(fs);
    if (now === last || Date.now() > end) return now;
    last = now;
  }
}

/**
 * Writes a file of `size` bytes through a mount without a disk cache; reads `readBytes` of it in
 * order through another, which has an empty disk cache; returns that mount's status once settled.
 */
async function readStart(
  name: string,
  readerArgs: string[],
  size = SIZE,
  readBytes = 8 * MiB,
): Promise<MountStatus> {
  const data = pseudoRandom(size, name.length);
  await using server = await startS3Server();
  await server.createBucket(name);
  server.exportCredentials();
  await using writer = await startSlayer({
    storage: server.storeUrl(name, "v"),
    extraArgs: ["--no-cache-dir"],
  });
  await Deno.writeFile(`${writer.mnt}/f`, data);
  await using reader = await startSlayer({
    meta: writer.meta,
    format: false,
    extraArgs: ["--cache-dir", `${writer.dir}/cache-${name}`, ...readerArgs],
  });
  using file = await Deno.open(`${reader.mnt}/f`);
  for (let off = 0; off < readBytes; off += 256 * 1024) {
    const got = await pread(file, off, 256 * 1024);
    bytesEqual(got, data.subarray(off, off + 256 * 1024), `at ${off}`);
  }
  await settledGets(reader);
  return await mountStatus(reader);
}

Deno.test({
  name: "S3 mount: a sequential read fetches the file ahead of itself (default readahead)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const gets = (await readStart("ahead", [])).storeGets ?? 0;
    assert.ok(gets >= 12, `${gets} GETs: the whole file was not fetched ahead`);
  },
});

Deno.test({
  name: "S3 mount with -o readahead=8M: at most 8 MiB ahead of the read",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const gets = (await readStart("ahead8m", ["-o", "readahead=8M"])).storeGets ?? 0;
    // The kernel's own readahead carries the last FUSE read past 8 MiB (into block 2): the
    // blocks read (3) and 8 MiB past the end of that read (2 more, the window straddles them).
    assert.ok(gets >= 3 && gets <= 5, `${gets} GETs`);
  },
});

Deno.test({
  name: "S3 mount with -o readahead=0: only the blocks read are fetched",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const gets = (await readStart("noahead", ["-o", "readahead=0"])).storeGets ?? 0;
    // The two blocks read, and the next if the kernel's own readahead crossed into it.
    assert.ok(gets >= 2 && gets <= 3, `${gets} GETs`);
  },
});

Deno.test({
  name: "S3 mount: a 160 MiB file read in order lands whole in the disk cache, none dropped",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const s = await readStart("whole", [], 160 * MiB, 160 * MiB);
    const disk = diskBlocks(s);
    assert.equal(s.cache?.droppedWrites, 0, JSON.stringify(s.cache));
    assert.equal(disk, 40, `${disk} of the 40 blocks in the disk cache`);
    assert.equal(s.storeGets, 40, "each block fetched once");
  },
});

Deno.test({
  name: "mount -o readahead=lots: refused with a clear error before mounting",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const mnt = await Deno.makeTempDir();
    try {
      const r = await runCli(["mount", "-o", "readahead=lots", "mem://ahead", mnt]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /Invalid mount option readahead=lots: Invalid size "lots"/);
    } finally {
      await Deno.remove(mnt, { recursive: true });
    }
  },
});
