import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { blockKey, CacheIndex, type Evicted, type Slot } from "./cache_index.ts";
import { Rng } from "./_test_util.ts";

Deno.test("CacheIndex get/peek/insert/remove/frequency keep their contracts", () => {
  const index = new CacheIndex({ maxEntries: 100, maxBytes: 1 << 30 });
  equal(index.get(1n), undefined);
  deepEqual(index.insert(1n, { tier: 2, location: 2 ** 39 + 5, size: 4096 }), []);
  deepEqual(index.peek(1n), { tier: 2, location: 2 ** 39 + 5, size: 4096 });
  equal(index.frequency(1n), 0);
  index.get(1n);
  index.get(1n);
  equal(index.frequency(1n), 2);
  equal(index.frequency(2n), 0);
  // Keys use all 64 bits.
  const big = 0xffff_ffff_ffff_fff0n;
  index.insert(big, { tier: 0, location: 0, size: 10 });
  equal(index.has(big), true);
  equal(index.size, 2);
  equal(index.bytes, 4106);
  // Update in place keeps the history.
  index.insert(1n, { tier: 1, location: 7, size: 100 });
  deepEqual(index.get(1n), { tier: 1, location: 7, size: 100 });
  equal(index.frequency(1n), 3);
  equal(index.bytes, 110);
  deepEqual(
    new Map(index.entries()),
    new Map<bigint, Slot>([
      [1n, { tier: 1, location: 7, size: 100 }],
      [big, { tier: 0, location: 0, size: 10 }],
    ]),
  );
  equal(index.remove(1n), true);
  equal(index.remove(1n), false);
  equal(index.size, 1);
  equal(index.bytes, 10);
  throws(() => index.insert(3n, { tier: 256, location: 0, size: 1 }), RangeError);
  throws(() => index.insert(3n, { tier: 0, location: -1, size: 1 }), RangeError);
  throws(() => index.insert(3n, { tier: 0, location: 2 ** 40, size: 1 }), RangeError);
  throws(() => new CacheIndex({ maxEntries: 0, maxBytes: 1 }), RangeError);
  equal(blockKey("a"), blockKey("a"));
  ok(blockKey("a") !== blockKey("b"));
});

Deno.test("CacheIndex evicts by entry count and by bytes and reports what it evicted", () => {
  const index = new CacheIndex({ maxEntries: 50, maxBytes: 10_000 });
  const live = new Map<bigint, Slot>();
  let evictedTotal = 0;
  const apply = (evicted: readonly Evicted[]) => {
    for (const e of evicted) {
      deepEqual(live.get(e.key), { tier: e.tier, location: e.location, size: e.size });
      live.delete(e.key);
      evictedTotal++;
    }
  };
  const rng = new Rng(3);
  for (let i = 0; i < 5000; i++) {
    const key = BigInt(rng.int(400));
    const op = rng.int(10);
    if (op < 5) {
      const slot = { tier: rng.int(3), location: rng.int(1e9), size: rng.int(600) };
      live.set(key, slot);
      apply(index.insert(key, slot));
    } else if (op < 9) {
      deepEqual(index.get(key), live.get(key));
    } else {
      equal(index.remove(key), live.delete(key));
    }
    ok(index.size <= 50 && index.bytes <= 10_000);
    equal(index.size, live.size);
    equal(index.bytes, [...live.values()].reduce((a, s) => a + s.size, 0));
  }
  ok(evictedTotal > 100);
  deepEqual(new Map(index.entries()), live);
  // A large entry evicts many at once (more than one 256-entry buffer).
  const big = new CacheIndex({ maxEntries: 1000, maxBytes: 1000 });
  for (let i = 0; i < 1000; i++) big.insert(BigInt(i), { tier: 0, location: i, size: 1 });
  const evicted = big.insert(5000n, { tier: 0, location: 0, size: 1000 });
  equal(evicted.length, 1000);
  equal(big.size, 1);
});

Deno.test("CacheIndex keeps hot blocks through a one-pass scan (S3-FIFO)", () => {
  const index = new CacheIndex({ maxEntries: 1000, maxBytes: 1 << 30 });
  const slot = { tier: 0, location: 0, size: 4096 };
  for (let i = 0n; i < 500n; i++) index.insert(i, slot);
  for (let round = 0; round < 3; round++) for (let i = 0n; i < 500n; i++) index.get(i);
  for (let i = 1_000_000n; i < 1_100_000n; i++) {
    if (index.get(i) === undefined) index.insert(i, slot);
  }
  let hot = 0;
  for (let i = 0n; i < 500n; i++) if (index.has(i)) hot++;
  ok(hot >= 490, `only ${hot} of 500 hot blocks survived the scan`);
  equal(index.size, 1000);
  // An LRU would have kept none of them; the scan only churned the small FIFO.
});

Deno.test("CacheIndex holds 10 million entries in well under 1 GiB", () => {
  const n = 10_000_000;
  const index = new CacheIndex({ maxEntries: n, maxBytes: Number.MAX_SAFE_INTEGER });
  const slot = { tier: 1, location: 0, size: 65536 };
  for (let i = 0; i < n; i++) {
    slot.location = i * 65536;
    index.insert(BigInt(i) * 0x9e3779b97f4a7c15n, slot);
  }
  equal(index.size, n);
  const bytes = index.memoryBytes;
  ok(bytes < 512 * 2 ** 20, `${bytes} bytes for ${n} entries`);
  deepEqual(index.peek(12345n * 0x9e3779b97f4a7c15n), {
    tier: 1,
    location: 12345 * 65536,
    size: 65536,
  });
  console.log(
    `10M entries: ${(bytes / 2 ** 20).toFixed(0)} MiB, ${(bytes / n).toFixed(1)} B/entry`,
  );
});

Deno.test("CacheIndex works at tiny capacities", () => {
  for (const maxEntries of [1, 2, 3, 5]) {
    const index = new CacheIndex({ maxEntries, maxBytes: 100 });
    const rng = new Rng(maxEntries);
    for (let i = 0; i < 2000; i++) {
      const key = BigInt(rng.int(20));
      if (rng.int(2) === 0) index.insert(key, { tier: 0, location: i, size: rng.int(60) });
      else index.get(key);
      if (rng.int(10) === 0) index.remove(BigInt(rng.int(20)));
      ok(index.size <= maxEntries && index.bytes <= 100);
    }
  }
});
