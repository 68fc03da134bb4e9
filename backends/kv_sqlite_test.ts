import assert from "node:assert/strict";
import { SqliteKvEngine, WAL_CHECKPOINT_PAGES } from "./kv_sqlite.ts";

function mode(path: string): number {
  return Deno.statSync(path).mode! & 0o777;
}

Deno.test("SqliteKvEngine.open() creates the database, WAL and SHM 0600", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kv = await SqliteKvEngine.open(`${dir}/meta.db`);
    await kv.txn((tx) => Promise.resolve(tx.set("a", new Uint8Array([1]))));
    for (const f of ["meta.db", "meta.db-wal", "meta.db-shm"]) {
      assert.equal(mode(`${dir}/${f}`), 0o600, f);
    }
    await kv.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SqliteKvEngine.open() tightens an existing database and its WAL", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const first = await SqliteKvEngine.open(`${dir}/meta.db`);
    await first.txn((tx) => Promise.resolve(tx.set("a", new Uint8Array([1]))));
    for (const f of ["meta.db", "meta.db-wal", "meta.db-shm"]) {
      await Deno.chmod(`${dir}/${f}`, 0o644); // as an older version left them
    }
    // A read-only open changes nothing; a writable one tightens all three.
    const reader = await SqliteKvEngine.open(`${dir}/meta.db`, { readOnly: true });
    await reader.close();
    assert.equal(mode(`${dir}/meta.db`), 0o644);
    const second = await SqliteKvEngine.open(`${dir}/meta.db`);
    for (const f of ["meta.db", "meta.db-wal", "meta.db-shm"]) {
      assert.equal(mode(`${dir}/${f}`), 0o600, f);
    }
    await second.close();
    await first.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SqliteKvEngine commits do not checkpoint before WAL_CHECKPOINT_PAGES pages", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const kv = await SqliteKvEngine.open(`${dir}/meta.db`);
    // 1,500 commits of one new 4 KiB value each: past SQLite's default of 1,000 WAL pages, at
    // which a commit would checkpoint and the next one would write from the WAL's start again.
    const value = new Uint8Array(4000);
    for (let i = 0; i < 1500; i++) {
      await kv.txn((tx) => Promise.resolve(tx.set(`k${String(i).padStart(5, "0")}`, value)));
    }
    const frames = Deno.statSync(`${dir}/meta.db-wal`).size / (24 + 4096);
    assert.ok(frames > 1500 && frames < WAL_CHECKPOINT_PAGES, `${frames} WAL frames`);
    // The database file itself has not grown: nothing was copied into it yet.
    assert.ok(Deno.statSync(`${dir}/meta.db`).size < 100 * 4096);
    await kv.close();
    // The last close checkpoints everything: a new engine reads every value.
    const again = await SqliteKvEngine.open(`${dir}/meta.db`, { readOnly: true });
    const pairs = await again.txn((tx) => tx.scan("k", { keysOnly: true }), { readOnly: true });
    assert.equal(pairs.length, 1500);
    await again.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
