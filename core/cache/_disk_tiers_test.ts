import assert, { deepEqual, equal, ok } from "node:assert/strict";
import { TieredCache } from "./tiered_cache.ts";
import type { FreeSpace } from "./free_space.ts";
import { segmentSums } from "../block_codec.ts";
import {
  BIG,
  block,
  dataOffset,
  dirBytes,
  fileOfSize,
  files,
  flipByte,
  openCache,
  openFiles,
  RANGES,
  SEG,
  withTempDir,
} from "./_test_util.ts";

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
