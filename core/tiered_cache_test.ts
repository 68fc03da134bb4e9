import { deepEqual, equal, ok } from "node:assert/strict";
import { type FreeSpace, statFreeSpace, TieredCache } from "./tiered_cache.ts";

/** Deterministic bytes for a key, so any block returned can be checked. */
function block(key: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = 0;
  for (let i = 0; i < key.length; i++) x = (x * 31 + key.charCodeAt(i)) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A seeded PRNG (mulberry32) giving floats in [0, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** All files under `dir` (temp files included). */
function files(dir: string): Array<{ path: string; size: number }> {
  const out: Array<{ path: string; size: number }> = [];
  for (const d of Deno.readDirSync(dir)) {
    const path = `${dir}/${d.name}`;
    if (d.isDirectory) out.push(...files(path));
    else if (d.isFile) out.push({ path, size: Deno.statSync(path).size });
  }
  return out;
}

function dirBytes(dir: string): number {
  return files(dir).reduce((n, f) => n + f.size, 0);
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-cache-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

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

Deno.test("TieredCache keeps disk-cached blocks across a restart", async () => {
  await withTempDir(async (dir) => {
    const keys = Array.from({ length: 10 }, (_, i) => `chunks/0/${i}/${i}_0_5000`);
    const opts = {
      memoryBytes: 1 << 20,
      dirs: [{ path: dir, capacityBytes: 1 << 20, minFreeRatio: 0 }],
    };
    const first = await TieredCache.open(opts);
    for (const k of keys) first.put(k, block(k, 5000));
    await first.close();
    await Deno.writeFile(`${dir}/00/.leftover.tmp`, new Uint8Array(10)).catch(async () => {
      await Deno.mkdir(`${dir}/00`);
      await Deno.writeFile(`${dir}/00/.leftover.tmp`, new Uint8Array(10));
    });

    await using second = await TieredCache.open(opts);
    const s = second.stats();
    equal(s.tiers[1]!.entries, 10);
    equal(s.tiers[0]!.entries, 0);
    for (const k of keys) {
      ok(second.has(k));
      deepEqual(await second.get(k), block(k, 5000));
    }
    equal(second.stats().tiers[1]!.hits, 10);
    equal(files(dir).some((f) => f.path.endsWith(".tmp")), false, "temp files are removed");
    equal(dirBytes(dir), second.stats().tiers[1]!.bytes);
  });
});

Deno.test("TieredCache drops a corrupt cached block and reports a miss", async () => {
  await withTempDir(async (dir) => {
    const errors: Error[] = [];
    const opts = {
      memoryBytes: 0,
      dirs: [{ path: dir, capacityBytes: 1 << 20, minFreeRatio: 0 }],
      onError: (e: Error) => void errors.push(e),
    };
    const key = "chunks/0/1/42_0_3000";
    {
      await using cache = await TieredCache.open(opts);
      cache.put(key, block(key, 3000));
      cache.put("other", block("other", 100));
    }
    const [file] = files(dir).filter((f) => f.size > 3000);
    ok(file);
    const bytes = await Deno.readFile(file.path);
    bytes[bytes.length - 100]! ^= 0x40;
    await Deno.writeFile(file.path, bytes);

    await using cache = await TieredCache.open(opts);
    ok(cache.has(key)); // the header is sound: the damage shows on read
    equal(await cache.get(key), undefined);
    equal(cache.has(key), false);
    await cache.flush();
    equal(files(dir).some((f) => f.path === file.path), false, "the corrupt file is deleted");
    equal(errors.length, 1);
    ok(/corrupt.*checksum/.test(errors[0]!.message), errors[0]!.message);
    const s = cache.stats();
    equal(s.corrupt, 1);
    equal(s.misses, 1);
    deepEqual(await cache.get("other"), block("other", 100));
  });
});

Deno.test("TieredCache drops truncated files when it opens", async () => {
  await withTempDir(async (dir) => {
    const opts = { memoryBytes: 0, dirs: [{ path: dir, capacityBytes: 1 << 20, minFreeRatio: 0 }] };
    {
      await using cache = await TieredCache.open(opts);
      cache.put("k", block("k", 3000));
    }
    const [file] = files(dir);
    await Deno.truncate(file!.path, 1000);
    await using cache = await TieredCache.open(opts);
    equal(cache.has("k"), false);
    deepEqual(files(dir), []);
  });
});

Deno.test("TieredCache keeps the minimum free-space ratio of a cache dir", async () => {
  await withTempDir(async (dir) => {
    const total = 1 << 20;
    let other = 600 << 10;
    const freeSpace = (path: string): Promise<FreeSpace> =>
      Promise.resolve({ total, free: total - other - dirBytes(path) });
    const ratio = () => (total - other - dirBytes(dir)) / total;
    await using cache = await TieredCache.open({
      memoryBytes: 0,
      dirs: [{ path: dir, capacityBytes: 1 << 20, minFreeRatio: 0.3 }],
      freeSpace,
      freeSpaceTtlMs: 0,
    });
    for (let i = 0; i < 40; i++) cache.put(`b${i}`, block(`b${i}`, 8 << 10));
    await cache.flush();
    ok(ratio() >= 0.3, `free ratio ${ratio()}`);
    const kept = cache.stats().tiers[0]!.entries;
    ok(kept >= 10 && kept < 40, `${kept} blocks kept`);
    ok(cache.stats().evictions > 0, "older blocks made room");

    other = 700 << 10; // someone else fills the disk: the next write gives space back
    cache.put("late", block("late", 1 << 10));
    await cache.flush();
    ok(ratio() >= 0.3, `free ratio ${ratio()}`);
    ok(cache.stats().tiers[0]!.entries < kept);
    equal(dirBytes(dir), cache.stats().tiers[0]!.bytes);
  });
});

Deno.test("TieredCache promotes a frequently read disk block into memory", async () => {
  await withTempDir(async (dir) => {
    await using cache = await TieredCache.open({
      memoryBytes: 64 << 10,
      dirs: [{ path: dir, capacityBytes: 1 << 20, minFreeRatio: 0 }],
    });
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
    await using cache = await TieredCache.open({
      memoryBytes: 1 << 20,
      dirs: [{ path: dir, capacityBytes: 1 << 20, minFreeRatio: 0 }],
    });
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
    await using cache = await TieredCache.open({
      memoryBytes: 0,
      dirs: [{ path: dir, capacityBytes: 1 << 20, minFreeRatio: 0 }],
    });
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

Deno.test("statFreeSpace() agrees with df", async () => {
  const { free, total } = await statFreeSpace("/tmp");
  ok(total > 0 && free >= 0 && free <= total);
  const out = await new Deno.Command("df", { args: ["-Pk", "/tmp"] }).output();
  const dfTotal = Number(new TextDecoder().decode(out.stdout).split("\n")[1]!.split(/\s+/)[1]) *
    1024;
  ok(Math.abs(dfTotal - total) / total < 0.01, `${total} vs df ${dfTotal}`);
});
