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

const GUARD_MS = 600_000;

function content(name: string): string {
  return `${name}\n`.repeat(200);
}

async function writeSynced(path: string, text: string): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    const bytes = new TextEncoder().encode(text);
    let done = 0;
    while (done < bytes.length) done += await file.write(bytes.subarray(done));
    await file.sync();
  } finally {
    file.close();
  }
}

Deno.test({
  name: "a mount on PostgreSQL rides out a server restart during writes and loses no fsync'ed file",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using pg = await startPostgres();
    // A restart can take long on a loaded machine: let transactions wait for it (default 60 s).
    const meta = `${await pg.newDatabase()}&retry_timeout=600`;
    // ... and FUSE requests too (io_deadline, default 60 s): a restart took 126 s once in CI.
    await using fs = await startSlayer({ meta, extraArgs: ["-o", "io_deadline=600"] });
    const synced: string[] = [];
    await fs.guard(GUARD_MS, "before", async () => {
      await Deno.mkdir(`${fs.mnt}/d`);
      for (let i = 0; i < 10; i++) {
        await writeSynced(`${fs.mnt}/d/before-${i}`, content(`before-${i}`));
        synced.push(`before-${i}`);
      }
    });
    // A writer that keeps creating fsync'ed files while the server goes down and comes back.
    let stop = false;
    let downMs = 0;
    const errors: unknown[] = [];
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const name = `during-${i}`;
        try {
          await writeSynced(`${fs.mnt}/d/${name}`, content(name));
          synced.push(name);
        } catch (err) {
          errors.push(err);
        }
      }
    })();
    await fs.guard(GUARD_MS, "outage", async () => {
      await new Promise((r) => setTimeout(r, 500));
      const before = synced.length;
      await pg.halt("immediate");
      await new Promise((r) => setTimeout(r, 3000));
      const t0 = Date.now();
      await pg.start();
      downMs = 3000 + Date.now() - t0;
      // The writer goes on after the server is back.
      const deadline = Date.now() + 60_000;
      while (synced.length < before + 10 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      stop = true;
      await writer;
    });
    const serverLog = () => Deno.readTextFileSync(`${pg.directory}/server.log`).slice(-3000);
    assert.deepEqual(
      errors.map(String),
      [],
      `server down ${downMs} ms\n${fs.log().slice(-3000)}\n${serverLog()}`,
    );
    assert.ok(synced.some((n) => n.startsWith("during-")), "no write finished across the outage");
    const check = async () => {
      for (const name of synced) {
        assert.equal(await Deno.readTextFile(`${fs.mnt}/d/${name}`), content(name), name);
      }
    };
    await fs.guard(GUARD_MS, "after", async () => {
      await writeSynced(`${fs.mnt}/d/after`, content("after"));
      synced.push("after");
      await check();
    });
    // What was fsync'ed is in PostgreSQL, not only in the daemon's memory.
    await fs.restart();
    await fs.guard(GUARD_MS, "remounted", check);
  },
});
