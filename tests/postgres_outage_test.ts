/**
 * A PostgreSQL restart under a mount: the daemon's transactions wait and retry while the server is
 * down, the mount goes on without a remount, and every file that was fsync'ed before, during and
 * after the outage is intact, on this mount and after a remount.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startSlayer } from "./_mount.ts";
import { startPostgres } from "./_postgres.ts";
import { durableContent as content, spawnDurableWriter, writeDurably } from "./_durable_writer.ts";

const GUARD_MS = 600_000;

Deno.test({
  name: "a mount on PostgreSQL rides out a server restart during writes and loses no fsync'ed file",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using pg = await startPostgres();
    // A restart can take long on a loaded machine: let transactions wait for it (default 60 s),
    // and FUSE requests too (io_deadline, default 60 s).
    const meta = `${await pg.newDatabase()}&retry_timeout=600`;
    await using fs = await startSlayer({ meta, extraArgs: ["-o", "io_deadline=600"] });
    const dir = `${fs.mnt}/d`;
    await fs.guard(GUARD_MS, "before", () => Deno.mkdir(dir));
    // The writer is a process of its own that keeps creating fsync'ed files while the server goes
    // down and comes back (see spawnDurableWriter: the test must hold no file on the mount while
    // it starts the server).
    const files = 40;
    const writer = spawnDurableWriter(dir, files);
    let downMs = 0;
    const serverLog = () => Deno.readTextFileSync(`${pg.directory}/server.log`).slice(-3000);
    try {
      await writer.until(10);
      await pg.halt("immediate");
      await new Promise((r) => setTimeout(r, 3000));
      const t0 = Date.now();
      await pg.start();
      downMs = 3000 + Date.now() - t0;
      const r = await writer.done();
      assert.equal(
        r.code,
        0,
        `the writer failed (server down ${downMs} ms): ${r.stderr}\n${fs.log().slice(-3000)}\n` +
          serverLog(),
      );
    } finally {
      await writer.kill();
    }
    assert.equal(writer.durable.length, files);
    const check = async () => {
      for (const i of writer.durable) {
        assert.deepEqual(await Deno.readFile(`${dir}/f${i}`), content(i), `f${i}`);
      }
      assert.deepEqual(await Deno.readFile(`${dir}/after`), content(99), "after");
    };
    await fs.guard(GUARD_MS, "after", async () => {
      await writeDurably(`${dir}/after`, content(99));
      await check();
    });
    // What was fsync'ed is in PostgreSQL, not only in the daemon's memory.
    await fs.restart();
    await fs.guard(GUARD_MS, "remounted", check);
  },
});
