import { deepEqual, equal, notEqual, ok } from "node:assert/strict";
import { DiskBudget } from "./disk_budget.ts";
import { TieredCache } from "./tiered_cache.ts";
import { block, dirBytes, withTempDir } from "./_test_util.ts";

/** A budget over a fake 1000-byte disk whose used bytes `used()` tells. */
function fakeDisk(used: () => number, minFreeRatio = 0.1): DiskBudget {
  return new DiskBudget("/fake", {
    minFreeRatio,
    freeSpace: () => Promise.resolve({ total: 1000, free: 1000 - used() }),
    ttlMs: 0,
  });
}

Deno.test("DiskBudget hold(): a cache write in progress is not free room for claims", async () => {
  let used = 500;
  const budget = fakeDisk(() => used);
  budget.hold(300); // a cache file being written: not on the disk yet
  equal(await budget.shortfall(100), 0, "500 free: 300 held, 100 kept, 100 more fits");
  equal(await budget.claim(200), false, "the held bytes count");
  equal(await budget.claim(100), true);
  budget.release(300, true);
  used += 300;
  equal(await budget.claim(1), false, "written: the reading counts them now");
  budget.release(100, false);
  equal(await budget.claim(100), true);
});

Deno.test("DiskBudget claim() takes room above the reserve and counts what it claimed", async () => {
  let used = 500;
  const budget = fakeDisk(() => used);
  equal(await budget.claim(300), true); // 500 free, 100 kept
  equal(await budget.claim(200), false, "the first claim is not written yet but counts");
  equal(await budget.claim(100), true);
  budget.release(300, true);
  used += 300;
  budget.release(100, false); // given up
  equal(await budget.claim(100), true);
  equal(await budget.claim(1), false);
  budget.release(100, false);
  used = 0;
  equal(await budget.claim(900), true, "up to the reserve");
});

Deno.test("DiskBudget claim() asks the yielders for the missing bytes, in turn", async () => {
  const held = [300, 200];
  const asked: number[][] = [];
  const budget = fakeDisk(() => 100 + held[0]! + held[1]!);
  for (const i of [0, 1]) {
    budget.addYielder({
      yieldSpace(bytes) {
        asked.push([i, bytes]);
        const freed = Math.min(bytes, held[i]!);
        held[i]! -= freed;
        return Promise.resolve(freed);
      },
    });
  }
  equal(await budget.claim(500), true); // 400 free, 100 kept: 200 short
  equal(asked.length, 1);
  equal(held[0], 100);
  // With the 500 claimed: 200 from what the first one still holds, then from the second.
  equal(await budget.claim(200), true);
  equal(held[0], 0);
  equal(held[1], 100);
  deepEqual(asked.slice(1), [[0, 200], [1, 100]]);
  equal(await budget.claim(200), false, "only 100 left to give");
  equal(held[1], 0);
});

Deno.test("DiskBudget shortfall() leaves the reserve and the room of staged writes", async () => {
  let used = 0;
  const budget = fakeDisk(() => used);
  equal(await budget.shortfall(100), 0);
  budget.wait(700); // a staged write waits for 700 bytes
  equal(await budget.shortfall(100), 0);
  equal(await budget.shortfall(300), 100, "100 kept + 700 waited + 300 is 100 too many");
  equal(await budget.claim(700), true);
  budget.unwait(700);
  equal(await budget.shortfall(300), 100, "claimed, not written yet: still counted");
  budget.release(700, true);
  used = 700;
  equal(await budget.shortfall(300), 100);
  equal(budget.pending, 0);
  const none = fakeDisk(() => 1000, 0);
  equal(await none.shortfall(100), 0, "a ratio of 0 keeps nothing free");
});

Deno.test("DiskBudget.perFilesystem() gives directories on one filesystem one budget", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/cache`);
    const paths = [`${dir}/cache`, `${dir}/stage/not/yet`, "/proc/self"];
    const budgets = await DiskBudget.perFilesystem(paths, { minFreeRatio: 0.2 });
    equal(budgets.get(paths[0]!), budgets.get(paths[1]!));
    notEqual(budgets.get(paths[0]!), budgets.get(paths[2]!));
    equal(budgets.get(paths[2]!)!.minFreeRatio, 0.2);
  });
});

Deno.test("DiskBudget.shareOfFreeSpace() counts what the directory already holds", async () => {
  await withTempDir(async (dir) => {
    const freeSpace = () => Promise.resolve({ total: 100 << 20, free: 40 << 20 });
    equal(await DiskBudget.shareOfFreeSpace(`${dir}/new`, 0.5, freeSpace), 20 << 20);
    await Deno.mkdir(`${dir}/c/ab`, { recursive: true });
    await Deno.writeFile(`${dir}/c/ab/x`, new Uint8Array(10 << 20));
    equal(await DiskBudget.shareOfFreeSpace(`${dir}/c`, 0.5, freeSpace), 25 << 20);
    const { total } = await DiskBudget.shareOfFreeSpace(dir, 0.5).then((n) => ({ total: n }));
    ok(total >= 1 << 20 && total % (1 << 20) === 0, `${total}`);
  });
});

Deno.test("a TieredCache dir gives its blocks to claims on its budget and leaves waited room", async () => {
  await withTempDir(async (dir) => {
    const total = 1 << 20;
    let staged = 0; // bytes of a staging directory on the same fake disk
    const budget = new DiskBudget(dir, {
      freeSpace: () => Promise.resolve({ total, free: total - staged - dirBytes(dir) }),
      ttlMs: 0,
    });
    await using cache = await TieredCache.open({
      memoryBytes: 0,
      dirs: [{ path: dir, capacityBytes: 1 << 20, budget }],
    });
    for (let i = 0; i < 16; i++) cache.put(`b${i}`, block(`b${i}`, 40 << 10));
    await cache.flush();
    const before = dirBytes(dir);
    ok(before > 600 << 10, `${before} bytes cached`);

    // A staged write of 400 KiB: the cache deletes enough of its blocks, and no more.
    budget.wait(400 << 10);
    equal(await budget.claim(400 << 10), true);
    budget.unwait(400 << 10);
    const after = dirBytes(dir);
    ok(after < before && after >= before - (400 << 10) - (41 << 10), `${before} -> ${after}`);
    staged += 400 << 10;
    budget.release(400 << 10, true);
    ok(total - staged - after >= 0.1 * total, "the reserve is kept");

    // While a staged write waits for room, a new cache block makes room among the old ones.
    const free = total - staged - dirBytes(dir);
    budget.wait(free);
    cache.put("late", block("late", 40 << 10));
    await cache.flush();
    equal(cache.has("late"), true);
    ok(total - staged - dirBytes(dir) >= 0.1 * total + free, "the waited room stays free");
    budget.unwait(free);
    equal(cache.stats().tiers[0]!.freeBytes, total - staged - dirBytes(dir));
  });
});
