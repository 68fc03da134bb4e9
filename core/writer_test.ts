import assert from "node:assert/strict";
import { MemoryBlockStore, MemoryKvEngine } from "../backends/mod.ts";
import { formatVolume, Volume } from "./volume.ts";
import { O_APPEND, O_CREAT, O_RDWR, O_WRONLY } from "./types.ts";

/** A memory store whose `put` fails while `down` is set (an outage of the block store). */
class FlakyStore extends MemoryBlockStore {
  down = false;
  override put(key: string, data: Uint8Array): Promise<void> {
    if (this.down) return Promise.reject(new Error("connection refused"));
    return super.put(key, data);
  }
}

const bs = 64 << 10;

async function flakyVolume(): Promise<{ vol: Volume; store: FlakyStore }> {
  const kv = new MemoryKvEngine();
  const store = new FlakyStore();
  // No inline blocks: every block goes through the store.
  await formatVolume(kv, { name: "t", storage: "mem://", blockSize: bs, inlineMax: 0 });
  return { vol: await Volume.openWith(kv, store), store };
}

const bytes = (n: number, v: number) => new Uint8Array(n).fill(v);

Deno.test("a failed flush drops the pending writes; the file works again at once", async () => {
  const { vol, store } = await flakyVolume();
  try {
    const f = await vol.open("/f", O_RDWR | O_CREAT);
    await f.write(0, bytes(100_000, 1));
    await f.sync();
    store.down = true;
    await f.write(0, bytes(10, 2)); // an overwrite
    await f.write(100_000, bytes(50_000, 3)); // an append
    assert.equal((await f.stat()).size, 150_000, "pending writes count before the flush");
    await assert.rejects(f.sync(), { code: "EIO" });
    store.down = false;
    // Back to the last committed state, for this handle and a new one.
    assert.equal((await f.stat()).size, 100_000);
    assert.deepEqual(await f.read(0, 200_000), bytes(100_000, 1));
    await f.sync(); // reported once
    const g = await vol.open("/f", O_WRONLY | O_APPEND);
    await g.write(0, bytes(1000, 4));
    await f.write(0, bytes(10, 5));
    await vol.vfs.setattr(vol.ctx, f.ino, { size: 100_500 });
    await f.sync();
    await g.close();
    await f.close();
    const want = bytes(100_500, 1);
    want.fill(5, 0, 10);
    want.fill(4, 100_000);
    assert.deepEqual(await vol.readFile("/f"), want);
    assert.equal(vol.vfs.stats().openFiles, 0, "the closed file is no longer open");
  } finally {
    await vol.close();
  }
});

Deno.test("every handle open at a failure learns of it; later opens do not", async () => {
  const { vol, store } = await flakyVolume();
  try {
    const a = await vol.open("/f", O_RDWR | O_CREAT);
    const b = await vol.open("/f", O_RDWR);
    const d = await vol.open("/f", O_RDWR);
    await a.write(0, bytes(1000, 1));
    store.down = true;
    await assert.rejects(a.sync(), { code: "EIO" });
    store.down = false;
    await a.sync();
    await assert.rejects(b.write(0, bytes(1, 1)), { code: "EIO" }, "b's next write");
    await b.write(0, bytes(1, 1));
    await assert.rejects(b.sync(), { code: "EIO" }, "b's next fsync, though a write was told");
    await b.sync();
    const c = await vol.open("/f", O_RDWR);
    await c.sync();
    // A close (FUSE flush, e.g. of a duplicate descriptor) reports it until an fsync does.
    for (let i = 0; i < 2; i++) {
      await assert.rejects(vol.vfs.flush(vol.ctx, d.ino, d.fh, 0n), { code: "EIO" }, "d's close");
    }
    await assert.rejects(d.sync(), { code: "EIO" }, "d's fsync");
    for (const f of [a, b, c, d]) await f.close();
    assert.deepEqual(await vol.readFile("/f"), bytes(1, 1));
  } finally {
    await vol.close();
  }
});

Deno.test("a background upload failure fails the next write and the fsync, then recovers", async () => {
  const { vol, store } = await flakyVolume();
  try {
    const f = await vol.open("/f", O_RDWR | O_CREAT);
    store.down = true;
    // Full blocks upload in the background while the stream goes on.
    let failed = false;
    for (let i = 0; i < 64 && !failed; i++) {
      await f.write(i * bs, bytes(bs, 7)).catch((err) => {
        assert.equal(err.code, "EIO");
        failed = true;
      });
      await new Promise((r) => setTimeout(r, 0));
    }
    assert.ok(failed, "a write reported the failed upload");
    await assert.rejects(f.sync(), { code: "EIO" }, "and so does the fsync");
    store.down = false;
    assert.equal((await f.stat()).size, 0);
    await f.write(0, bytes(10, 8));
    await f.close();
    assert.deepEqual(await vol.readFile("/f"), bytes(10, 8));
    assert.equal(vol.vfs.stats().openFiles, 0);
  } finally {
    await vol.close();
  }
});
