/**
 * The quick start: creates a volume in a folder (SQLite metadata + file blocks) and exercises it
 * through the embedding API, without FUSE, asserting each step.
 *
 * Usage: `deno task demo /tmp/slayerfs-objroot`
 *
 * @module
 */

import assert from "node:assert/strict";
import { formatVolume, O_CREAT, O_RDWR, openKvEngine, openVolume } from "../mod.ts";

/** Runs the demo in `root`; returns the lines it printed. */
export async function runDemo(root: string, log: (line: string) => void = console.log) {
  await Deno.mkdir(root, { recursive: true });
  const metaUrl = `sqlite3://${root}/meta.db`;
  const kv = await openKvEngine(metaUrl);
  const fmt = await formatVolume(kv, { name: "demo", storage: `file://${root}/data` });
  await kv.close();
  log(`volume "${fmt.name}" in ${root} (block ${fmt.blockSize}, chunk ${fmt.chunkSize})`);
  const vol = await openVolume(metaUrl);
  try {
    const run = `/run-${Date.now()}`;
    await vol.mkdir(`${run}/a/b/c`, { recursive: true });
    assert.equal((await vol.stat(`${run}/a/b/c`)).nlink, 2);
    log("mkdir -p: ok");

    const bs = fmt.blockSize;
    const cs = fmt.chunkSize;
    const big = new Uint8Array(cs + bs + 12345);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) & 255;
    big[big.length - 1] = 7;
    await vol.writeFile(`${run}/a/big.bin`, big);
    assert.deepEqual(await vol.readFile(`${run}/a/big.bin`), big);
    log(`write across block and chunk boundaries (${big.length} bytes): ok`);

    {
      await using f = await vol.open(`${run}/a/big.bin`, O_RDWR);
      const patch = new Uint8Array(100).fill(0xab);
      await f.write(cs - 50, patch);
      await f.close();
      big.set(patch, cs - 50);
      assert.deepEqual(await vol.readFile(`${run}/a/big.bin`), big);
    }
    log("overwrite across a chunk boundary: ok");

    {
      await using f = await vol.open(`${run}/sparse`, O_RDWR | O_CREAT);
      await f.write(3 * bs + 10, new Uint8Array([1, 2, 3]));
      await f.close();
      const data = await vol.readFile(`${run}/sparse`);
      assert.equal(data.length, 3 * bs + 13);
      assert.ok(data.subarray(0, 3 * bs + 10).every((b) => b === 0));
      assert.deepEqual([...data.subarray(3 * bs + 10)], [1, 2, 3]);
    }
    log("sparse write with zero-fill: ok");

    await vol.rename(`${run}/a/big.bin`, `${run}/a/b/c/moved.bin`);
    await assert.rejects(vol.stat(`${run}/a/big.bin`), { code: "ENOENT" });
    assert.equal((await vol.stat(`${run}/a/b/c/moved.bin`)).size, big.length);
    log("rename across directories: ok");

    await vol.link(`${run}/a/b/c/moved.bin`, `${run}/hard.bin`);
    assert.equal((await vol.stat(`${run}/hard.bin`)).nlink, 2);
    await vol.unlink(`${run}/a/b/c/moved.bin`);
    assert.equal((await vol.stat(`${run}/hard.bin`)).nlink, 1);
    assert.deepEqual(await vol.readFile(`${run}/hard.bin`), big);
    log("hard link: ok");

    await vol.symlink("hard.bin", `${run}/sym`);
    assert.equal(await vol.readlink(`${run}/sym`), "hard.bin");
    assert.equal((await vol.stat(`${run}/sym`)).size, big.length);
    log("symlink + readlink: ok");

    await vol.truncate(`${run}/hard.bin`, 1000);
    await vol.truncate(`${run}/hard.bin`, 5000);
    const t = await vol.readFile(`${run}/hard.bin`);
    assert.deepEqual(t.subarray(0, 1000), big.subarray(0, 1000));
    assert.ok(t.subarray(1000).every((b) => b === 0));
    log("truncate (shrink, then grow reads zeros): ok");
  } finally {
    await vol.close();
  }
  log("demo finished: all steps passed");
}

if (import.meta.main) {
  const root = Deno.args[0];
  if (!root) {
    console.error("usage: deno task demo DIR");
    Deno.exit(2);
  }
  try {
    await runDemo(root.startsWith("/") ? root : `${Deno.cwd()}/${root}`);
  } catch (err) {
    console.error(`demo failed: ${err instanceof Error ? err.stack : err}`);
    Deno.exit(1);
  }
}
