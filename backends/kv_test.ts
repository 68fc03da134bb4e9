import assert from "node:assert/strict";
import type { KvEngine, KvTxn } from "../core/kv.ts";
import { FsError } from "../core/errno.ts";
import { kvConformance } from "./kv_conformance.ts";
import { MemoryKvEngine } from "./kv_memory.ts";
import { SqliteKvEngine } from "./kv_sqlite.ts";
import { dropMemoryBackends, openKvEngine } from "./registry.ts";

kvConformance("MemoryKvEngine", () => Promise.resolve(new MemoryKvEngine()));

let memoryId = 0;
kvConformance("mem:// by name", () => openKvEngine(`mem://conformance-${memoryId++}`), {
  reopen: (previous) => Promise.resolve((previous as MemoryKvEngine).share()),
});

const sqliteDirs = new Map<KvEngine, string>();
kvConformance("SqliteKvEngine", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-kv-" });
  const kv = await SqliteKvEngine.open(`${dir}/meta.db`);
  sqliteDirs.set(kv, dir);
  return kv;
}, {
  reopen: async (previous) => {
    const dir = sqliteDirs.get(previous)!;
    const kv = await openKvEngine(`sqlite3://${dir}/meta.db`);
    sqliteDirs.set(kv, dir);
    return kv;
  },
  dispose: async (kv) => {
    const dir = sqliteDirs.get(kv);
    sqliteDirs.delete(kv);
    if (dir !== undefined) await Deno.remove(dir, { recursive: true }).catch(() => {});
  },
});

/** Runs a transaction that only writes. */
function write(kv: KvEngine, fn: (tx: KvTxn) => void): Promise<void> {
  return kv.txn((tx) => {
    fn(tx);
    return Promise.resolve();
  });
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-kv-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("SqliteKvEngine.open() refuses a file that is not SQLite", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/meta.db`;
    await Deno.writeTextFile(path, "this is not a database ".repeat(200));
    await assert.rejects(SqliteKvEngine.open(path), (err: Error) => {
      assert.equal(err.message, `Metadata file "${path}" is not a SlayerFS SQLite database`);
      assert.ok(err.cause !== undefined);
      return true;
    });
    // The file is left untouched.
    assert.equal(await Deno.readTextFile(path), "this is not a database ".repeat(200));
  });
});

Deno.test("SqliteKvEngine.open() refuses another application's SQLite database", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/other.db`;
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(path);
    db.exec("CREATE TABLE things (id INTEGER PRIMARY KEY)");
    db.close();
    await assert.rejects(
      SqliteKvEngine.open(path),
      { message: `Metadata file "${path}" is not a SlayerFS SQLite database` },
    );
  });
});

Deno.test("SqliteKvEngine.open() names a missing directory", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      SqliteKvEngine.open(`${dir}/nope/meta.db`),
      { message: `Directory "${dir}/nope" of metadata file "${dir}/nope/meta.db" does not exist` },
    );
  });
});

Deno.test("SqliteKvEngine read-only mode reads and refuses writes with EROFS", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/meta.db`;
    await assert.rejects(SqliteKvEngine.open(path, { readOnly: true }), /does not exist/);
    const rw = await SqliteKvEngine.open(path);
    await write(rw, (tx) => tx.set("a", new Uint8Array([1])));
    const ro = await openKvEngine(`sqlite3://${path}?readonly=1`);
    try {
      assert.deepEqual(await ro.txn((tx) => tx.get("a")), new Uint8Array([1]));
      await assert.rejects(
        write(ro, (tx) => tx.set("b", new Uint8Array([2]))),
        (err) => err instanceof FsError && err.code === "EROFS",
      );
      // The read-only handle sees later commits of the writer.
      await write(rw, (tx) => tx.set("b", new Uint8Array([3])));
      assert.deepEqual(await ro.txn((tx) => tx.get("b")), new Uint8Array([3]));
    } finally {
      await ro.close();
      await rw.close();
    }
  });
});

Deno.test("SqliteKvEngine: two handles on one file stay serializable", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/meta.db`;
    const a = await SqliteKvEngine.open(path);
    const b = await SqliteKvEngine.open(path);
    try {
      const inc = (kv: KvEngine) =>
        kv.txn(async (tx) => {
          const v = await tx.get("n");
          const n = v === undefined ? 0 : v[0]! | (v[1]! << 8);
          // Yield so the other handle interleaves between our read and our write.
          await new Promise((resolve) => setTimeout(resolve, 0));
          tx.set("n", new Uint8Array([(n + 1) & 0xff, (n + 1) >> 8]));
        });
      await Promise.all(Array.from({ length: 100 }, (_, i) => inc(i % 2 === 0 ? a : b)));
      const v = (await a.txn((tx) => tx.get("n")))!;
      assert.equal(v[0]! | (v[1]! << 8), 100);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("SqliteKvEngine keeps every committed txn and no partial one after SIGKILL", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/meta.db`;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("./_sqlite_crash_child.ts", import.meta.url).pathname, path],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let lastCommitted = -1;
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    try {
      while (lastCommitted < 300) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        const lines = buffered.split("\n");
        buffered = lines.pop()!;
        for (const line of lines) if (line !== "") lastCommitted = Number(line);
      }
    } finally {
      child.kill("SIGKILL");
      await reader.cancel().catch(() => {});
      await child.status;
    }
    assert.ok(lastCommitted >= 300, `the child committed only ${lastCommitted} txns`);
    const kv = await SqliteKvEngine.open(path);
    try {
      const counter = await kv.txn((tx) => tx.get("counter"));
      const n = Number(new TextDecoder().decode(counter));
      assert.ok(n >= lastCommitted, `counter ${n} < last reported commit ${lastCommitted}`);
      const pairs = await kv.txn((tx) => tx.scan("txn/"));
      const seen = new Map<string, number>();
      for (const [key, value] of pairs) {
        const i = key.split("/")[1]!;
        seen.set(i, (seen.get(i) ?? 0) + 1);
        assert.equal(value.length, 1000 + Number(i) % 5000);
      }
      assert.equal(seen.size, n + 1, "one group of keys per committed txn");
      for (const [i, count] of seen) {
        assert.equal(count, 3, `txn ${i} has ${count} of its 3 keys`);
        assert.ok(Number(i) <= n);
      }
    } finally {
      await kv.close();
    }
  });
});

Deno.test("SqliteKvEngine: three processes incrementing one counter lose no update", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/meta.db`;
    // Create the database first so the children do not race to make the schema.
    await (await SqliteKvEngine.open(path)).close();
    const script = new URL("./_sqlite_increment_child.ts", import.meta.url).pathname;
    const children = Array.from({ length: 3 }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script, path, "1000"],
        stdout: "inherit",
        stderr: "inherit",
      }).spawn());
    const statuses = await Promise.all(children.map((c) => c.status));
    assert.ok(statuses.every((s) => s.success));
    const kv = await SqliteKvEngine.open(path);
    try {
      const v = (await kv.txn((tx) => tx.get("counter")))!;
      assert.equal(new DataView(v.buffer, v.byteOffset).getUint32(0), 3000);
      const seen = (await kv.txn((tx) => tx.scan("by/"))).map(([, v]) =>
        new DataView(v.buffer, v.byteOffset).getUint32(0)
      );
      assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 3000 }, (_, i) => i + 1));
    } finally {
      await kv.close();
    }
  });
});

Deno.test("openKvEngine() shares mem:// engines by name and not without one", async () => {
  const a = await openKvEngine("mem://registry-share");
  await write(a, (tx) => tx.set("k", new Uint8Array([1])));
  await a.close();
  const b = await openKvEngine("mem://registry-share");
  assert.deepEqual(await b.txn((tx) => tx.get("k")), new Uint8Array([1]));
  const c = await openKvEngine("mem://");
  assert.equal(await c.txn((tx) => tx.get("k")), undefined);
  dropMemoryBackends();
  const d = await openKvEngine("mem://registry-share");
  assert.equal(await d.txn((tx) => tx.get("k")), undefined);
  await Promise.all([b.close(), c.close(), d.close()]);
});

Deno.test("MemoryKvEngine handles a million keys", async () => {
  const kv = new MemoryKvEngine();
  const value = new Uint8Array(8);
  for (let batch = 0; batch < 10; batch++) {
    await write(kv, (tx) => {
      for (let i = 0; i < 100_000; i++) {
        // Interleave batches so inserts land all over the key space.
        const n = i * 10 + batch;
        tx.set(`i/${n.toString(16).padStart(6, "0")}`, value);
      }
    });
  }
  assert.equal(kv.size, 1_000_000);
  const started = performance.now();
  for (let i = 0; i < 1000; i++) {
    const page = await kv.txn((tx) => tx.scan(`i/0${(i % 16).toString(16)}`, { limit: 10 }));
    assert.equal(page.length, 10);
  }
  assert.ok(performance.now() - started < 2000, "1000 prefix scans take under 2 s");
  await write(kv, (tx) => {
    for (let i = 0; i < 1_000_000; i += 2) tx.delete(`i/${i.toString(16).padStart(6, "0")}`);
  });
  assert.equal(kv.size, 500_000);
  const odd = await kv.txn((tx) => tx.scan("i/", { limit: 3 }));
  assert.deepEqual(odd.map(([k]) => k), ["i/000001", "i/000003", "i/000005"]);
  await kv.close();
});
