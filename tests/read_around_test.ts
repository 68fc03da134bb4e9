/**
 * Read-around (`core/_read_around.ts`) on a real mount: a random read also puts the 64 KiB window
 * around it into the kernel's page cache (seen with `fincore`, which counts a file's resident
 * pages through `mincore(2)`), the window reads back right, `-o read_around=0` and the writeback
 * cache turn it off, and no window read before a change lands after it (a write through another
 * descriptor, a truncate by path), however the two race.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runCli, startSlayer } from "./_mount.ts";
import { run } from "./_run.ts";
import { readAt as pread } from "../core/_file_range.ts";
import { pseudoRandom as noise } from "./posix/_helpers.ts";

const SIZE = 1 << 20;

/** The bytes of `path` in the page cache (`fincore`). */
async function resident(path: string): Promise<number> {
  const r = await run("fincore", ["--bytes", "--noheadings", "--output", "RES", path]);
  assert.equal(r.code, 0, r.stderr);
  return Number(r.stdout.trim());
}

/** Waits until `path` has `bytes` resident (the store runs on a worker thread), or 5 s. */
async function residentSoon(path: string, bytes: number): Promise<number> {
  let now = await resident(path);
  for (let i = 0; i < 100 && now < bytes; i++) {
    await new Promise((r) => setTimeout(r, 50));
    now = await resident(path);
  }
  return now;
}

/** Drops the kernel's clean pages of `path` (`posix_fadvise(DONTNEED)` through GNU dd). */
async function dropPages(path: string): Promise<void> {
  const r = await run("dd", [`if=${path}`, "iflag=nocache", "count=0", "status=none"]);
  assert.equal(r.code, 0, r.stderr);
}

Deno.test({
  name: "read-around: a random 4 KiB read puts its 64 KiB window in the page cache; off with 0",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const data = noise(SIZE, 1);
    {
      await using fs = await startSlayer();
      const path = `${fs.mnt}/f`;
      const tailPath = `${fs.mnt}/t`;
      await Deno.writeFile(path, data);
      await Deno.writeFile(tailPath, data.subarray(0, SIZE - 100)); // a partial last page
      await fs.restart(); // nothing of the files in the kernel
      using file = await Deno.open(path);
      assert.deepEqual(await pread(file, 200 << 10, 4096), data.subarray(200 << 10, 204 << 10));
      assert.equal(await residentSoon(path, 64 << 10), 64 << 10, "the window [192K, 256K)");
      for (let off = 192 << 10; off < 256 << 10; off += 4096) {
        assert.deepEqual(await pread(file, off, 4096), data.subarray(off, off + 4096), `at ${off}`);
      }
      assert.equal(await resident(path), 64 << 10, "the window's reads came from the page cache");
      // The last window ends with the file, not at a page or window boundary.
      using tail = await Deno.open(tailPath);
      const at = SIZE - (32 << 10);
      assert.deepEqual(await pread(tail, at, 4096), data.subarray(at, at + 4096));
      assert.equal(await residentSoon(tailPath, 64 << 10), 64 << 10);
      assert.equal((await Deno.stat(tailPath)).size, SIZE - 100, "the size is not extended");
      assert.deepEqual(
        await pread(tail, SIZE - 4096, 4096),
        data.subarray(SIZE - 4096, SIZE - 100),
      );
      // `slayerfs status` counts the windows (its state is refreshed every 2 s).
      let status = "";
      for (let i = 0; i < 30 && !/Read-around: +2 windows, 127\.9 KiB/.test(status); i++) {
        await new Promise((r) => setTimeout(r, 200));
        status = (await runCli(["status", fs.mnt])).stdout;
      }
      assert.match(status, /Read-around: +2 windows, 127\.9 KiB to the page cache/);
    }
    for (const option of ["read_around=0", "writeback_cache"]) {
      await using fs = await startSlayer({ extraArgs: ["-o", option] });
      await Deno.writeFile(`${fs.mnt}/f`, data);
      await fs.restart();
      using file = await Deno.open(`${fs.mnt}/f`);
      assert.deepEqual(await pread(file, 200 << 10, 4096), data.subarray(200 << 10, 204 << 10));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await resident(`${fs.mnt}/f`), 4096, `${option}: the page read only`);
    }
  },
});

Deno.test({
  name: "read-around: no window read before a write or a truncate lands after it",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Each store held back 150 ms in the daemon: without the waits of `_read_around.ts`, the
    // window would land after the write or the truncate.
    Deno.env.set("SLAYERFS_TEST_STORE_DELAY_MS", "150");
    await using fs = await startSlayer().finally(() => {
      Deno.env.delete("SLAYERFS_TEST_STORE_DELAY_MS");
    });
    const path = `${fs.mnt}/f`;
    const data = noise(SIZE, 2);
    for (let i = 0; i < 16; i++) {
      await Deno.writeFile(path, data);
      await dropPages(path);
      const w = (1 + (i * 7) % 14) << 16; // a window, never the first (read whole from 0)
      using reader = await Deno.open(path);
      assert.deepEqual(await pread(reader, w + 4096, 4096), data.subarray(w + 4096, w + 8192));
      if (i % 2 === 0) {
        // A write into the window through another descriptor, right after the read.
        const fresh = noise(4096, 100 + i);
        {
          using writer = await Deno.open(path, { write: true });
          await writer.seek(w + 8192, Deno.SeekMode.Start);
          assert.equal(await writer.write(fresh), 4096);
        }
        // The kernel drops the file's pages when it sees the new mtime: a late store would land
        // after that, and this mount would keep its pages for the attribute timeout (1 s).
        await Deno.stat(path);
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(await pread(reader, w + 8192, 4096), fresh, `round ${i}: the write`);
        using again = await Deno.open(path);
        assert.deepEqual(await pread(again, w + 8192, 4096), fresh, `round ${i}: a new open`);
      } else {
        // A truncate by path into the window, right after the read.
        await Deno.truncate(path, w + 10_000);
        await Deno.stat(path);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal((await Deno.stat(path)).size, w + 10_000, `round ${i}: the size`);
        const got = await pread(reader, w, 64 << 10);
        assert.deepEqual(got, data.subarray(w, w + 10_000), `round ${i}: the data`);
      }
    }
  },
});

Deno.test({
  name: "read-around: a window size that is not whole pages is refused with exit code 2",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const r = await runCli([
        "mount",
        "-o",
        "read_around=3000",
        `sqlite3://${dir}/meta.db`,
        `${dir}/mnt`,
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /read_around=3000: expected a size in whole 4 KiB pages/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "read-around: random reads, writes and truncates through separate opens match a model",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using fs = await startSlayer();
    const path = `${fs.mnt}/f`;
    const model = noise(SIZE, 3);
    let size = SIZE;
    await Deno.writeFile(path, model);
    await fs.restart();
    using reader = await Deno.open(path);
    let x = 7;
    const rand = (n: number) => (x = (x * 1103515245 + 12345) >>> 0) % n;
    for (let i = 0; i < 400; i++) {
      const op = rand(10);
      if (op < 7) {
        const off = rand(SIZE / 4096) * 4096;
        const want = model.subarray(Math.min(off, size), Math.min(off + 4096, size));
        assert.deepEqual(await pread(reader, off, 4096), want, `op ${i}: read at ${off}`);
      } else if (op < 9) {
        const off = rand(SIZE / 4096) * 4096;
        const bytes = noise(4096, 1000 + i);
        using writer = await Deno.open(path, { write: true });
        await writer.seek(off, Deno.SeekMode.Start);
        assert.equal(await writer.write(bytes), 4096);
        model.set(bytes, off);
        if (off + 4096 > size) {
          model.fill(0, size, off); // the gap a write past the end leaves reads as zeros
          size = off + 4096;
        }
      } else {
        const to = rand(SIZE);
        await Deno.truncate(path, to);
        if (to > size) model.fill(0, size, to);
        size = to;
      }
    }
    assert.equal((await Deno.stat(path)).size, size);
    assert.deepEqual(await Deno.readFile(path), model.subarray(0, size));
  },
});
