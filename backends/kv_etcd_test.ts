/**
 * The etcd engine against a private etcd started by the test: the conformance suite, and what is
 * particular to etcd (scans in the read set, URL errors, foreign data under the prefix).
 *
 * @module
 */

import assert from "node:assert/strict";
import { kvConformance } from "./kv_conformance.ts";
import { EtcdKvEngine } from "./kv_etcd.ts";
import { startEtcd } from "../tests/_etcd.ts";
import type { KvTxn } from "../core/kv.ts";
import { Errno, FsError } from "../core/errno.ts";

const etcd = await startEtcd();
let n = 0;
const newUrl = () => etcd.url(`conformance${++n}`);

// The last test stops the server. When it does not run (a filter, a failure), etcd dies with
// this process (see tests/_etcd.ts) and its data goes here.
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(etcd.directory, { recursive: true });
  } catch { /* already removed */ }
});

kvConformance("etcd", () => EtcdKvEngine.open(newUrl()), {
  reopen: (kv) => EtcdKvEngine.open((kv as EtcdKvEngine).url),
});

const enc = new TextEncoder();

/** Runs `fn` in a transaction of `kv`, counting its attempts; `meddle` runs during the first. */
async function attempts(
  kv: EtcdKvEngine,
  fn: (tx: KvTxn) => Promise<void>,
  meddle: () => Promise<void>,
): Promise<number> {
  let runs = 0;
  await kv.txn(async (tx) => {
    runs++;
    await fn(tx);
    if (runs === 1) await meddle();
    tx.set("out", enc.encode(String(runs)));
  });
  return runs;
}

Deno.test("etcd: a scan is in the read set: inserts and deletes in its range conflict", async () => {
  const url = newUrl();
  const kv = await EtcdKvEngine.open(url);
  const other = await EtcdKvEngine.open(url);
  try {
    await kv.txn((tx) => {
      for (const k of ["d/b", "d/d", "d/f"]) tx.set(k, enc.encode(k));
      return Promise.resolve();
    });
    const write = (fn: (tx: KvTxn) => void) =>
      other.txn((tx) => {
        fn(tx);
        return Promise.resolve();
      });
    const scanAll = async (tx: KvTxn) => void await tx.scan("d/");
    const scanTwo = async (tx: KvTxn) => void await tx.scan("d/", { limit: 2 });
    // An insert into the scanned range makes the commit fail and run again.
    assert.equal(
      await attempts(kv, scanAll, () => write((tx) => tx.set("d/c", enc.encode("c")))),
      2,
    );
    // So does a delete of a scanned key, and a change of its value.
    assert.equal(await attempts(kv, scanAll, () => write((tx) => tx.delete("d/c"))), 2);
    assert.equal(
      await attempts(kv, scanAll, () => write((tx) => tx.set("d/b", enc.encode("x")))),
      2,
    );
    // A limited scan covers only up to its last key: an insert after it does not conflict...
    assert.equal(
      await attempts(kv, scanTwo, () => write((tx) => tx.set("d/z", enc.encode("z")))),
      1,
    );
    // ... an insert before it does.
    assert.equal(
      await attempts(kv, scanTwo, () => write((tx) => tx.set("d/a", enc.encode("a")))),
      2,
    );
    // Outside the prefix, nothing conflicts.
    assert.equal(
      await attempts(kv, scanAll, () => write((tx) => tx.set("e/1", enc.encode("e")))),
      1,
    );
    // A key read as absent conflicts when it appears.
    const readMissing = async (tx: KvTxn) => void await tx.get("gone");
    assert.equal(
      await attempts(kv, readMissing, () => write((tx) => tx.set("gone", enc.encode("g")))),
      2,
    );
    // A getMany is in the read set too.
    const readMany = async (tx: KvTxn) => void await tx.getMany(["d/b", "d/d", "nope"]);
    assert.equal(
      await attempts(kv, readMany, () => write((tx) => tx.set("d/d", enc.encode("y")))),
      2,
    );
    // A read-only transaction commits nothing, in no round trip after its reads.
    const before = kv.roundTrips;
    await kv.txn((tx) => tx.getMany(["d/b", "d/d"]), { readOnly: true });
    assert.equal(kv.roundTrips - before, 1);
  } finally {
    await kv.close();
    await other.close();
  }
});

Deno.test("etcd: during an outage transactions wait, fail with EIO after the bound, then recover", async () => {
  await using server = await startEtcd();
  const kv = await EtcdKvEngine.open(server.url("outage"), { outageMs: 3000 });
  try {
    await kv.txn((tx) => Promise.resolve(tx.set("a", enc.encode("1"))));
    await server.kill();
    await assert.rejects(
      kv.txn((tx) => tx.get("a")),
      (err) => err instanceof FsError && err.errno === Errno.EIO && /unreachable/.test(err.message),
    );
    // A transaction that starts during the outage finishes once etcd is back.
    const pending = kv.txn(async (tx) => {
      const a = await tx.get("a");
      tx.set("b", a ?? enc.encode("missing"));
    });
    await new Promise((r) => setTimeout(r, 1000));
    await server.start();
    await pending;
    const b = await kv.txn((tx) => tx.get("b"));
    assert.equal(new TextDecoder().decode(b), "1");
  } finally {
    await kv.close();
  }
});

Deno.test("etcd: values cached by one engine never leak stale into results", async () => {
  const url = newUrl();
  const a = await EtcdKvEngine.open(url);
  const b = await EtcdKvEngine.open(url);
  const dec = new TextDecoder();
  const put = (kv: EtcdKvEngine, key: string, value: string | null) =>
    kv.txn((tx) => {
      if (value === null) tx.delete(key);
      else tx.set(key, enc.encode(value));
      return Promise.resolve();
    });
  try {
    await put(a, "k", "1");
    await put(a, "entry", "x");
    // a remembers k = 1 and entry = x; b changes both.
    await put(b, "k", "2");
    await put(b, "entry", null);
    // A read-only transaction never answers from the cache.
    assert.equal(dec.decode(await a.txn((tx) => tx.get("k"), { readOnly: true })), "2");
    // A writing transaction that read a stale value conflicts and runs again on fresh values.
    let runs = 0;
    await a.txn(async (tx) => {
      runs++;
      const n = Number(dec.decode(await tx.get("k")));
      tx.set("k", enc.encode(String(n + 10)));
    });
    assert.equal(dec.decode(await b.txn((tx) => tx.get("k"))), "12");
    // An error raised on a stale cached value is not reported: the transaction runs again.
    await put(a, "entry", "y");
    await put(b, "entry", null);
    runs = 0;
    const made = await a.txn(async (tx) => {
      runs++;
      if (await tx.get("entry")) throw new FsError(Errno.EEXIST, "entry exists");
      tx.set("entry", enc.encode("z"));
      return "made";
    });
    assert.equal(made, "made");
    assert.equal(runs, 2);
    // A transaction that writes nothing validates what it read from the cache.
    await put(b, "k", "3");
    const seen = await a.txn(async (tx) => dec.decode(await tx.get("k")));
    assert.equal(seen, "3");
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("etcd: with several hosts, one that is down is routed around", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dead = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nothing listens there: connections are refused
  const kv = await EtcdKvEngine.open(`etcd://127.0.0.1:${dead},${etcd.address}/hosts${++n}`);
  try {
    for (let i = 0; i < 30; i++) {
      await kv.txn(async (tx) => {
        const v = await tx.get("c");
        tx.set("c", new Uint8Array([(v?.[0] ?? 0) + 1]));
      });
    }
    assert.equal((await kv.txn((tx) => tx.get("c"), { readOnly: true }))?.[0], 30);
  } finally {
    await kv.close();
  }
});

Deno.test("etcd: on a default etcd (128 ops per txn) getMany works and a larger commit is a clear EIO", async () => {
  await using small = await startEtcd({ maxTxnOps: 128 });
  const kv = await EtcdKvEngine.open(small.url("small"));
  try {
    const keys = Array.from({ length: 300 }, (_, i) => `k/${String(i).padStart(3, "0")}`);
    for (let i = 0; i < keys.length; i += 100) {
      await kv.txn((tx) => {
        for (const k of keys.slice(i, i + 100)) tx.set(k, enc.encode(k));
        return Promise.resolve();
      });
    }
    const values = await kv.txn((tx) => tx.getMany(keys), { readOnly: true });
    assert.deepEqual(values.map((v) => new TextDecoder().decode(v)), keys);
    await assert.rejects(
      kv.txn((tx) => {
        for (const k of keys) tx.set(k, enc.encode("x"));
        return Promise.resolve();
      }),
      (err) =>
        err instanceof FsError && err.errno === Errno.EIO && /--max-txn-ops/.test(err.message),
    );
  } finally {
    await kv.close();
  }
});

Deno.test("etcds: TLS with a private CA and a client certificate", async () => {
  await using secure = await startEtcd({ tls: true });
  const kv = await EtcdKvEngine.open(secure.url("tls"));
  try {
    await kv.txn((tx) => Promise.resolve(tx.set("a", enc.encode("over tls"))));
    const scanned = await kv.txn((tx) => tx.scan(""), { readOnly: true });
    assert.deepEqual(scanned.map(([k, v]) => [k, new TextDecoder().decode(v)]), [[
      "a",
      "over tls",
    ]]);
  } finally {
    await kv.close();
  }
  // Without its client certificate the server refuses the connection: one clear error, soon.
  await assert.rejects(
    EtcdKvEngine.open(secure.url("tls", undefined, { clientCert: false })),
    /Cannot reach etcd at localhost:\d+/,
  );
  // A URL with an IP address cannot be checked against the certificate here: said at once.
  await assert.rejects(
    EtcdKvEngine.open(`etcds://127.0.0.1:${secure.port}/tls?ca=${secure.tls!.ca}`),
    /etcds:\/\/ needs host names, not IP addresses/,
  );
});

Deno.test("etcd: stop the private server", async () => {
  await etcd.stop();
  assert.ok(true);
});
