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
import { durableContent as content, spawnDurableWriter } from "./_durable_writer.ts";

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
    // The writer is a process of its own: the test must hold no file on the mount while it
    // starts etcd (see spawnDurableWriter).
    const files = 40;
    const writer = spawnDurableWriter(dir, files);
    try {
      await writer.until(10);
      await etcd.kill(); // the outage starts in the middle of the writes
      const during = writer.durable.length;
      await new Promise((r) => setTimeout(r, 3000));
      // Nothing could commit while etcd was down (at most the write that was committing).
      assert.ok(writer.durable.length <= during + 1, `${writer.durable.length} written while down`);
      await etcd.start();
      const r = await writer.done();
      assert.equal(r.code, 0, `the writer failed: ${r.stderr}\n${fs.log().slice(-3000)}`);
    } finally {
      await writer.kill();
    }
    assert.equal(writer.durable.length, files);
    // The mount serves again: every file reads back, and the directory lists them all.
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.equal(names.length, files);
    for (const i of writer.durable) {
      assert.deepEqual(await Deno.readFile(`${dir}/f${i}`), content(i), `f${i}`);
    }
    // ... and so does a new mount after another etcd restart.
    await etcd.restart();
    await fs.restart();
    for (const i of writer.durable) {
      assert.deepEqual(await Deno.readFile(`${dir}/f${i}`), content(i), `f${i} after remount`);
    }
    assert.match(fs.log(), /etcd at 127\.0\.0\.1:\d+ is unreachable/);
  },
});
