import assert, { deepEqual, equal, ok } from "node:assert/strict";
import {
  type FreeSpace,
  statFreeSpace,
  TieredCache,
  type TieredCacheOptions,
} from "./tiered_cache.ts";
import { segmentSums } from "./block_codec.ts";

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

/** A cache with a memory tier and one disk tier in `dir` (no free-space reserve). */
function openCache(
  dir: string,
  memoryBytes: number,
  capacityBytes: number,
  more: Omit<TieredCacheOptions, "memoryBytes" | "dirs"> = {},
): Promise<TieredCache> {
  return TieredCache.open({
    memoryBytes,
    dirs: [{ path: dir, capacityBytes, minFreeRatio: 0 }],
    ...more,
  });
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

Deno.test("TieredCache writes the same file with segment sums given by the caller", async () => {
  await withTempDir(async (dir) => {
    const opts = (path: string) => ({
      memoryBytes: 0,
      dirs: [{ path, capacityBytes: 16 << 20, minFreeRatio: 0 }],
    });
    await Deno.mkdir(`${dir}/a`);
    await Deno.mkdir(`${dir}/b`);
    const key = "chunks/0/0/5_0_300000";
    const data = block(key, 300_000);
    await using a = await TieredCache.open(opts(`${dir}/a`));
    await using b = await TieredCache.open(opts(`${dir}/b`));
    equal(a.wantsSegmentSums, true);
    a.put(key, data, { fromWrite: true });
    b.put(key, data, { fromWrite: true, segmentSums: segmentSums(data) });
    await a.flush();
    await b.flush();
    const [fa] = files(`${dir}/a`);
    const [fb] = files(`${dir}/b`);
    deepEqual(await Deno.readFile(fb!.path), await Deno.readFile(fa!.path));
    deepEqual(await b.getRange(key, 70_000, 100_000), data.subarray(70_000, 170_000));
    // Sums of the wrong length are ignored (computed again), never written.
    b.put("other", data, { fromWrite: true, segmentSums: new Uint8Array(8) });
    await b.flush();
    deepEqual(await b.getRange("other", 250_000, 50_000), data.subarray(250_000));
  });
});

Deno.test("TieredCache room() waits until the write-behind queue can take a block", async () => {
  await withTempDir(async (dir) => {
    await using cache = await TieredCache.open({
      memoryBytes: 0,
      dirs: [{ path: dir, capacityBytes: 16 << 20, minFreeRatio: 0 }],
      writeBehindBytes: 256 << 10,
    });
    await cache.room(100 << 10); // empty queue: at once
    for (let i = 0; i < 4; i++) cache.put(`k${i}`, block(`k${i}`, 64 << 10), { fromWrite: true });
    let ready = false;
    const waiting = cache.room(200 << 10).then(() => ready = true);
    equal(ready, false, "the queue is full");
    await waiting;
    ok(ready);
    await cache.flush();
    equal(cache.stats().tiers[0]!.entries, 4, "every queued block was written");
    equal(cache.stats().droppedWrites, 0);
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

Deno.test("statFreeSpace() agrees with df", async () => {
  const { free, total } = await statFreeSpace("/tmp");
  ok(total > 0 && free >= 0 && free <= total);
  const out = await new Deno.Command("df", { args: ["-Pk", "/tmp"] }).output();
  const dfTotal = Number(new TextDecoder().decode(out.stdout).split("\n")[1]!.split(/\s+/)[1]) *
    1024;
  ok(Math.abs(dfTotal - total) / total < 0.01, `${total} vs df ${dfTotal}`);
});

// --- ranged reads ------------------------------------------------------------------------------

const SEG = 64 << 10;

/** Descriptors of this process open on files under `dir` (their link targets). */
function openFiles(dir: string): string[] {
  const root = `${Deno.realPathSync(dir)}/`;
  const out: string[] = [];
  for (const d of Deno.readDirSync("/proc/self/fd")) {
    try {
      const target = Deno.readLinkSync(`/proc/self/fd/${d.name}`);
      if (target.startsWith(root)) out.push(target);
    } catch {
      // closed meanwhile (the descriptor of the listing itself)
    }
  }
  return out;
}

/** Where the data starts in the block file of `key` holding `size` bytes. */
function dataOffset(key: string, size: number): number {
  return 20 + new TextEncoder().encode(key).length + 8 * Math.ceil(size / SEG);
}

/** The only cache file of `size` bytes under `dir`. */
function fileOfSize(dir: string, size: number): string {
  const found = files(dir).filter((f) => f.size === size);
  equal(found.length, 1, `one file of ${size} bytes`);
  return found[0]!.path;
}

async function flipByte(path: string, at: number): Promise<void> {
  const bytes = await Deno.readFile(path);
  bytes[at]! ^= 0x10;
  await Deno.writeFile(path, bytes);
}

/** Ranges of a block of 3 segments and 1000 bytes: boundaries, crossings, the short last one. */
const BIG = 3 * SEG + 1000;
const RANGES: Array<[number, number]> = [
  [0, 1],
  [0, 4096],
  [SEG - 1, 2],
  [SEG, SEG],
  [SEG - 100, SEG + 200],
  [1000, 2 * SEG + 500],
  [3 * SEG, 1000],
  [3 * SEG - 1, 1001],
  [BIG - 1, 1],
  [0, BIG],
  [12345, 0],
];

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

for (const ffi of [true, false]) {
  Deno.test(`TieredCache getRange reads and verifies only the segments it needs (ffi ${ffi})`, async () => {
    await withTempDir(async (dir) => {
      const key = "chunks/0/1/6_0_197608";
      const data = block(key, BIG);
      const errors: Error[] = [];
      await using cache = await openCache(dir, 0, 4 << 20, {
        onError: (e) => void errors.push(e),
        ffi,
      });
      cache.put(key, data);
      cache.put("small", block("small", 100));
      await cache.flush();
      for (const [off, len] of RANGES) {
        deepEqual(
          await cache.getRange(key, off, len),
          data.subarray(off, off + len),
          `${off}+${len}`,
        );
      }
      deepEqual(await cache.getRange("small", 10, 90), block("small", 100).subarray(10));
      await assert.rejects(cache.getRange(key, BIG - 10, 11), RangeError);
      deepEqual(await cache.get(key), data, "get still returns the whole block");
      equal(cache.stats().tiers[0]!.hits, RANGES.length + 2);

      // Damage segment 2: ranges of other segments still read fine, the first read of it fails.
      const path = fileOfSize(dir, dataOffset(key, BIG) + BIG);
      await flipByte(path, dataOffset(key, BIG) + 2 * SEG + 77);
      deepEqual(await cache.getRange(key, 0, SEG), data.subarray(0, SEG));
      deepEqual(await cache.getRange(key, 3 * SEG, 1000), data.subarray(3 * SEG));
      equal(cache.stats().corrupt, 0);
      const missesBefore = cache.stats().misses;
      const bad = () => cache.getRange(key, 2 * SEG + 4096, 4096);
      deepEqual(await Promise.all([bad(), bad()]), [undefined, undefined]);
      equal(cache.has(key), false, "the corrupt block is dropped");
      const s = cache.stats();
      equal(s.corrupt, 1, "counted once");
      equal(s.misses, missesBefore + 2);
      equal(errors.length, 1);
      ok(/corrupt.*checksum mismatch in segment 2/.test(errors[0]!.message), errors[0]!.message);
      equal(await cache.getRange(key, 0, 1), undefined, "gone for good");
      equal(cache.stats().corrupt, 1);
      await cache.flush();
      equal(files(dir).some((f) => f.path === path), false, "the corrupt file is deleted");
      deepEqual(openFiles(dir).filter((f) => f.startsWith(path)), [], "and not held open");
      deepEqual(await cache.getRange("small", 0, 100), block("small", 100));
    });
  });
}

Deno.test("TieredCache getRange drops files with a damaged table or cut short", async () => {
  await withTempDir(async (dir) => {
    const errors: Error[] = [];
    await using cache = await TieredCache.open({
      memoryBytes: 0,
      dirs: [{ path: dir, capacityBytes: 4 << 20, minFreeRatio: 0 }],
      onError: (e) => void errors.push(e),
    });
    const a = "chunks/0/1/7_0_197608";
    const b = "chunks/0/1/8_0_131072";
    cache.put(a, block(a, BIG));
    cache.put(b, block(b, 2 * SEG));
    await cache.flush();
    // A checksum in the table of a (not read yet): the header checksum catches it.
    await flipByte(fileOfSize(dir, dataOffset(a, BIG) + BIG), dataOffset(a, BIG) - 3);
    equal(await cache.getRange(a, 0, 10), undefined);
    ok(/header checksum mismatch/.test(errors[0]?.message ?? ""), errors[0]?.message);
    // b's table is known after one read; then the file loses its last segment.
    deepEqual(await cache.getRange(b, 0, 10), block(b, 2 * SEG).subarray(0, 10));
    const pathB = fileOfSize(dir, dataOffset(b, 2 * SEG) + 2 * SEG);
    await Deno.truncate(pathB, dataOffset(b, 2 * SEG) + SEG + 10);
    deepEqual(await cache.getRange(b, 0, 10), block(b, 2 * SEG).subarray(0, 10));
    equal(await cache.getRange(b, SEG + 5, 10), undefined);
    ok(/shorter/.test(errors[1]?.message ?? ""), errors[1]?.message);
    equal(cache.stats().corrupt, 2);
    equal(cache.has(a) || cache.has(b), false);
    await cache.flush();
    deepEqual(files(dir), []);
  });
});

Deno.test("TieredCache serves ranged reads after a restart and rejects old-format files", async () => {
  await withTempDir(async (dir) => {
    const opts = {
      memoryBytes: 1 << 20,
      dirs: [{ path: dir, capacityBytes: 8 << 20, minFreeRatio: 0 }],
    };
    const keys = Array.from({ length: 4 }, (_, i) => `chunks/0/${i}/${i}_0_${BIG}`);
    {
      await using first = await TieredCache.open(opts);
      for (const k of keys) first.put(k, block(k, BIG), { fromWrite: true });
    }
    // Make the last key's file look like the old format (magic "SFC1").
    const old = keys[3]!;
    const oldPath = files(dir).find((f) =>
      new TextDecoder().decode(Deno.readFileSync(f.path).subarray(20, 20 + old.length)) === old
    )!.path;
    const bytes = await Deno.readFile(oldPath);
    bytes[3] = 0x31;
    await Deno.writeFile(oldPath, bytes);

    await using second = await TieredCache.open(opts);
    equal(second.has(old), false, "old-format file dropped");
    equal(
      files(dir).some((f) =>
        f.path === oldPath
      ),
      false,
    );
    for (const k of keys.slice(0, 3)) {
      deepEqual(
        await second.getRange(k, SEG - 2048, 4096),
        block(k, BIG).subarray(SEG - 2048, SEG + 2048),
      );
    }
    const s = second.stats();
    equal(s.tiers[1]!.hits, 3);
    equal(s.corrupt, 0);
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

Deno.test("TieredCache keeps at most 128 block files open and closes them", async () => {
  await withTempDir(async (dir) => {
    const n = 200;
    const keys = Array.from({ length: n }, (_, i) => `chunks/0/${i}/${i}_0_1000`);
    const cap = 210 * (20 + 20 + 8 + 1000);
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
      equal(openFiles(dir).length, 128, "the LRU is full, no more");
      // Deleting a block closes its descriptor at once.
      const last = keys[n - 1]!;
      await cache.delete(last);
      equal(openFiles(dir).length, 127);
      // Evicting blocks (the directory fills up) closes theirs; none stays open on a deleted file.
      for (let i = 0; i < 100; i++) cache.put(`more/${i}`, block(`more/${i}`, 1000));
      await cache.flush();
      ok(cache.stats().evictions > 0, "blocks were evicted");
      deepEqual(openFiles(dir).filter((f) => f.endsWith("(deleted)")), []);
      ok(openFiles(dir).length <= 128);
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
    const n = 160;
    const size = SEG + 5000;
    const keys = Array.from({ length: n }, (_, i) => `chunks/1/${i}/${i}_0_${size}`);
    const errors: Error[] = [];
    const cache = await TieredCache.open({
      memoryBytes: 0,
      dirs: [{ path: dir, capacityBytes: 64 << 20, minFreeRatio: 0 }],
      onError: (e) => void errors.push(e),
    });
    try {
      for (const k of keys) cache.put(k, block(k, size));
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
      ok(openFiles(dir).length <= 128);
    } finally {
      await cache.close();
    }
    deepEqual(openFiles(dir), []);
  });
});

Deno.test("TieredCache ranged reads in flight survive a delete of their block", async () => {
  await withTempDir(async (dir) => {
    await using cache = await openCache(dir, 0, 4 << 20);
    const key = "chunks/0/3/3_0_197608";
    const data = block(key, BIG);
    cache.put(key, data);
    cache.put("other", block("other", BIG));
    await cache.flush();
    deepEqual(await cache.getRange(key, 0, 10), data.subarray(0, 10)); // its file is open now
    const reads = Array.from({ length: 20 }, (_, i) => cache.getRange(key, i * 9000, 4096));
    const deleted = cache.delete(key); // closes the descriptor, once those reads are done
    const other = cache.getRange("other", 0, BIG); // may get the same descriptor number
    const got = await Promise.all(reads);
    got.forEach((g, i) => deepEqual(g, data.subarray(i * 9000, i * 9000 + 4096), `read ${i}`));
    deepEqual(await other, block("other", BIG));
    await deleted;
    equal(cache.has(key), false);
    equal(cache.stats().corrupt, 0);
    deepEqual(openFiles(dir).filter((f) => !f.includes("other")), []);
  });
});

for (const ffi of [true, false]) {
  Deno.test(`TieredCache getRange treats a failed read as a corrupt block (ffi ${ffi})`, async () => {
    await withTempDir(async (dir) => {
      const errors: Error[] = [];
      await using cache = await openCache(dir, 0, 4 << 20, {
        onError: (e) => void errors.push(e),
        ffi,
      });
      const key = "chunks/0/4/4_0_5000";
      cache.put(key, block(key, 5000));
      await cache.flush();
      const [file] = files(dir);
      await Deno.remove(file!.path);
      await Deno.mkdir(file!.path); // opens, but reading it fails (EISDIR)
      equal(await cache.getRange(key, 0, 100), undefined);
      equal(cache.has(key), false);
      equal(cache.stats().corrupt, 1);
      ok(/corrupt.*cannot read it/.test(errors[0]?.message ?? ""), errors[0]?.message);
      await cache.flush();
      deepEqual(files(dir), []);
      equal(Deno.statSync(dir).isDirectory, true);
    });
  });
}
