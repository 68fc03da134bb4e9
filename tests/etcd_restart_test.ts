/**
 * An etcd restart under a mounted volume: the private etcd is killed (SIGKILL) and started again
 * while a writer creates and fsyncs files through the real mount. The writer's calls wait out
 * the outage instead of failing, the mount serves again without a remount, and every fsync'ed
 * file is intact, also after a remount.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startEtcd } from "./_etcd.ts";
import { startSlayer } from "./_mount.ts";

function content(i: number): Uint8Array {
  const out = new Uint8Array(20_000 + i * 97);
  for (let j = 0; j < out.length; j++) out[j] = (i * 31 + j * 7) & 0xff;
  return out;
}

async function writeSynced(path: string, data: Uint8Array): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    let at = 0;
    while (at < data.length) at += await f.write(data.subarray(at));
    await f.sync();
  } finally {
    f.close();
  }
}

Deno.test({
  name: "a mount on etcd waits out an etcd restart and keeps every fsync'ed file",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using etcd = await startEtcd();
    // A generous outage budget: under the whole suite's load an etcd restart can take a minute.
    // FUSE requests wait as long (io_deadline, default 60 s): a loaded machine restarts slowly.
    await using fs = await startSlayer({
      meta: `${etcd.url("restart")}?retry_timeout=600`,
      extraArgs: ["-o", "io_deadline=600"],
    });
    const dir = `${fs.mnt}/d`;
    await Deno.mkdir(dir);
    const written: number[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop || i < 40; i++) {
        await writeSynced(`${dir}/f${i}`, content(i));
        written.push(i);
      }
    })();
    const progress = async (n: number) => {
      while (written.length < n) {
        await Promise.race([writer, new Promise((r) => setTimeout(r, 50))]);
      }
    };
    try {
      await progress(10);
      await etcd.kill(); // the outage starts in the middle of the writes
      const during = written.length;
      await new Promise((r) => setTimeout(r, 3000));
      // Nothing could commit while etcd was down (at most the write that was committing).
      assert.ok(written.length <= during + 1, `${written.length} files written while down`);
      await etcd.start();
      await progress(during + 10);
    } finally {
      stop = true;
      await writer;
    }
    // The mount serves again: every file reads back, and the directory lists them all.
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.equal(names.length, written.length);
    for (const i of written) assert.deepEqual(await Deno.readFile(`${dir}/f${i}`), content(i));
    // ... and so does a new mount after another etcd restart.
    await etcd.restart();
    await fs.restart();
    for (const i of written) assert.deepEqual(await Deno.readFile(`${dir}/f${i}`), content(i));
    assert.match(fs.log(), /etcd at 127\.0\.0\.1:\d+ is unreachable/);
  },
});
