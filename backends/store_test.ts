import assert from "node:assert/strict";
import { type BlockStore, NotFoundError } from "../core/block_store.ts";
import { FsError } from "../core/errno.ts";
import { storeConformance } from "./store_conformance.ts";
import { FaultyBlockStore } from "./store_faulty.ts";
import { FILE_STORE_TEMP_PREFIX, FileBlockStore } from "./store_file.ts";
import { MemoryBlockStore } from "./store_memory.ts";
import { PrefixBlockStore } from "./store_prefix.ts";
import {
  BackendError,
  kvSchemes,
  openBlockStore,
  openKvEngine,
  registerStoreScheme,
  storeSchemes,
} from "./registry.ts";

/** An object's key and size, without the time it was written. */
const keySize = (o: { key: string; size: number } | undefined) => o && { key: o.key, size: o.size };

storeConformance("MemoryBlockStore", () => Promise.resolve(new MemoryBlockStore()));

const fileDirs = new Map<BlockStore, string>();
storeConformance("FileBlockStore", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-store-" });
  const store = await openBlockStore(`file://${dir}/blocks`);
  fileDirs.set(store, dir);
  return store;
}, {
  dispose: async (store) => {
    const dir = fileDirs.get(store);
    fileDirs.delete(store);
    if (dir !== undefined) await Deno.remove(dir, { recursive: true });
  },
});

storeConformance("PrefixBlockStore over MemoryBlockStore", () => {
  const inner = new MemoryBlockStore();
  // Noise outside the prefix that must never show up.
  void inner.put("vol0", new Uint8Array(1));
  void inner.put("vol1.", new Uint8Array(1));
  void inner.put("vol0/a", new Uint8Array(1));
  return Promise.resolve(new PrefixBlockStore(inner, "vol1/"));
});

storeConformance(
  "FaultyBlockStore without faults",
  () => Promise.resolve(new FaultyBlockStore(new MemoryBlockStore())),
);

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-store-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("FileBlockStore lays keys out as files and skips temporary files in list", async () => {
  await withTempDir(async (dir) => {
    const store = await FileBlockStore.open(`${dir}/`);
    assert.equal(store.url, `file://${dir}`);
    await store.put("a/b/c", new Uint8Array([1, 2]));
    assert.deepEqual(await Deno.readFile(`${dir}/a/b/c`), new Uint8Array([1, 2]));
    // A leftover of a crashed put is invisible.
    await Deno.writeFile(`${dir}/a/b/${FILE_STORE_TEMP_PREFIX}123`, new Uint8Array(5));
    assert.deepEqual((await store.list("")).objects.map(keySize), [{ key: "a/b/c", size: 2 }]);
    // The directory removed behind the store's back is made again.
    await Deno.remove(`${dir}/a`, { recursive: true });
    await store.put("a/b/d", new Uint8Array([3]));
    assert.deepEqual(await store.get("a/b/d"), new Uint8Array([3]));
    for (const bad of ["", "/abs", "a//b", "a/../b", "./a", "a/", `x/${FILE_STORE_TEMP_PREFIX}1`]) {
      await assert.rejects(store.put(bad, new Uint8Array(1)), FsError, bad);
    }
    assert.deepEqual(await store.list("../"), { objects: [], truncated: false });
    await store.close();
  });
});

Deno.test("FileBlockStore durable puts land whole", async () => {
  await withTempDir(async (dir) => {
    const store = await openBlockStore(`file://${dir}?durable=1`);
    const data = new Uint8Array(300_000).map((_, i) => i & 0xff);
    await store.put("x/y", data);
    assert.deepEqual(await store.get("x/y"), data);
    assert.deepEqual([...Deno.readDirSync(`${dir}/x`)].map((e) => e.name), ["y"]);
  });
});

Deno.test("openBlockStore() shares mem:// stores by name", async () => {
  const a = await openBlockStore("mem://store-share");
  await a.put("k", new Uint8Array([9]));
  await a.close();
  const b = await openBlockStore("mem://store-share");
  assert.deepEqual(await b.get("k"), new Uint8Array([9]));
  assert.equal(b.url, "mem://store-share");
  const c = await openBlockStore("mem://");
  assert.equal(await c.head("k"), undefined);
});

Deno.test("openKvEngine() and openBlockStore() explain bad URLs", async () => {
  await assert.rejects(openKvEngine("tikv://localhost:2379/0"), (err) => {
    assert.ok(err instanceof BackendError);
    assert.equal(
      err.message,
      `Unknown metadata scheme "tikv": expected one of ${kvSchemes().join(", ")}`,
    );
    assert.equal(err.url, "tikv://localhost:2379/0");
    return true;
  });
  await assert.rejects(
    openBlockStore("gs://bucket"),
    new RegExp(
      `^BackendError: Unknown storage scheme "gs": expected one of ${storeSchemes().join(", ")}$`,
    ),
  );
  await assert.rejects(openKvEngine("meta.db"), BackendError);
  await assert.rejects(openKvEngine("sqlite3://meta.db"), /must name an absolute path/);
  await assert.rejects(openKvEngine("sqlite3:///tmp/x.db?cache=1"), /Unknown parameter "cache"/);
  await assert.rejects(openBlockStore("file://relative/dir"), /must name an absolute path/);
  assert.deepEqual(kvSchemes().slice(0, 2), ["sqlite3", "mem"]);
});

Deno.test("openBlockStore() loads the s3:// backend on first use", async () => {
  assert.ok(storeSchemes().includes("s3"));
  // The S3 module itself judges the URL: the error is no longer "unknown scheme".
  await assert.rejects(openBlockStore("s3://"), (err: Error) => {
    assert.doesNotMatch(err.message, /Unknown storage scheme/);
    return true;
  });
});

Deno.test("registerStoreScheme() adds a scheme and refuses a duplicate", async () => {
  const seen: string[] = [];
  registerStoreScheme("test-store", (url) => {
    seen.push(url.href);
    return Promise.resolve(new MemoryBlockStore("test"));
  });
  assert.ok(storeSchemes().includes("test-store"));
  const store = await openBlockStore("test-store://bucket/prefix");
  assert.deepEqual(seen, ["test-store://bucket/prefix"]);
  assert.equal(store.url, "mem://test");
  assert.throws(
    () => registerStoreScheme("test-store", () => Promise.resolve(new MemoryBlockStore())),
    /already registered/,
  );
  assert.throws(() =>
    registerStoreScheme("Bad Name", () => Promise.resolve(new MemoryBlockStore()))
  );
});

Deno.test("PrefixBlockStore maps keys, listings and NotFoundError", async () => {
  const inner = new MemoryBlockStore("x");
  const store = new PrefixBlockStore(inner, "p/");
  assert.equal(store.url, "mem://x/p/");
  await store.put("a", new Uint8Array([1]));
  assert.deepEqual((await inner.list("")).objects.map(keySize), [{ key: "p/a", size: 1 }]);
  assert.deepEqual(keySize(await store.head("a")), { key: "a", size: 1 });
  await assert.rejects(store.get("b"), (err) => err instanceof NotFoundError && err.key === "b");
});

Deno.test("FaultyBlockStore fails the next N matching calls, then recovers", async () => {
  const store = new FaultyBlockStore(new MemoryBlockStore());
  store.failNext(2, undefined, (call) => call.op === "put" && call.keys[0]!.startsWith("x"));
  await store.put("y", new Uint8Array(1)); // does not match
  await assert.rejects(
    store.put("x1", new Uint8Array(1)),
    (err) => err instanceof FsError && err.code === "EIO" && /x1/.test(err.message),
  );
  await assert.rejects(store.put("x2", new Uint8Array(1)), FsError);
  await store.put("x3", new Uint8Array(1));
  assert.equal(await store.head("x1"), undefined, "a failed put stored nothing");
  assert.deepEqual(store.counts, { put: 4, get: 0, head: 1, delete: 0, list: 0 });

  const custom = new Error("disk on fire");
  store.failNext(1, custom);
  await assert.rejects(store.list(""), (err) => err === custom);
  store.failNext(1, (call) => new Error(`no ${call.op}`));
  await assert.rejects(store.delete(["a", "b"]), /^Error: no delete$/);
  assert.equal((await store.list("")).objects.length, 2);
});

Deno.test("FaultyBlockStore failWhen() lasts until removed, and adds latency", async () => {
  const store = new FaultyBlockStore(new MemoryBlockStore(), { latencyMs: 20 });
  await store.put("a", new Uint8Array(3));
  const remove = store.failWhen((call) => call.op === "get");
  for (let i = 0; i < 3; i++) await assert.rejects(store.get("a"), FsError);
  assert.equal((await store.head("a"))?.size, 3);
  remove();
  const started = performance.now();
  assert.equal((await store.get("a")).length, 3);
  assert.ok(performance.now() - started >= 15);
  store.latencyMs = 0;
  store.failWhen(() => true);
  await assert.rejects(store.head("a"));
  store.clearFaults();
  assert.equal((await store.head("a"))?.size, 3);
});
