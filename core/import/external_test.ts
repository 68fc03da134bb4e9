import assert from "node:assert/strict";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { FaultyBlockStore } from "../../backends/store_faulty.ts";
import { MemoryBlockStore, MemoryKvEngine, NotFoundError } from "../../backends/mod.ts";
import { startS3Server } from "../../tests/_s3server.ts";
import { blockKey } from "../slice.ts";
import type { SliceId } from "../types.ts";
import { encodeExternal, externalKey, ExternalStore } from "./external.ts";

const BS = 64 * 1024;

Deno.test("ExternalStore reads external slices from their object without asking the volume's store, and other blocks from the store", async () => {
  await using s3 = await startS3Server();
  await s3.createBucket("data");
  s3.exportCredentials();
  const object = new Uint8Array(3 * BS + 100);
  for (let i = 0; i < object.length; i += 65536) {
    crypto.getRandomValues(object.subarray(i, i + 65536));
  }
  const client = s3.client();
  const { ETag } = await client.send(
    new PutObjectCommand({ Bucket: "data", Key: "ds/obj.bin", Body: object }),
  );
  client.destroy();

  // Slice 7 refers to the object from its second block on; slice 8 is an ordinary slice.
  const kv = new MemoryKvEngine();
  const ext = 7 as SliceId, own = 8 as SliceId;
  await kv.txn((tx) => {
    tx.set(
      externalKey(ext),
      encodeExternal({
        url: s3.storeUrl("data", "ds/"),
        key: "ds/obj.bin",
        etag: ETag!,
        offset: BS,
      }),
    );
    return Promise.resolve();
  });
  const inner = new FaultyBlockStore(new MemoryBlockStore());
  const ownBlock = new Uint8Array(1000).fill(42);
  await inner.put(blockKey(own, 0, 1000), ownBlock);
  const store = new ExternalStore(inner, kv, BS);
  try {
    // The slice's blocks at once (as readahead asks), and a range of one.
    const lens = [BS, BS, 100];
    const blocks = await Promise.all(lens.map((len, i) => store.get(blockKey(ext, i, len))));
    blocks.forEach((b, i) =>
      assert.deepEqual(b, object.subarray(BS + i * BS, BS + i * BS + lens[i]!), `block ${i}`)
    );
    assert.deepEqual(
      await store.get(blockKey(ext, 1, BS), 1000, 500),
      object.subarray(2 * BS + 1000, 2 * BS + 1500),
    );
    assert.equal(inner.counts.get, 0, "no GET of an external block reached the volume's store");

    // Ordinary blocks come from the store, a missing one is still missing.
    assert.deepEqual(await store.get(blockKey(own, 0, 1000)), ownBlock);
    assert.deepEqual(await store.get(blockKey(own, 0, 1000), 10, 20), ownBlock.subarray(10, 30));
    await assert.rejects(store.get(blockKey(9 as SliceId, 0, 5)), NotFoundError);
    assert.equal(inner.counts.get, 3);
  } finally {
    await store.close();
  }
});
