import assert, { deepEqual, equal, ok } from "node:assert/strict";
import { TieredCache } from "./tiered_cache.ts";
import { MemoryBlockStore, MemoryKvEngine } from "../../backends/mod.ts";
import { formatVolume, Volume } from "../volume.ts";
import { memVolume } from "../_test_util.ts";
import {
  BIG,
  block,
  dirBytes,
  files,
  openCache,
  RANGES,
  rng,
  SEG,
  withTempDir,
} from "./_test_util.ts";

Deno.test("TieredCache memory-only: get, put, has, delete and stats", async () => {
  await using cache = await TieredCache.open({ memoryBytes: 1 << 20 });
  const a = block("a", 1000);
  cache.put("chunks/0/1/1_0_1000", a);
  cache.put("chunks/0/1/1_0_1000", a); // idempotent
  ok(cache.has("chunks/0/1/1_0_1000"));
  equal(cache.getSync("chunks/0/1/1_0_1000"), a);
  equal(await cache.get("chunks/0/1/1_0_1000"), a);
  equal(await cache.get("missing"), undefined);
  equal(cache.getSync("missing"), undefined); // not a miss
  const s = cache.stats();
  equal(s.tiers.length, 1);
  deepEqual(
    { ...s.tiers[0]! },
    {
      name: "memory",
      entries: 1,
      bytes: 1000,
      capacity: 1 << 20,
      hits: 2,
      misses: 1,
      hitRate: 2 / 3,
    },
  );
  equal(s.hits, 2);
  equal(s.misses, 1);
  equal(cache.bytes, 1000);
  await cache.delete("chunks/0/1/1_0_1000");
  equal(cache.has("chunks/0/1/1_0_1000"), false);
  equal(cache.bytes, 0);
  cache.put("big", new Uint8Array((1 << 20) + 1)); // larger than the memory tier: not cached
  equal(cache.has("big"), false);
});

Deno.test("TieredCache never exceeds its memory and disk caps under a random workload", async () => {
  await withTempDir(async (root) => {
    const memCap = 64 << 10;
    const caps = [256 << 10, 128 << 10];
    const paths = [`${root}/d0`, `${root}/d1`];
    const errors: Error[] = [];
    const cache = await TieredCache.open({
      memoryBytes: memCap,
      dirs: paths.map((path, i) => ({ path, capacityBytes: caps[i]!, minFreeRatio: 0 })),
      onError: (e) => void errors.push(e),
    });
    try {
      const rand = rng(7);
      const sizeOf = (k: number) => 1 + ((k * 2654435761) >>> 0) % (16 << 10);
      for (let step = 0; step < 600; step += 8) {
        const ops: Promise<void>[] = [];
        for (let j = 0; j < 8; j++) {
          const k = Math.floor(rand() * 200);
          const key = `chunks/${k % 3}/${k}/${k}_0_${sizeOf(k)}`;
          const r = rand();
          if (r < 0.45) cache.put(key, block(key, sizeOf(k)), { fromWrite: r < 0.1 });
          else if (r < 0.95) {
            ops.push(
              cache.get(key).then((got) => {
                if (got !== undefined) deepEqual(got, block(key, sizeOf(k)));
              }),
            );
          } else ops.push(cache.delete(key));
        }
        await Promise.all(ops);
        const s = cache.stats();
        ok(s.tiers[0]!.bytes <= memCap, `memory ${s.tiers[0]!.bytes} > ${memCap}`);
        paths.forEach((p, i) => {
          const used = dirBytes(p); // checked while writes are in flight
          ok(used <= caps[i]!, `${p} holds ${used} > ${caps[i]}`);
          ok(s.tiers[i + 1]!.bytes <= caps[i]!);
        });
      }
      await cache.flush();
      const s = cache.stats();
      paths.forEach((p, i) => equal(dirBytes(p), s.tiers[i + 1]!.bytes));
      ok(s.tiers[1]!.entries > 0 && s.tiers[2]!.entries > 0, "both dirs are used");
      ok(s.hits > 0 && s.misses > 0);
      deepEqual(errors, []);
    } finally {
      await cache.close();
    }
  });
});

Deno.test("TieredCache keeps a hot working set through a one-pass scan", async () => {
  const size = 1024;
  await using cache = await TieredCache.open({ memoryBytes: 100 * size });
  const read = async (key: string) => {
    const got = await cache.get(key);
    if (got === undefined) cache.put(key, block(key, size));
    return got !== undefined;
  };
  const hot = Array.from({ length: 20 }, (_, i) => `hot/${i}`);
  for (let round = 0; round < 3; round++) for (const k of hot) await read(k);
  let hotReads = 0;
  let hotHits = 0;
  for (let i = 0; i < 3000; i++) {
    await read(`scan/${i}`);
    if (i % 10 === 0) {
      const k = hot[(i / 10) % hot.length]!;
      hotReads++;
      if (await read(k)) hotHits++;
    }
  }
  ok(hotHits / hotReads > 0.95, `hot hit rate ${hotHits / hotReads}`);
  ok(hot.every((k) => cache.has(k)), "every hot block is still cached");
  ok(cache.stats().tiers[0]!.bytes <= 100 * size);
});

Deno.test("TieredCache keeps memoryOnly blocks off the disk tiers", async () => {
  await withTempDir(async (dir) => {
    await using cache = await openCache(dir, 1 << 20, 1 << 20);
    cache.put("inline", block("inline", 1000), { memoryOnly: true });
    cache.put("stored", block("stored", 1000));
    await cache.flush();
    deepEqual(cache.getSync("inline"), block("inline", 1000), "kept in memory");
    equal(cache.stats().tiers[1]!.entries, 1, "only the stored block is on disk");
    equal(files(dir).length, 1);
  });
});

Deno.test("TieredCache promotes a frequently read disk block into memory", async () => {
  await withTempDir(async (dir) => {
    await using cache = await openCache(dir, 64 << 10, 1 << 20);
    const key = "chunks/0/0/9_0_4096";
    cache.put(key, block(key, 4096), { fromWrite: true }); // written blocks go to disk only
    await cache.flush();
    equal(cache.getSync(key), undefined);
    deepEqual(await cache.get(key), block(key, 4096));
    equal(cache.getSync(key), undefined, "one disk hit is not enough");
    deepEqual(await cache.get(key), block(key, 4096));
    deepEqual(cache.getSync(key), block(key, 4096), "promoted on the second disk hit");
    const s = cache.stats();
    equal(s.promotions, 1);
    equal(s.tiers[0]!.entries, 1);
    equal(s.tiers[0]!.hits, 1);
    equal(s.tiers[1]!.hits, 2);
    equal(s.tiers[1]!.entries, 1, "the disk copy stays");
  });
});

Deno.test("TieredCache demotes blocks hit more than once on memory eviction", async () => {
  await withTempDir(async (dir) => {
    let full = true;
    await using cache = await TieredCache.open({
      memoryBytes: 8 << 10,
      dirs: [{ path: dir, capacityBytes: 1 << 20, minFreeRatio: 0.1 }],
      freeSpace: () => Promise.resolve({ total: 1 << 30, free: full ? 0 : 1 << 29 }),
      freeSpaceTtlMs: 0,
    });
    cache.put("hot", block("hot", 1024));
    cache.put("cold", block("cold", 1024));
    await cache.get("hot");
    await cache.get("hot");
    await cache.flush();
    deepEqual(files(dir), [], "the disk is full: nothing written");
    full = false;
    for (let i = 0; i < 40; i++) {
      // Read twice through the cache: the second put of a key just evicted from the probation
      // FIFO enters the main FIFO, which pushes "hot" out eventually.
      for (let j = 0; j < 2; j++) {
        if (cache.getSync(`x${i}`) === undefined) cache.put(`x${i}`, block(`x${i}`, 1024));
      }
    }
    await cache.flush();
    equal(cache.getSync("hot"), undefined, "evicted from memory");
    deepEqual(await cache.get("hot"), block("hot", 1024), "demoted to disk");
    equal(cache.has("cold"), false, "dropped");
    ok(cache.stats().demotions >= 1);
    ok(cache.stats().tiers[0]!.bytes <= 8 << 10);
  });
});

Deno.test("TieredCache stats() and hottest()", async () => {
  await withTempDir(async (dir) => {
    await using cache = await openCache(dir, 1 << 20, 1 << 20);
    for (const k of ["a", "b", "c", "d"]) cache.put(k, block(k, 100));
    for (let i = 0; i < 3; i++) await cache.get("a");
    await cache.get("c");
    await cache.get("b");
    await cache.get("c");
    await cache.get("nope");
    deepEqual(cache.hottest(2), [{ key: "a", frequency: 3 }, { key: "c", frequency: 2 }]);
    deepEqual(cache.hottest(10).map((h) => h.key), ["a", "c", "b"]);
    deepEqual(cache.hottest(0), []);
    await cache.flush();
    const s = cache.stats();
    equal(s.entries, 4);
    equal(s.hits, 6);
    equal(s.misses, 1);
    equal(s.hitRate, 6 / 7);
    equal(s.pendingWrites, 0);
    deepEqual(s.tiers.map((t) => [t.name, t.entries]), [["memory", 4], [dir, 4]]);
    equal(s.tiers[1]!.misses, 1);
    equal(s.tiers[1]!.capacity, 1 << 20);
    equal(s.tiers[1]!.minFreeRatio, 0);
  });
});

Deno.test("TieredCache writes one file for concurrent puts of a key", async () => {
  await withTempDir(async (dir) => {
    await using cache = await openCache(dir, 0, 1 << 20);
    const data = block("k", 2000);
    for (let i = 0; i < 10; i++) cache.put("k", data);
    const got = await Promise.all(Array.from({ length: 10 }, () => cache.get("k")));
    ok(got.every((g) => g !== undefined && g.length === 2000));
    await cache.flush();
    equal(files(dir).length, 1);
    const again = await Promise.all(Array.from({ length: 5 }, () => cache.get("k")));
    ok(again.every((g) => g !== undefined && g.length === 2000));
    equal(cache.stats().hits, 15);
    await cache.delete("k");
    deepEqual(files(dir), []);
  });
});

Deno.test("TieredCache getRange serves ranges from memory and the write-behind queue", async () => {
  await withTempDir(async (dir) => {
    const key = "chunks/0/1/5_0_197608";
    const data = block(key, BIG);
    await using cache = await openCache(dir, 1 << 20, 4 << 20);
    cache.put(key, data, { fromWrite: true }); // disk only: queued
    for (const [off, len] of RANGES) {
      const got = await cache.getRange(key, off, len);
      deepEqual(got, data.subarray(off, off + len), `queued ${off}+${len}`);
      equal(got!.buffer, data.buffer, "a view of the queued block");
    }
    equal(cache.stats().tiers[1]!.hits, 0, "served before the disk was touched");
    await cache.flush();
    await cache.delete(key);

    cache.put(key, data);
    await cache.flush();
    for (const [off, len] of RANGES) {
      const got = await cache.getRange(key, off, len);
      deepEqual(got, data.subarray(off, off + len), `memory ${off}+${len}`);
      equal(got!.buffer, data.buffer, "a view of the memory block");
    }
    await assert.rejects(cache.getRange(key, BIG - 10, 11), RangeError);
    await assert.rejects(cache.getRange(key, -1, 1), RangeError);
    equal(await cache.getRange("missing", 0, 1), undefined);
    const s = cache.stats();
    equal(s.hits, 2 * RANGES.length + 1);
    equal(s.misses, 1);
    equal(s.tiers[0]!.hits, RANGES.length + 1);
    equal(s.tiers[0]!.misses, RANGES.length + 1);
    equal(s.tiers[1]!.misses, 1);
  });
});

Deno.test("TieredCache getRange promotes a hot disk block in the background", async () => {
  await withTempDir(async (dir) => {
    await using cache = await openCache(dir, 1 << 20, 4 << 20);
    const key = "chunks/0/0/9_0_197608";
    const data = block(key, BIG);
    cache.put(key, data, { fromWrite: true });
    await cache.flush();
    deepEqual(await cache.getRange(key, 100, 4096), data.subarray(100, 4196));
    await cache.flush();
    equal(cache.getSync(key), undefined, "one disk hit is not enough");
    deepEqual(await cache.getRange(key, SEG, 4096), data.subarray(SEG, SEG + 4096));
    // The range came back before the whole-block read behind it ended.
    equal(cache.stats().promotions, 0);
    await cache.flush();
    equal(cache.stats().promotions, 1);
    deepEqual(cache.getSync(key), data, "the whole block is in memory");
    const got = await cache.getRange(key, 7, 9);
    deepEqual(got, data.subarray(7, 16));
    const s = cache.stats();
    equal(s.tiers[0]!.hits, 2);
    equal(s.tiers[1]!.hits, 2);
    equal(s.tiers[1]!.entries, 1, "the disk copy stays");
  });
});

Deno.test("TieredCache bounds promotions when the hot set is larger than memory", async () => {
  await withTempDir(async (dir) => {
    await using cache = await openCache(dir, 1 << 20, 16 << 20);
    const size = 256 << 10; // 4 blocks fill the memory tier
    const keys = Array.from({ length: 32 }, (_, i) => `chunks/0/0/${i}_0_${size}`);
    for (const k of keys) cache.put(k, block(k, size), { fromWrite: true });
    await cache.flush();
    for (let round = 0; round < 5; round++) {
      for (const k of keys) {
        deepEqual(await cache.getRange(k, 4096, 4096), block(k, size).subarray(4096, 8192));
        await cache.flush();
      }
    }
    const s = cache.stats();
    ok(s.promotions >= 1, "hot blocks are still promoted");
    ok(s.promotions <= 4, `at most memory's size is promoted per window, got ${s.promotions}`);
    equal(s.tiers[0]!.hits + s.tiers[1]!.hits, 5 * keys.length, "every range was a hit");
  });
});

Deno.test("Vfs.stats() reports the cache's counters and the files of its hottest blocks", async () => {
  await withTempDir(async (dir) => {
    const kv = new MemoryKvEngine();
    await formatVolume(kv, { name: "test", storage: "mem://" });
    const vol = await Volume.openWith(kv, new MemoryBlockStore(), {
      cacheDirs: [{ path: dir, capacityBytes: 16 << 20, minFreeRatio: 0 }],
      predict: false,
    });
    try {
      const data = block("file", 300_000);
      await vol.writeFile("/hot", data);
      await vol.writeFile("/cold", block("cold", 1000));
      for (let i = 0; i < 3; i++) deepEqual(await vol.readFile("/hot"), data);
      const s = vol.vfs.stats();
      ok(s.cache !== undefined);
      equal(s.cacheHits, s.cache.hits);
      equal(s.cacheMisses, s.cache.misses);
      ok(s.cacheHits > 0);
      deepEqual(s.hottestFiles?.map((h) => h.ino), [(await vol.stat("/hot")).ino]);
    } finally {
      await vol.close();
    }
  });
});

Deno.test("Vfs.stats() without a tiered cache still reports hits and misses", async () => {
  const { vol } = await memVolume();
  try {
    await vol.writeFile("/f", block("f", 300_000));
    await vol.readFile("/f");
    const s = vol.vfs.stats();
    equal(s.cache, undefined);
    equal(s.hottestFiles, undefined);
    equal(s.cacheHits + s.cacheMisses > 0, true);
  } finally {
    await vol.close();
  }
});
