import assert from "node:assert/strict";
import { type FillHost, RandomFill } from "./_random_fill.ts";
import { blockKey, type SliceRecord } from "./slice.ts";
import type { Ino, SliceId } from "./types.ts";

const MiB = 2 ** 20;
const BS = 4 * MiB;
const CS = 64 * MiB;

/**
 * A block layer of files that are one slice each (slice id = inode), whose fetches wait until
 * `release` is called; `disk` false stands for a cache without a disk tier.
 */
function host(sizes: Map<number, number>, disk = true) {
  const cached = new Set<string>();
  const inflight = new Map<string, () => void>();
  const started: string[] = [];
  let waiters: Array<() => void> = [];
  const h: FillHost & {
    started: string[];
    cached: Set<string>;
    inflight: Map<string, () => void>;
    /** Settles every fetch in flight. */
    release(): void;
    /** Resolves once `n` fetches are in flight. */
    inFlight(n: number): Promise<void>;
  } = {
    chunkSize: CS,
    blockSize: BS,
    store: { limits: { concurrency: 16 } },
    cache: {
      wantsSegmentSums: disk,
      has: (key) => cached.has(key),
      getSync: () => undefined,
      get: () => Promise.resolve(undefined),
      put: () => {},
      delete: () => {},
      bytes: 0,
      hits: 0,
      misses: 0,
      stats: () =>
        ({
          tiers: [
            { name: "memory", capacity: 32 * MiB } as never,
            { name: "/cache", capacity: 400 * MiB } as never,
          ],
        }) as never,
    },
    segments(ino: Ino, chunk: number): Promise<SliceRecord[]> {
      const size = sizes.get(ino) ?? 0;
      const pos = chunk * CS;
      if (pos >= size) return Promise.resolve([]);
      const len = Math.min(CS, size - pos);
      return Promise.resolve([{ pos: 0, id: ino as number as SliceId, size, off: pos, len }]);
    },
    getBlock(id: SliceId, index: number, len: number): Promise<Uint8Array> {
      const key = blockKey(id, index, len);
      started.push(key);
      return new Promise((resolve) => {
        inflight.set(key, () => {
          inflight.delete(key);
          cached.add(key);
          resolve(new Uint8Array(0));
        });
        for (const w of waiters) w();
        waiters = [];
      });
    },
    fetching: (key) => inflight.has(key),
    started,
    cached,
    inflight,
    release() {
      for (const settle of [...inflight.values()]) settle();
    },
    async inFlight(n: number) {
      while (inflight.size < n) await new Promise<void>((r) => waiters.push(r));
    },
  };
  return h;
}

const tick = () => new Promise((r) => setTimeout(r, 0));

/** Settles fetches until the fill of `ino` is over. */
async function drain(h: ReturnType<typeof host>, fill: RandomFill, ino: Ino): Promise<void> {
  for (let i = 0; fill.filling(ino) && i < 1000; i++) {
    h.release();
    await tick();
  }
  assert.ok(!fill.filling(ino), "the fill ended");
}

Deno.test("RandomFill starts at the 32nd random read and fetches every block, 4 at a time", async () => {
  const ino = 7 as Ino;
  const size = 40 * MiB + 100; // 11 blocks, the last one short
  const h = host(new Map([[ino, size]]));
  h.cached.add(blockKey(ino as number as SliceId, 3, BS)); // cached already: skipped
  const fill = new RandomFill(h);
  for (let i = 0; i < 31; i++) fill.read(ino, size);
  await tick();
  assert.equal(fill.filling(ino), false);
  assert.equal(h.started.length, 0);
  fill.read(ino, size);
  assert.equal(fill.filling(ino), true);
  await h.inFlight(4);
  await tick();
  assert.equal(h.inflight.size, 4, "at most 4 blocks at once");
  await drain(h, fill, ino);
  assert.deepEqual(
    h.started,
    [0, 1, 2, 4, 5, 6, 7, 8, 9, 10].map((i) =>
      blockKey(ino as number as SliceId, i, i === 10 ? 100 : BS)
    ),
    "every block not cached, in file order",
  );
  assert.deepEqual(fill.stats, { files: 1, blocks: 10 });
  // Filled: more random reads start nothing.
  for (let i = 0; i < 100; i++) fill.read(ino, size);
  assert.equal(fill.filling(ino), false);
  assert.equal(fill.stats.files, 1);
});

Deno.test("RandomFill leaves out large files, caches without a disk tier, and maxBytes 0", () => {
  const big = 1 as Ino;
  const small = 2 as Ino;
  const sizes = new Map([[big, 101 * MiB], [small, 8 * MiB]]);
  // Default bound: a quarter of the 400 MiB disk tier.
  const fill = new RandomFill(host(sizes));
  assert.equal(fill.maxBytes(), 100 * MiB);
  for (let i = 0; i < 40; i++) fill.read(big, 101 * MiB);
  assert.equal(fill.filling(big), false);
  assert.equal(fill.stats.files, 0);
  const noDisk = new RandomFill(host(sizes, false));
  for (let i = 0; i < 40; i++) noDisk.read(small, 8 * MiB);
  assert.equal(noDisk.stats.files, 0);
  const off = new RandomFill(host(sizes), { maxBytes: 0 });
  for (let i = 0; i < 40; i++) off.read(small, 8 * MiB);
  assert.equal(off.stats.files, 0);
  const bounded = new RandomFill(host(sizes), { maxBytes: 101 * MiB });
  for (let i = 0; i < 32; i++) bounded.read(big, 101 * MiB);
  assert.equal(bounded.filling(big), true);
  bounded.close();
  assert.equal(bounded.filling(big), false);
});

Deno.test("RandomFill fills one file at a time; invalidate stops a fill and allows another", async () => {
  const a = 1 as Ino;
  const b = 2 as Ino;
  const size = 48 * MiB;
  const h = host(new Map([[a, size], [b, size]]));
  const fill = new RandomFill(h);
  for (let i = 0; i < 32; i++) fill.read(a, size);
  for (let i = 0; i < 32; i++) fill.read(b, size);
  assert.equal(fill.filling(a), true);
  assert.equal(fill.filling(b), false, "one file at a time");
  await h.inFlight(4);
  fill.invalidate(a); // its data changed: stopped
  assert.equal(fill.filling(a), false);
  h.release();
  await tick();
  await tick();
  const keyA = (i: number) => blockKey(a as number as SliceId, i, BS);
  assert.ok(!h.started.includes(keyA(4)), "no block started after the invalidation");
  // b waited for its turn: its next random read starts it.
  fill.read(b, size);
  assert.equal(fill.filling(b), true);
  await drain(h, fill, b);
  // a is counted again from 0, and filled again (the blocks it had are cached).
  for (let i = 0; i < 31; i++) fill.read(a, size);
  assert.equal(fill.filling(a), false);
  fill.read(a, size);
  assert.equal(fill.filling(a), true);
  await drain(h, fill, a);
  assert.equal(fill.stats.files, 3);
  assert.equal(fill.stats.blocks, 4 + 12 + 8);
  for (let i = 0; i < 12; i++) assert.ok(h.cached.has(keyA(i)), `block ${i} of a`);
});
