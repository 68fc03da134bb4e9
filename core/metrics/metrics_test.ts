import assert from "node:assert/strict";
import { MemoryBlockStore, SqliteKvEngine } from "../../backends/mod.ts";
import { FaultyBlockStore } from "../../backends/store_faulty.ts";
import { Errno, FsError } from "../errno.ts";
import { parseAddress, serveMetrics } from "./http.ts";
import { MountMetrics } from "./metrics.ts";
import { parseMetrics, sum } from "./parse.ts";

const enc = new TextEncoder();

Deno.test("the engine wrapper counts transactions, restarts after a conflict, and failures", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-metrics-kv-" });
  const a = await SqliteKvEngine.open(`${dir}/meta.db`);
  const b = await SqliteKvEngine.open(`${dir}/meta.db`);
  try {
    const m = new MountMetrics();
    const kv = m.kv(a);
    assert.ok(kv instanceof SqliteKvEngine, "instanceof is the engine's");
    assert.equal(kv.scheme, a.scheme);
    await kv.txn((tx) => tx.get("k"), { readOnly: true });
    // Another connection commits between this transaction's read and its commit: SQLite refuses
    // the stale snapshot and the engine runs the body again.
    let runs = 0;
    await kv.txn(async (tx) => {
      runs++;
      await tx.get("k");
      if (runs === 1) await b.txn((t) => Promise.resolve(t.set("k", enc.encode("b"))));
      tx.set("k", enc.encode("a"));
    });
    assert.equal(runs, 2, "the body ran again");
    await assert.rejects(kv.txn(() => Promise.reject(new FsError(Errno.ENOENT))));
    await assert.rejects(kv.txn(() => Promise.reject(new Error("engine down"))));
    const s = parseMetrics(await m.text());
    assert.equal(sum(s, "slayerfs_meta_txn_duration_seconds_count", { kind: "read" }), 1);
    assert.equal(sum(s, "slayerfs_meta_txn_duration_seconds_count", { kind: "write" }), 3);
    assert.equal(sum(s, "slayerfs_meta_txn_restarts_total"), 1);
    assert.equal(sum(s, "slayerfs_meta_txn_errors_total"), 1, "an FsError is an answer");
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the store wrapper counts requests, bytes and failures by method", async () => {
  const m = new MountMetrics();
  // A store that fails on demand stands for an unreachable one.
  const inner = new FaultyBlockStore(new MemoryBlockStore());
  const store = m.store(inner);
  assert.ok(store instanceof FaultyBlockStore);
  await store.put("a", new Uint8Array(100));
  assert.equal((await store.get("a", 10, 20)).byteLength, 20);
  assert.equal(await store.head("nope"), undefined);
  await assert.rejects(store.get("nope")); // NotFound: an answer, not a failure
  inner.failNext(1, new Error("connection refused"));
  await assert.rejects(store.put("b", new Uint8Array(1)));
  const s = parseMetrics(await m.text());
  const n = (method: string) =>
    sum(s, "slayerfs_object_request_duration_seconds_count", { method });
  assert.deepEqual([n("put"), n("get"), n("head"), n("delete"), n("list")], [2, 2, 1, 0, 0]);
  assert.equal(sum(s, "slayerfs_object_request_bytes_total", { method: "put" }), 100);
  assert.equal(sum(s, "slayerfs_object_request_bytes_total", { method: "get" }), 20);
  assert.equal(sum(s, "slayerfs_object_request_errors_total", { method: "get" }), 0);
  assert.equal(sum(s, "slayerfs_object_request_errors_total", { method: "put" }), 1);
});

Deno.test("parseAddress reads HOST:PORT, [V6]:PORT, :PORT and PORT", () => {
  assert.deepEqual(parseAddress("127.0.0.1:9567"), { hostname: "127.0.0.1", port: 9567 });
  assert.deepEqual(parseAddress("[::1]:9567"), { hostname: "::1", port: 9567 });
  assert.deepEqual(parseAddress(":9567"), { hostname: "0.0.0.0", port: 9567 });
  assert.deepEqual(parseAddress("9567"), { hostname: "127.0.0.1", port: 9567 });
  assert.deepEqual(parseAddress("localhost:0"), { hostname: "localhost", port: 0 });
  for (const bad of ["", "host", "host:", "host:99999", "1.2.3.4:x"]) {
    assert.throws(() => parseAddress(bad), /Invalid metrics address/, bad);
  }
});

Deno.test("serveMetrics takes the next free port when its port is taken", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  const server = serveMetrics(
    { text: () => Promise.resolve("up 1\n"), contentType: "text/plain" },
    `127.0.0.1:${port}`,
  );
  try {
    const got = Number(server.address.split(":")[1]);
    assert.ok(got > port, `${server.address} after ${port}`);
    const res = await fetch(`http://${server.address}/metrics`);
    assert.equal(await res.text(), "up 1\n");
    const missing = await fetch(`http://${server.address}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    taken.close();
    await server.close();
  }
});

Deno.test("parseMetrics reads labels with escapes, special values and timestamps", () => {
  const s = parseMetrics(
    '# HELP x y\n# TYPE x counter\nx{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 1.5 1700000000\n' +
      "y +Inf\nz NaN\nw{} -2\n",
  );
  assert.deepEqual(s[0], {
    name: "x",
    labels: { a: 'q"uote', b: "back\\slash", c: "new\nline" },
    value: 1.5,
  });
  assert.equal(s[1]!.value, Infinity);
  assert.ok(Number.isNaN(s[2]!.value));
  assert.equal(sum(s, "w"), -2);
  assert.throws(() => parseMetrics("x{a=1} 2"), /Bad metrics line/);
});
