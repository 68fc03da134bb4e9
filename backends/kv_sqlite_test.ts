import assert from "node:assert/strict";
import { SqliteKvEngine, SqliteLockedError } from "./kv_sqlite.ts";

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

Deno.test("SqliteKvEngine.lock() admits one holder until close, and readers beside it", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/meta.db`;
  try {
    const a = await SqliteKvEngine.open(path);
    await a.lock();
    await a.lock(); // idempotent
    assert.equal(mode(`${path}.lock`), 0o600);
    assert.equal(Deno.readTextFileSync(`${path}.lock`).trim(), String(Deno.pid));
    const b = await SqliteKvEngine.open(path);
    await assert.rejects(b.lock(), (err: Error) => {
      assert.ok(err instanceof SqliteLockedError);
      assert.equal(err.pid, Deno.pid);
      assert.match(err.message, /in use by pid \d+/);
      return true;
    });
    // Without the lock, the second handle still reads and writes.
    await b.txn((tx) => Promise.resolve(tx.set("k", new Uint8Array([2]))));
    await a.close();
    await assert.rejects(Deno.stat(`${path}.lock`), Deno.errors.NotFound);
    await b.lock();
    await b.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SqliteKvEngine.lock() is released when its process is killed", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/meta.db`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { SqliteKvEngine } from ${JSON.stringify(import.meta.resolve("./kv_sqlite.ts"))};
       const kv = await SqliteKvEngine.open(${JSON.stringify(path)});
       await kv.lock();
       console.log("locked");
       setInterval(() => {}, 1000);`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    assert.match(new TextDecoder().decode(value), /locked/);
    reader.releaseLock();
    const kv = await SqliteKvEngine.open(path);
    await assert.rejects(kv.lock(), (err: Error) => (err as SqliteLockedError).pid === child.pid);
    child.kill("SIGKILL");
    await child.status;
    await kv.lock(); // the stale lock file is reused
    assert.equal(Deno.readTextFileSync(`${path}.lock`).trim(), String(Deno.pid));
    await kv.close();
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.stdout.cancel().catch(() => {});
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});
