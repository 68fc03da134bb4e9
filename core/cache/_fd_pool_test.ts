import { deepEqual, equal, ok } from "node:assert/strict";
import { TieredCache } from "./tiered_cache.ts";
import { block, openFiles, rng, SEG, withTempDir } from "./_test_util.ts";
import { MAX_OPEN_FILES } from "./_fd_pool.ts";

Deno.test("TieredCache keeps at most MAX_OPEN_FILES block files open and closes them", async () => {
  await withTempDir(async (dir) => {
    const n = MAX_OPEN_FILES + 72;
    const keys = Array.from({ length: n }, (_, i) => `chunks/0/${i}/${i}_0_1000`);
    const cap = (n + 10) * (20 + 20 + 8 + 1000);
    const errors: Error[] = [];
    const cache = await TieredCache.open({
      memoryBytes: 0,
      dirs: [{ path: dir, capacityBytes: cap, minFreeRatio: 0 }],
      onError: (e) => void errors.push(e),
    });
    try {
      for (const k of keys) cache.put(k, block(k, 1000));
      await cache.flush();
      for (const k of keys) {
        deepEqual(await cache.getRange(k, 10, 20), block(k, 1000).subarray(10, 30));
      }
      equal(openFiles(dir).length, MAX_OPEN_FILES, "the LRU is full, no more");
      // Deleting a block closes its descriptor at once.
      const last = keys[n - 1]!;
      await cache.delete(last);
      equal(openFiles(dir).length, MAX_OPEN_FILES - 1);
      // Evicting blocks (the directory fills up) closes theirs; none stays open on a deleted file.
      for (let i = 0; i < 100; i++) cache.put(`more/${i}`, block(`more/${i}`, 1000));
      await cache.flush();
      ok(cache.stats().evictions > 0, "blocks were evicted");
      deepEqual(openFiles(dir).filter((f) => f.endsWith("(deleted)")), []);
      ok(openFiles(dir).length <= MAX_OPEN_FILES);
      deepEqual(errors, []);
    } finally {
      await cache.close();
    }
    deepEqual(openFiles(dir), [], "close() closes every descriptor");
    // After close() lookups still work, without keeping files open.
    const k = keys.find((k) => cache.has(k))!;
    deepEqual(await cache.getRange(k, 0, 5), block(k, 1000).subarray(0, 5));
    deepEqual(openFiles(dir), []);
  });
});

Deno.test("TieredCache concurrent ranged reads stay correct while descriptors churn", async () => {
  await withTempDir(async (dir) => {
    const n = MAX_OPEN_FILES + 32;
    const size = SEG + 5000;
    const keys = Array.from({ length: n }, (_, i) => `chunks/1/${i}/${i}_0_${size}`);
    const errors: Error[] = [];
    const cache = await TieredCache.open({
      memoryBytes: 0,
      dirs: [{ path: dir, capacityBytes: n * (size + 1024), minFreeRatio: 0 }],
      onError: (e) => void errors.push(e),
    });
    try {
      for (const [i, k] of keys.entries()) {
        cache.put(k, block(k, size));
        if (i % 256 === 255) await cache.flush(); // within the write-behind queue's 64 MiB
      }
      await cache.flush();
      const rand = rng(11);
      const deleted = new Set<string>();
      // Workers reading one range after another: descriptors get opened, reused and retired from
      // the LRU while other reads are in flight on them.
      const worker = async () => {
        for (let i = 0; i < 100; i++) {
          const k = keys[Math.floor(rand() * n)]!;
          if (rand() < 0.01) {
            deleted.add(k);
            await cache.delete(k);
            continue;
          }
          const off = Math.floor(rand() * size);
          const len = Math.floor(rand() * (size - off));
          const got = await cache.getRange(k, off, len);
          if (got === undefined) ok(deleted.has(k), `${k} is missing`);
          else deepEqual(got, block(k, size).subarray(off, off + len));
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      const s = cache.stats();
      equal(s.corrupt, 0);
      ok(s.hits > 1000);
      deepEqual(errors, []);
      ok(openFiles(dir).length <= MAX_OPEN_FILES);
    } finally {
      await cache.close();
    }
    deepEqual(openFiles(dir), []);
  });
});
