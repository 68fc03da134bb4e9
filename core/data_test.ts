import assert from "node:assert/strict";
import { FaultyBlockStore, MemoryBlockStore, MemoryKvEngine } from "../backends/mod.ts";
import { Errno, FsError } from "./errno.ts";
import { formatVolume, Volume } from "./volume.ts";

const isEio = (err: unknown) => err instanceof FsError && err.errno === Errno.EIO;

Deno.test("a block fetch past fetchDeadlineMs fails its readers with EIO, later ones at once", async () => {
  const kv = new MemoryKvEngine();
  await formatVolume(kv, { name: "deadline", storage: "mem://", blockSize: 64 << 10 });
  const slow = new FaultyBlockStore(new MemoryBlockStore());
  const data = Uint8Array.from({ length: 100_000 }, (_, i) => i & 0xff);
  const vol = await Volume.openWith(kv, slow, {
    codecWorkers: 0,
    fetchDeadlineMs: 200,
    predict: false,
  });
  try {
    await vol.writeFile("/f", data); // written blocks are not cached without a disk tier
    slow.latencyMs = 1000; // a store that answers, but too late
    let t0 = performance.now();
    await assert.rejects(vol.readFile("/f"), isEio);
    let ms = performance.now() - t0;
    assert.ok(ms >= 190 && ms < 900, `first read failed after ${ms} ms`);
    // The fetch still runs: a read now does not wait for a deadline of its own.
    t0 = performance.now();
    await assert.rejects(vol.readFile("/f"), isEio);
    ms = performance.now() - t0;
    assert.ok(ms < 150, `second read failed after ${ms} ms`);
    slow.latencyMs = 0;
    await new Promise((r) => setTimeout(r, 1000)); // the late fetch lands in the cache
    assert.deepEqual(await vol.readFile("/f"), data);
  } finally {
    await vol.close();
  }
});
