/**
 * Random reads of segmented blocks on real mounts (`file://` storage, and s3rver): a file read
 * at random 4 KiB offsets through the kernel returns what was written, and a stored object
 * corrupted behind the daemon's back fails the reads of its corrupt segment with EIO while its
 * other segments still read.
 *
 * @module
 */

import assert from "node:assert/strict";
import { openBlockStore } from "../backends/mod.ts";
import { type StartOptions, startSlayer } from "./_mount.ts";
import { startS3Server } from "./_s3server.ts";
import { readAt as pread } from "../core/_file_range.ts";
import { pseudoRandom as noise } from "./posix/_helpers.ts";

const SIZE = 12 << 20; // three 4 MiB blocks

function isEio(err: unknown): boolean {
  return /Input\/output error|os error 5\b/i.test(String(err)) ||
    (err as { code?: string }).code === "EIO";
}

/** Flips byte `length - 100` of every block object (each block's last segment). */
async function corruptBlocks(storage: string): Promise<number> {
  const store = await openBlockStore(storage);
  try {
    const { objects } = await store.list("chunks/");
    for (const o of objects) {
      const data = await store.get(o.key);
      data[data.byteLength - 100]! ^= 0x20;
      await store.put(o.key, data);
    }
    return objects.length;
  } finally {
    await store.close();
  }
}

/** 300 random 4 KiB reads of `path`, each checked against `data`. */
async function randomReads(path: string, data: Uint8Array): Promise<void> {
  using file = await Deno.open(path);
  let x = 99;
  for (let i = 0; i < 300; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const off = 4096 * (1 + (x % (data.byteLength / 4096 - 1)));
    assert.deepEqual(await pread(file, off, 4096), data.subarray(off, off + 4096), `at ${off}`);
  }
}

async function randomReadsAndCorruption(opts: StartOptions): Promise<void> {
  await using fs = await startSlayer(opts);
  const data = noise(SIZE, 5);
  await Deno.writeFile(`${fs.mnt}/f`, data);
  await fs.restart(); // cold: nothing cached in the kernel or the daemon
  await randomReads(`${fs.mnt}/f`, data);
  assert.ok((await corruptBlocks(fs.storage)) >= 3);
  await fs.restart();
  {
    using file = await Deno.open(`${fs.mnt}/f`);
    // The last segment of the last block is corrupt; the first segment of the first block is not.
    const err = await pread(file, SIZE - 4096, 4096).then(() => undefined, (e: unknown) => e);
    assert.ok(err !== undefined && isEio(err), `read of a corrupt segment: ${err}`);
    assert.deepEqual(await pread(file, 8192, 4096), data.subarray(8192, 12288));
  }
  // A whole read meets the corrupt segments too.
  await assert.rejects(Deno.readFile(`${fs.mnt}/f`), (e: unknown) => isEio(e));
}

Deno.test({
  name: "file:// mount: random 4 KiB reads match the written data; a corrupt segment is EIO",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await randomReadsAndCorruption({});
  },
});

Deno.test({
  name: "S3 mount: random 4 KiB reads match the written data; a corrupt segment is EIO",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using server = await startS3Server();
    await server.createBucket("seg");
    server.exportCredentials();
    await randomReadsAndCorruption({
      storage: server.storeUrl("seg", "v"),
      extraArgs: ["--no-cache-dir"],
    });
  },
});

Deno.test({
  name: "S3 mount with its default disk cache: random 4 KiB reads (filling the cache behind) match",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using server = await startS3Server();
    await server.createBucket("segdisk");
    server.exportCredentials();
    await using fs = await startSlayer({ storage: server.storeUrl("segdisk", "v") });
    const data = noise(SIZE, 6);
    await Deno.writeFile(`${fs.mnt}/f`, data);
    await fs.restart();
    await randomReads(`${fs.mnt}/f`, data);
    await fs.restart(); // the blocks filled in behind are read from the disk tier now
    await randomReads(`${fs.mnt}/f`, data);
  },
});
