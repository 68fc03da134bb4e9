import assert from "node:assert/strict";
import { MemoryBlockStore, MemoryKvEngine } from "../backends/mod.ts";
import { cloneTree, listDetached, reclaimDetached, removeTree, resolvePath } from "./clone.ts";
import { checkVolume, fsckFailed } from "./fsck.ts";
import { copyNodes } from "./meta/trees.ts";
import type { Ino } from "./types.ts";
import { formatVolume, Volume } from "./volume.ts";

async function volume() {
  const kv = new MemoryKvEngine();
  const store = new MemoryBlockStore();
  const format = await formatVolume(kv, { name: "t", storage: "mem://", blockSize: 64 << 10 });
  const vol = await Volume.openWith(kv, store, { onError: () => {} });
  return { kv, store, format, vol };
}

const data = (n: number, seed: number) =>
  Uint8Array.from({ length: n }, (_, i) => (i * seed) & 255);

Deno.test("cloneTree() shares slices, removeTree() drops them, fsck agrees all along", async () => {
  const { kv, store, format, vol } = await volume();
  try {
    await vol.mkdir("/a/b", { recursive: true });
    await vol.writeFile("/a/f", data(300_000, 3));
    await vol.writeFile("/a/b/g", data(70_000, 5));
    await vol.link("/a/f", "/a/b/f2");
    const objects = (await store.list("")).objects.length;
    const src = await resolvePath(kv, "a");
    const r = await cloneTree(kv, src, 1 as Ino, "c", { sid: 0 });
    assert.equal(r.inodes, 4);
    assert.equal((await store.list("")).objects.length, objects);
    assert.deepEqual(await vol.readFile("/c/f"), data(300_000, 3));
    assert.equal((await vol.resolve("/c/b/f2")).ino, (await vol.resolve("/c/f")).ino);
    assert.ok(!fsckFailed(await checkVolume(kv, format, store)), "refs right after the clone");
    await vol.writeFile("/a/f", data(10, 7)); // the source moves on; the clone keeps its slices
    assert.deepEqual(await vol.readFile("/c/f"), data(300_000, 3));
    const freed = await removeTree(kv, 1 as Ino, "c", 0);
    assert.ok(freed.length > 0, "the clone held the old slices alone");
    await assert.rejects(vol.resolve("/c"));
    assert.ok(!fsckFailed(await checkVolume(kv, format, store)), "refs right after removal");
  } finally {
    await vol.close();
  }
});

Deno.test("reclaimDetached() removes a half-built clone of a dead session", async () => {
  const { kv, store, format, vol } = await volume();
  try {
    await vol.mkdir("/a");
    await vol.writeFile("/a/f", data(200_000, 9));
    const f = await resolvePath(kv, "a/f");
    const a = await resolvePath(kv, "a");
    const tree = { what: "clone" as const, sid: 42, started: Date.now() };
    // The first batch of a clone that never finished: a root folder and one file in it.
    await kv.txn((tx) =>
      copyNodes(tx, [
        { kind: "node", src: a, ino: 900 as Ino, parent: 1 as Ino, nlink: 2 },
        { kind: "node", src: f, ino: 901 as Ino, parent: 900 as Ino, name: "f", nlink: 1 },
      ], tree)
    );
    assert.equal((await listDetached(kv)).length, 1);
    assert.equal(await reclaimDetached(kv, (sid) => sid !== 42), 0, "a live session's is kept");
    assert.equal(await reclaimDetached(kv, (sid) => sid === 42), 1);
    assert.equal((await listDetached(kv)).length, 0);
    const report = await checkVolume(kv, format, store);
    assert.ok(!fsckFailed(report), JSON.stringify(report.counters));
  } finally {
    await vol.close();
  }
});
