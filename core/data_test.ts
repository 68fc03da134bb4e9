import assert from "node:assert/strict";
import { FaultyBlockStore, MemoryBlockStore, MemoryKvEngine } from "../backends/mod.ts";
import { Errno, FsError } from "./errno.ts";
import { formatVolume, Volume } from "./volume.ts";
import { memVolume } from "./_test_util.ts";
import { O_RDWR } from "./types.ts";

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

Deno.test("a file written here reads back from the slice lists its commits returned", async () => {
  const { vol } = await memVolume({ blockSize: 64 << 10, chunkSize: 256 << 10 });
  const meta = vol.vfs.meta;
  const read = { chunks: 0, inline: 0 };
  const readChunkFull = meta.readChunkFull.bind(meta);
  const inlineBlock = meta.inlineBlock.bind(meta);
  meta.readChunkFull = (...a) => (read.chunks++, readChunkFull(...a));
  meta.inlineBlock = (...a) => (read.inline++, inlineBlock(...a));
  const bytes = (n: number, seed: number) =>
    Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
  try {
    const small = bytes(3000, 1); // one inline block
    const big = bytes(600_000, 2); // three chunks
    await vol.writeFile("/small", small);
    await vol.writeFile("/big", big);
    await using f = await vol.open("/big", O_RDWR);
    for (let i = 0; i < 70; i++) { // one commit each: the chunk's list is compacted on the way
      const patch = bytes(1000, i);
      await f.write(i * 3001, patch);
      big.set(patch, i * 3001);
      await f.sync();
    }
    await f.close();
    assert.deepEqual(await vol.readFile("/small"), small);
    assert.deepEqual(await vol.readFile("/big"), big);
    assert.deepEqual(read, { chunks: 0, inline: 0 });
    // A change of the file's size drops what the commits left: read from the metadata again.
    await vol.truncate("/big", 100_000);
    assert.deepEqual(await vol.readFile("/big"), big.subarray(0, 100_000));
    assert.ok(read.chunks > 0);
  } finally {
    await vol.close();
  }
});
