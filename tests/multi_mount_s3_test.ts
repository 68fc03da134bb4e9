/**
 * Two daemons mount one volume whose metadata is in a private Redis and whose blocks are in a
 * real S3 server (s3rver), as two hosts would: close-to-open for data written through either
 * mount (several blocks, straight from S3 on the other), names across mounts, and an unlinked
 * file's objects deleted from the bucket once the last mount closes it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { startSlayer } from "./_mount.ts";
import { startRedis } from "./_redis.ts";
import { startS3Server } from "./_s3server.ts";
import { bytesEqual as same, pseudoRandom as rand } from "./posix/_helpers.ts";

async function until(what: string, fn: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test({
  name: "two mounts of one volume on Redis and S3 see each other's data and names",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using redis = await startRedis();
    await using s3 = await startS3Server();
    await s3.createBucket("shared");
    s3.exportCredentials();
    const client = s3.client();
    const objects = async () =>
      (await client.send(new ListObjectsV2Command({ Bucket: "shared", Prefix: "vol/chunks/" })))
        .KeyCount ?? 0;
    try {
      const meta = redis.url({ prefix: "s3two" });
      await using a = await startSlayer({ meta, storage: s3.storeUrl("shared", "vol") });
      await using b = await startSlayer({ meta, format: false });

      // 9 MiB: three blocks, fetched from S3 by B, which never had them.
      const big = rand(9 * 2 ** 20 + 123, 1);
      await Deno.writeFile(`${a.mnt}/model.bin`, big);
      assert.ok((await objects()) >= 3, "A's blocks are objects in the bucket");
      same(await Deno.readFile(`${b.mnt}/model.bin`), big, "B reads A's file");

      // B rewrites the middle in place and closes: A's next open sees it.
      const patch = rand(5 * 2 ** 20, 2);
      const f = await Deno.open(`${b.mnt}/model.bin`, { write: true });
      await f.seek(2 ** 20, Deno.SeekMode.Start);
      for (let w = 0; w < patch.length;) w += await f.write(patch.subarray(w));
      f.close();
      const want = big.slice();
      want.set(patch, 2 ** 20);
      same(await Deno.readFile(`${a.mnt}/model.bin`), want, "A reads B's overwrite");

      // Names: a rename and a new folder on A show on B within the 1 s TTLs.
      await Deno.mkdir(`${a.mnt}/v2`);
      await Deno.rename(`${a.mnt}/model.bin`, `${a.mnt}/v2/model.bin`);
      await until("B to see the rename", async () => {
        try {
          return (await Deno.stat(`${b.mnt}/v2/model.bin`)).size === want.length;
        } catch {
          return false;
        }
      });
      same(await Deno.readFile(`${b.mnt}/v2/model.bin`), want, "B reads it at its new name");

      // Unlinked on B while A has it open: A still reads it whole; its objects go from the
      // bucket once A closes it.
      const held = await Deno.open(`${a.mnt}/v2/model.bin`, { read: true });
      try {
        await Deno.remove(`${b.mnt}/v2/model.bin`);
        await until("A to see the unlink", async () => {
          try {
            await Deno.stat(`${a.mnt}/v2/model.bin`);
            return false;
          } catch {
            return true;
          }
        });
        const back = new Uint8Array(want.length);
        let got = 0;
        for (;;) {
          const n = await held.read(back.subarray(got));
          if (n === null || got + n === back.length) {
            got += n ?? 0;
            break;
          }
          got += n;
        }
        same(back.subarray(0, got), want, "A reads the unlinked file it holds open");
      } finally {
        held.close();
      }
      await until("the unlinked file's objects to be deleted", async () => (await objects()) === 0);
    } finally {
      client.destroy();
    }
  },
});
