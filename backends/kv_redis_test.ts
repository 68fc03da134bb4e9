import assert from "node:assert/strict";
import { kvConformance } from "./kv_conformance.ts";
import { RedisKvEngine } from "./kv_redis.ts";
import type { KvTxn } from "../core/kv.ts";
import { startRedis } from "../tests/_redis.ts";

// One server for the file's tests (the conformance cases are separate tests), each volume under
// its own prefix; stopped when the test process ends.
const redis = await startRedis();
globalThis.addEventListener("unload", () => redis.stopSync());

let volumes = 0;
const urls = new WeakMap<RedisKvEngine, string>();

async function openNew(): Promise<RedisKvEngine> {
  const url = redis.url({ prefix: `conf${++volumes}` });
  const kv = await RedisKvEngine.open(url);
  urls.set(kv, url);
  return kv;
}

kvConformance("redis", openNew, {
  reopen: async (previous) => {
    const kv = await RedisKvEngine.open(urls.get(previous as RedisKvEngine)!);
    urls.set(kv, urls.get(previous as RedisKvEngine)!);
    return kv;
  },
});

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Sets keys to texts, given as pairs: `put(tx, "a", "1", "b", "2")`. */
function put(tx: KvTxn, ...pairs: string[]): Promise<void> {
  for (let i = 0; i < pairs.length; i += 2) tx.set(pairs[i]!, enc.encode(pairs[i + 1]!));
  return Promise.resolve();
}

Deno.test("redis: a key inserted into a scanned range makes the transaction run again", async () => {
  const url = redis.url({ prefix: `phantom${++volumes}` });
  const a = await RedisKvEngine.open(url);
  const b = await RedisKvEngine.open(url);
  try {
    await a.txn((tx) => put(tx, "d/1", "1"));
    let runs = 0;
    const listed = await a.txn(async (tx) => {
      runs++;
      const entries = await tx.scan("d/", { keysOnly: true });
      // Another client adds to the range between this scan and the commit, on the first run.
      if (runs === 1) await b.txn((other) => put(other, "d/2", "2"));
      tx.set("count", enc.encode(String(entries.length)));
      return entries.length;
    });
    assert.equal(runs, 2);
    assert.equal(listed, 2);
    assert.equal(dec.decode(await b.txn((tx) => tx.get("count"))), "2");
    // A change outside the range does not.
    runs = 0;
    await a.txn(async (tx) => {
      runs++;
      await tx.scan("d/");
      if (runs === 1) await b.txn((other) => put(other, "e/1", "x"));
      tx.set("seen", enc.encode("y"));
    });
    assert.equal(runs, 1);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("redis: a read-only transaction of several reads sees one state", async () => {
  const url = redis.url({ prefix: `snapshot${++volumes}` });
  const a = await RedisKvEngine.open(url);
  const b = await RedisKvEngine.open(url);
  try {
    await a.txn((tx) => put(tx, "x", "1", "y", "1"));
    let runs = 0;
    const pair = await a.txn(async (tx) => {
      runs++;
      const x = dec.decode(await tx.get("x"));
      if (runs === 1) {
        await b.txn((other) => put(other, "x", "2", "y", "2"));
      }
      const y = dec.decode(await tx.get("y"));
      return x + y;
    }, { readOnly: true });
    assert.equal(pair, "22");
    assert.equal(runs, 2);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("redis: round trips: one per read and one per commit", async () => {
  const kv = await openNew();
  try {
    const count = async (fn: () => Promise<unknown>) => {
      const before = kv.roundTrips;
      await fn();
      return kv.roundTrips - before;
    };
    assert.equal(await count(() => kv.txn((tx) => put(tx, "a", "1"))), 1);
    assert.equal(await count(() => kv.txn((tx) => tx.get("a"), { readOnly: true })), 1);
    assert.equal(await count(() => kv.txn((tx) => tx.scan(""), { readOnly: true })), 1);
    // Two reads and a write: two reads (the second checks the first), then the commit.
    assert.equal(
      await count(() =>
        kv.txn(async (tx) => {
          await tx.get("a");
          await tx.getMany(["b", "c"]);
          tx.set("b", enc.encode("2"));
        })
      ),
      3,
    );
    // Two reads only: the second checked the first, nothing is left to check.
    assert.equal(
      await count(() => kv.txn(async (tx) => [await tx.get("a"), await tx.get("b")])),
      2,
    );
    assert.equal(
      await count(() =>
        kv.txn(async (tx) => [await tx.get("a"), await tx.scan("", { keysOnly: true })])
      ),
      2,
    );
  } finally {
    await kv.close();
  }
});

Deno.test("redis: a read-only engine refuses writes", async () => {
  const url = redis.url({ prefix: `ro${++volumes}` });
  const kv = await RedisKvEngine.open(url, { readOnly: true });
  try {
    await assert.rejects(
      kv.txn((tx) => put(tx, "a", "1")),
      (err: Error) => err.name === "FsError" && /read-only/.test(err.message),
    );
  } finally {
    await kv.close();
  }
});

Deno.test("redis: volumes under different prefixes of one database are separate", async () => {
  const a = await RedisKvEngine.open(redis.url({ prefix: `sep${++volumes}` }));
  const b = await RedisKvEngine.open(redis.url({ prefix: `sep${++volumes}` }));
  try {
    await a.txn((tx) => put(tx, "k", "a"));
    await b.txn((tx) => put(tx, "k", "b"));
    assert.equal(dec.decode(await a.txn((tx) => tx.get("k"))), "a");
    assert.deepEqual((await b.txn((tx) => tx.scan(""))).map(([k, v]) => [k, dec.decode(v)]), [
      ["k", "b"],
    ]);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("redis: increments from two clients at once conflict, retry, and count exactly", async () => {
  const url = redis.url({ prefix: `clients${++volumes}` });
  const a = await RedisKvEngine.open(url);
  const b = await RedisKvEngine.open(url);
  try {
    let runs = 0;
    const increment = (kv: RedisKvEngine) =>
      kv.txn(async (tx) => {
        runs++;
        const n = Number(dec.decode(await tx.get("n") ?? new Uint8Array()));
        await put(tx, "n", String(n + 1));
      });
    await Promise.all(Array.from({ length: 100 }, (_, i) => increment(i % 2 === 0 ? a : b)));
    assert.equal(dec.decode(await a.txn((tx) => tx.get("n"))), "100");
    assert.ok(runs > 100, "the clients' transactions collided and ran again");
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("redis: a volume whose data Redis lost is not written to again", async () => {
  const kv = await RedisKvEngine.open(redis.url({ db: 3, prefix: "lost" }));
  try {
    await kv.txn((tx) => put(tx, "a", "1"));
    // As after a restart of a Redis without persistence.
    assert.equal(await redis.cli("-n", "3", "flushdb"), "OK");
    await assert.rejects(
      kv.txn((tx) => put(tx, "b", "2")),
      /no longer holds the volume \(its marker is gone/,
    );
    assert.equal(await redis.cli("-n", "3", "dbsize"), "0");
  } finally {
    await kv.close();
  }
});

Deno.test("redis: checked reads of many keys and long ranges come back whole and in order", async () => {
  const kv = await openNew();
  try {
    const keys = Array.from({ length: 1200 }, (_, i) => `k/${String(i).padStart(4, "0")}`);
    await kv.txn((tx) => put(tx, ...keys.flatMap((k) => [k, k.slice(2)])));
    const [many, range] = await kv.txn(async (tx) => {
      await tx.get("first read, so that the next ones are checked");
      const many = await tx.getMany([...keys].reverse().concat(["k/none"]));
      const range = await tx.scan("k/");
      return [many, range] as const;
    });
    assert.deepEqual(many.map((v) => v && dec.decode(v)), [
      ...keys.map((k) => k.slice(2)).reverse(),
      undefined,
    ]);
    assert.deepEqual(
      range.map(([k, v]) => k + "=" + dec.decode(v)),
      keys.map((k) => `${k}=${k.slice(2)}`),
    );
  } finally {
    await kv.close();
  }
});
