import assert from "node:assert/strict";
import { MemoryBlockStore, MemoryKvEngine } from "../backends/mod.ts";
import { formatVolume, Volume } from "./volume.ts";
import { ROOT_CTX } from "./types.ts";

Deno.test("Predictor replays a recorded access pattern into a cold cache on the next open", async () => {
  const kv = new MemoryKvEngine();
  const store = new MemoryBlockStore();
  await formatVolume(kv, { name: "p", storage: "mem://", blockSize: 64 << 10 });
  const opts = { predict: { idleMs: 50 }, codecWorkers: 0 };
  const files = ["/trigger", "/a", "/b", "/c"];
  {
    const vol = await Volume.openWith(kv.share(), store.share(), opts);
    for (const f of files) await vol.writeFile(f, crypto.getRandomValues(new Uint8Array(60_000)));
    await vol.close();
  }
  // First run: the pattern is recorded.
  {
    const vol = await Volume.openWith(kv.share(), store.share(), opts);
    for (const f of files) await vol.readFile(f);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(vol.vfs.predictor!.stats.recorded, 1);
    await vol.close();
  }
  // Second run, cold cache: opening the trigger fetches the rest before it is read.
  const vol = await Volume.openWith(kv.share(), store.share(), opts);
  try {
    const a = await vol.resolve("/c");
    const trigger = await vol.resolve("/trigger");
    const { fh } = await vol.vfs.open(ROOT_CTX, trigger.ino, 0);
    for (let i = 0; i < 100 && vol.vfs.predictor!.stats.prefetchedBlocks < 4; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(vol.vfs.predictor!.stats.replays, 1);
    assert.ok(vol.vfs.predictor!.stats.prefetchedBlocks >= 4);
    const hitsBefore = vol.vfs.data.cache.hits;
    const missesBefore = vol.vfs.data.cache.misses;
    await vol.readFile("/c");
    assert.ok(vol.vfs.data.cache.hits > hitsBefore, "the read hits the cache");
    assert.equal(vol.vfs.data.cache.misses, missesBefore, "and never misses");
    assert.ok(a.size > 0);
    await vol.vfs.release(ROOT_CTX, trigger.ino, fh, 0n, false);
  } finally {
    await vol.close();
  }
});
