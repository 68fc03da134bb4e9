import assert from "node:assert/strict";
import { FaultyBlockStore, FileBlockStore, MemoryKvEngine } from "../backends/mod.ts";
import { collectVolumeGarbage } from "./gc.ts";
import { blockKey } from "./slice.ts";
import { formatVolume, Volume } from "./volume.ts";
import { blake3 } from "../wasm/mod.ts";
import { toHex } from "./block_codec.ts";

const HOUR = 3_600_000;

function pattern(size: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed * 7) & 0xff);
}

/**
 * A volume on a file block store whose deletes can be made to fail, and a second store on the
 * same folder (what `slayerfs gc` opens next to a live mount).
 */
async function volumeWithFaults(dedup = false) {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-gc-" });
  const kv = new MemoryKvEngine();
  await formatVolume(kv, { name: "gc", storage: `file://${dir}`, blockSize: 64 << 10, dedup });
  const faulty = new FaultyBlockStore(await FileBlockStore.open(dir));
  const vol = await Volume.openWith(kv, faulty, { onError: () => {} });
  const store = await FileBlockStore.open(dir);
  return {
    vol,
    store,
    faulty,
    dir,
    async dispose() {
      faulty.failWhen(() => false);
      await vol.close();
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Sets the mtime of every object file below `dir` to `ms` ago. */
async function age(dir: string, ms: number): Promise<void> {
  const t = new Date(Date.now() - ms);
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) await age(path, ms);
    else if (e.isFile) await Deno.utime(path, t, t);
  }
}

Deno.test("gc finds pending deletes and leaked uploads, deletes them, and keeps every file", async () => {
  const { vol, store, faulty, dir, dispose } = await volumeWithFaults();
  try {
    const meta = vol.vfs.meta;
    const files = new Map<string, Uint8Array>();
    for (let i = 0; i < 5; i++) {
      const data = pattern(150_000 + i * 1000, i);
      files.set(`/f${i}`, data);
      await vol.writeFile(`/f${i}`, data);
    }
    // A removed file whose objects cannot be deleted yet: its slices stay in the garbage list.
    faulty.failWhen((c) => c.op === "delete");
    await vol.writeFile("/gone", pattern(200_000, 9));
    await vol.unlink("/gone");
    await new Promise((r) => setTimeout(r, 50)); // the background delete fails
    // A writer that uploaded two blocks and died before it committed: leaked.
    const leakedId = await meta.allocSliceId();
    await store.put(blockKey(leakedId, 0, 65536), pattern(65536, 1));
    await store.put(blockKey(leakedId, 1, 100), pattern(100, 2));
    await store.put("chunks/README", pattern(5, 4)); // not a key SlayerFS writes
    const inUse = (await store.list("chunks/")).objects.length;
    await age(dir, 2 * HOUR); // everything so far is two hours old
    // One more upload, just now: maybe in flight, so left alone.
    const youngKey = blockKey(await meta.allocSliceId(), 0, 10);
    await store.put(youngKey, pattern(10, 3));

    const dry = await collectVolumeGarbage(meta, store);
    assert.equal(dry.leaked, 2, JSON.stringify(dry));
    assert.equal(dry.leakedBytes, 65536 + 100);
    assert.deepEqual(dry.examples.sort(), [
      blockKey(leakedId, 0, 65536),
      blockKey(leakedId, 1, 100),
    ]);
    assert.ok(dry.pendingSlices >= 1, "the removed file's slices are pending");
    assert.equal(dry.young, 1);
    assert.equal(dry.foreign, 1);
    assert.equal(dry.deleted, 0);
    assert.equal(dry.objects, inUse + 1);
    assert.ok(dry.referenced >= 5, "every file has a referenced block");
    assert.equal(
      (await store.list("chunks/")).objects.length,
      inUse + 1,
      "a dry run deletes nothing",
    );

    const done = await collectVolumeGarbage(meta, store, { delete: true });
    assert.equal(done.leaked, 2);
    assert.ok(done.deleted >= 2 + 1);
    assert.deepEqual(await meta.listGarbage(), [], "the garbage list is empty");
    const left = new Set((await store.list("chunks/")).objects.map((o) => o.key));
    assert.ok(!left.has(blockKey(leakedId, 0, 65536)) && !left.has(blockKey(leakedId, 1, 100)));
    assert.ok(left.has(youngKey) && left.has("chunks/README"));

    const again = await collectVolumeGarbage(meta, store);
    assert.equal(again.leaked, 0);
    assert.equal(again.pendingSlices, 0);
    for (const [path, data] of files) assert.deepEqual(await vol.readFile(path), data, path);
  } finally {
    await dispose();
  }
});

Deno.test("gc tells a referenced dedup blob from a leaked one", async () => {
  const { vol, store, dir, dispose } = await volumeWithFaults(true);
  try {
    const data = pattern(100_000, 5);
    await vol.writeFile("/a", data);
    await vol.writeFile("/b", data); // the same content: one blob
    const blobs = (await store.list("blobs/")).objects;
    assert.ok(blobs.length >= 1);
    // An upload of content nobody committed.
    const orphan = pattern(65536, 77);
    const hex = toHex(blake3(orphan));
    const orphanKey = `blobs/${hex.slice(0, 2)}/${hex.slice(2, 4)}/${hex}_999_0`;
    await store.put(orphanKey, orphan);
    await age(dir, 2 * HOUR);
    const r = await collectVolumeGarbage(vol.vfs.meta, store, { delete: true });
    assert.equal(r.leaked, 1, JSON.stringify(r));
    assert.deepEqual(r.examples, [orphanKey]);
    assert.equal(await store.head(orphanKey), undefined);
    assert.equal((await store.list("blobs/")).objects.length, blobs.length, "the real blob stays");
    assert.deepEqual(await vol.readFile("/a"), data);
    assert.deepEqual(await vol.readFile("/b"), data);
  } finally {
    await dispose();
  }
});
