import assert from "node:assert/strict";
import { SqliteKvEngine } from "./kv_sqlite.ts";

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
