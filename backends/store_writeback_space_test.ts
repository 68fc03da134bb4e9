/**
 * The writeback stage on a small disk: backpressure from the free space of its filesystem (a
 * `DiskBudget` over a fake disk the size of what the test stages), a disk cache on the same
 * budget giving way, and `ENOSPC` only while uploads fail.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DiskBudget } from "../core/cache/disk_budget.ts";
import { TieredCache } from "../core/cache/tiered_cache.ts";
import { Errno, FsError } from "../core/errno.ts";
import { FaultyBlockStore, MemoryBlockStore } from "./mod.ts";
import { WritebackBlockStore } from "./store_writeback.ts";
import { mountTmpfs } from "../tests/_tmpfs.ts";

const KiB = 1024;
const FAST_RETRY = { baseMs: 5, maxMs: 40 };
const isPut = (call: { op: string }) => call.op === "put";
const enospc = (err: unknown) => err instanceof FsError && err.errno === Errno.ENOSPC;

function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (seed * 31 + i * 7) & 0xff;
  return out;
}

/** The bytes of the files under `dir` now (a file renamed or removed meanwhile counts 0). */
function bytesUnder(dir: string): number {
  let n = 0;
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    try {
      n += e.isDirectory ? bytesUnder(p) : Deno.statSync(p).size;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return n;
}

/** A temp dir holding a fake disk of `total` bytes: its free space is what `root` does not use. */
async function withDisk(
  total: number,
  fn: (root: string, budget: DiskBudget) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "slayerfs-wbspace-" });
  const budget = new DiskBudget(root, {
    freeSpace: () => Promise.resolve({ total, free: total - bytesUnder(root) }),
    ttlMs: 0,
  });
  try {
    await fn(root, budget);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("puts wait for uploads when the disk is full, without a fixed capacity", async () => {
  await withDisk(400 * KiB, async (root, budget) => {
    const mem = new MemoryBlockStore();
    const inner = new FaultyBlockStore(mem.share(), { latencyMs: 20 });
    const store = await WritebackBlockStore.open(inner, {
      dir: `${root}/stage`,
      budget,
      uploadConcurrency: 2,
      retry: FAST_RETRY,
    });
    try {
      assert.equal(store.capacityBytes, Infinity);
      let peak = 0;
      await Promise.all(Array.from({ length: 16 }, async (_, i) => {
        await store.put(`k/${i}`, pattern(50 * KiB, i));
        peak = Math.max(peak, bytesUnder(root));
      }));
      assert.ok(peak <= 360 * KiB, `peak ${peak}: the reserve (10%) is kept`);
      await store.flush();
      assert.equal(mem.size, 16);
      for (let i = 0; i < 16; i++) assert.deepEqual(await mem.get(`k/${i}`), pattern(50 * KiB, i));
    } finally {
      await store.close();
    }
  });
});

Deno.test("a put waits longer than spaceWaitMs while uploads keep finishing", async () => {
  await withDisk(200 * KiB, async (root, budget) => {
    const mem = new MemoryBlockStore();
    const inner = new FaultyBlockStore(mem.share(), { latencyMs: 40 });
    const store = await WritebackBlockStore.open(inner, {
      dir: `${root}/stage`,
      budget,
      uploadConcurrency: 1,
      spaceWaitMs: 100,
      retry: FAST_RETRY,
    });
    try {
      const started = Date.now();
      // 10 uploads of 40 ms one at a time through room for 4 objects: the last put waits ~250 ms.
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => store.put(`k/${i}`, pattern(40 * KiB, i))),
      );
      assert.ok(Date.now() - started > 150, "the puts had to wait");
      await store.flush();
      assert.equal(mem.size, 10);
    } finally {
      await store.close();
    }
  });
});

Deno.test("with uploads failing, puts fill the disk to its reserve, then get ENOSPC", async () => {
  await withDisk(400 * KiB, async (root, budget) => {
    const mem = new MemoryBlockStore();
    const inner = new FaultyBlockStore(mem.share());
    const heal = inner.failWhen(isPut);
    const store = await WritebackBlockStore.open(inner, {
      dir: `${root}/stage`,
      budget,
      retry: FAST_RETRY,
    });
    try {
      await store.put("first", pattern(50 * KiB, 0));
      while (store.stats().failures === 0) await new Promise((r) => setTimeout(r, 5));
      let stored = 1;
      for (; stored < 20; stored++) {
        const put = store.put(`k/${stored}`, pattern(50 * KiB, stored));
        if (!await put.then(() => true, (err) => enospc(err) ? false : Promise.reject(err))) break;
      }
      assert.equal(stored, 7, "7 x 50 KiB fit above the 40 KiB reserve, the 8th does not");
      await store.put("small", pattern(10 * KiB, 99)); // what fits still goes in
      heal();
      await store.flush();
      assert.equal(mem.size, 8);
      await store.put("after", pattern(50 * KiB, 100)); // room again
    } finally {
      await store.close();
    }
  });
});

Deno.test("a put makes a disk cache on the same budget delete clean blocks", async () => {
  await withDisk(1024 * KiB, async (root, budget) => {
    await using cache = await TieredCache.open({
      memoryBytes: 0,
      dirs: [{ path: `${root}/cache`, capacityBytes: 1024 * KiB, budget }],
    });
    for (let i = 0; i < 20; i++) cache.put(`c/${i}`, pattern(40 * KiB, i));
    await cache.flush();
    const cached = bytesUnder(`${root}/cache`);
    assert.ok(cached > 800 * KiB, `${cached} bytes cached`);
    const mem = new MemoryBlockStore();
    const inner = new FaultyBlockStore(mem.share());
    inner.failWhen(isPut); // S3 is down: only the cache can make room
    const store = await WritebackBlockStore.open(inner, {
      dir: `${root}/stage`,
      budget,
      retry: FAST_RETRY,
    });
    try {
      await store.put("big", pattern(400 * KiB, 1));
      const left = bytesUnder(`${root}/cache`);
      assert.ok(left < cached - 250 * KiB && left > cached - 400 * KiB, `${cached} -> ${left}`);
      while (store.stats().failures === 0) await new Promise((r) => setTimeout(r, 5));
      for (let i = 0;; i++) {
        const put = store.put(`s/${i}`, pattern(40 * KiB, i));
        if (!await put.then(() => true, (err) => enospc(err) ? false : Promise.reject(err))) break;
      }
      assert.equal(bytesUnder(`${root}/cache`), 0, "the cache gave everything before ENOSPC");
      const staged = bytesUnder(`${root}/stage`);
      assert.ok(staged > (1024 - 103 - 40) * KiB, `${staged} bytes staged`);
    } finally {
      await store.close();
    }
  });
});

Deno.test("a put the filesystem refuses (fuller than the budget counted) waits for uploads", async () => {
  // A real 1 MiB tmpfs, and a budget reading that says it is empty and 100 MiB large: the
  // filesystem itself answers ENOSPC, as when other writers filled it since the last reading.
  await using disk = await mountTmpfs("1m");
  const budget = new DiskBudget(disk.mnt, {
    freeSpace: () => Promise.resolve({ total: 100 << 20, free: 100 << 20 }),
    ttlMs: 0,
  });
  const mem = new MemoryBlockStore();
  const inner = new FaultyBlockStore(mem.share(), { latencyMs: 30 });
  const store = await WritebackBlockStore.open(inner, {
    dir: `${disk.mnt}/stage`,
    budget,
    uploadConcurrency: 1,
    spaceWaitMs: 1000,
    retry: FAST_RETRY,
  });
  try {
    for (let i = 0; i < 12; i++) await store.put(`k/${i}`, pattern(200 * KiB, i)); // 2.4 MB
    await store.flush();
    assert.equal(mem.size, 12);
    for (let i = 0; i < 12; i++) assert.deepEqual(await mem.get(`k/${i}`), pattern(200 * KiB, i));
    // Uploads failing: then the filesystem's ENOSPC is the put's answer.
    const heal = inner.failWhen(isPut);
    await assert.rejects(async () => {
      for (let i = 0; i < 12; i++) await store.put(`f/${i}`, pattern(200 * KiB, i));
    }, enospc);
    heal();
  } finally {
    await store.close();
  }
});
