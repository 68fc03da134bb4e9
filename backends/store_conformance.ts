/**
 * The conformance suite for {@linkcode BlockStore} implementations: call
 * {@linkcode storeConformance} from a test file to register its cases with `Deno.test`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type BlockStore, NotFoundError } from "../core/block_store.ts";

/** Hooks of {@linkcode storeConformance}. */
export interface StoreConformanceOptions {
  /** Removes what `open` created for `store` (after it is closed). */
  dispose?: (store: BlockStore) => Promise<void>;
}

function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function listAll(store: BlockStore, prefix: string, limit: number): Promise<string[]> {
  const keys: string[] = [];
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list(
      prefix,
      startAfter === undefined ? { limit } : { limit, startAfter },
    );
    assert.ok(page.objects.length <= limit);
    for (const o of page.objects) keys.push(o.key);
    if (!page.truncated) return keys;
    assert.ok(page.objects.length > 0, "a truncated page has objects");
    startAfter = page.objects.at(-1)!.key;
  }
}

/**
 * Registers the conformance cases for a store. `open` returns a new, empty store each call.
 *
 * @example
 * ```ts ignore
 * import { storeConformance } from "./store_conformance.ts";
 * import { MemoryBlockStore } from "./store_memory.ts";
 * storeConformance("memory", () => Promise.resolve(new MemoryBlockStore()));
 * ```
 */
export function storeConformance(
  name: string,
  open: () => Promise<BlockStore>,
  options: StoreConformanceOptions = {},
): void {
  const test = (title: string, fn: (store: BlockStore) => Promise<void>) =>
    Deno.test(`${name}: ${title}`, async () => {
      const store = await open();
      try {
        await fn(store);
      } finally {
        await store.close();
        await store.close();
        await options.dispose?.(store);
      }
    });

  test("put, get, head and overwrite", async (store) => {
    assert.ok(store.limits.concurrency >= 1);
    assert.equal(typeof store.url, "string");
    const data = pattern(1000, 1);
    await store.put("chunks/1/1_0_1000", data);
    assert.deepEqual(await store.get("chunks/1/1_0_1000"), data);
    const head = await store.head("chunks/1/1_0_1000");
    assert.deepEqual({ key: head?.key, size: head?.size }, {
      key: "chunks/1/1_0_1000",
      size: 1000,
    });
    const other = pattern(10, 2);
    await store.put("chunks/1/1_0_1000", other);
    assert.deepEqual(await store.get("chunks/1/1_0_1000"), other);
    assert.equal((await store.head("chunks/1/1_0_1000"))?.size, 10);
  });

  test("the store keeps no reference to put data or returned bytes", async (store) => {
    const data = pattern(100, 3);
    const copy = data.slice();
    const put = store.put("k", data);
    await put;
    data.fill(0);
    const got = await store.get("k");
    assert.deepEqual(got, copy);
    got.fill(1);
    assert.deepEqual(await store.get("k"), copy);
  });

  test("ranged get, including ranges past the end", async (store) => {
    const data = pattern(5000, 4);
    await store.put("r", data);
    assert.deepEqual(await store.get("r", 0, 10), data.subarray(0, 10));
    assert.deepEqual(await store.get("r", 1234, 1000), data.subarray(1234, 2234));
    assert.deepEqual(await store.get("r", 4990, 100), data.subarray(4990));
    assert.deepEqual(await store.get("r", 4000), data.subarray(4000));
    assert.equal((await store.get("r", 5000, 10)).length, 0);
    assert.equal((await store.get("r", 9000, 10)).length, 0);
    assert.equal((await store.get("r", 10, 0)).length, 0);
  });

  test("empty and 5 MiB objects", async (store) => {
    await store.put("empty", new Uint8Array(0));
    assert.equal((await store.get("empty")).length, 0);
    assert.equal((await store.get("empty", 0, 10)).length, 0);
    const head = await store.head("empty");
    assert.deepEqual({ key: head?.key, size: head?.size }, { key: "empty", size: 0 });
    const big = pattern(5 << 20, 5);
    await store.put("big/object", big);
    assert.deepEqual(await store.get("big/object"), big);
    assert.deepEqual(
      await store.get("big/object", (4 << 20) + 7, 1 << 20),
      big.subarray((4 << 20) + 7),
    );
    assert.equal((await store.head("big/object"))?.size, 5 << 20);
  });

  test("head and list give when each object was written (mtime)", async (store) => {
    // S3 keeps LastModified to the second: allow a second each side.
    const before = Date.now() - 1000;
    await store.put("m/a", pattern(10, 1));
    await store.put("m/b", pattern(20, 2));
    const after = Date.now() + 1000;
    const listed = (await store.list("m/")).objects;
    assert.deepEqual(listed.map((o) => o.key), ["m/a", "m/b"]);
    for (const info of [...listed, await store.head("m/a"), await store.head("m/b")]) {
      const t = info?.mtime;
      assert.ok(t !== undefined && t >= before && t <= after, `${info?.key}: mtime ${t}`);
    }
  });

  test("a missing key: get throws NotFoundError, head is undefined", async (store) => {
    await assert.rejects(store.get("no/such/key"), (err) => {
      assert.ok(err instanceof NotFoundError);
      assert.equal(err.key, "no/such/key");
      return true;
    });
    await assert.rejects(store.get("no/such/key", 10, 10), NotFoundError);
    assert.equal(await store.head("no/such/key"), undefined);
  });

  test("delete is idempotent and takes many keys", async (store) => {
    await store.put("d/1", pattern(1, 1));
    await store.put("d/2", pattern(2, 2));
    await store.put("d/3", pattern(3, 3));
    await store.delete(["d/1", "d/2", "d/missing"]);
    await store.delete(["d/1"]);
    await store.delete([]);
    assert.equal(await store.head("d/1"), undefined);
    await assert.rejects(store.get("d/2"), NotFoundError);
    assert.deepEqual(await listAll(store, "d/", 10), ["d/3"]);
    await store.put("d/1", pattern(4, 4));
    assert.equal((await store.head("d/1"))?.size, 4);
  });

  test("list orders and pages 2,500 keys", async (store) => {
    const keys: string[] = [];
    for (let i = 0; i < 2500; i++) {
      // Nested names of varying depth and width, written in a scrambled order.
      const n = (i * 7919) % 2500;
      keys.push(`l/${n % 7}/${n}${n % 3 === 0 ? "/x" : ""}`);
    }
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(keys.slice(i, i + 100).map((k, j) => store.put(k, pattern(j % 17, j))));
    }
    await store.put("l-sibling", pattern(1, 1));
    await store.put("k/before", pattern(1, 1));
    const sorted = [...keys].sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
    assert.deepEqual(await listAll(store, "l/", 1000), sorted);
    assert.deepEqual(await listAll(store, "l/", 333), sorted);
    assert.deepEqual(await listAll(store, "l/3", 100), sorted.filter((k) => k.startsWith("l/3")));
    assert.deepEqual(await listAll(store, "l/3/1", 7), sorted.filter((k) => k.startsWith("l/3/1")));
    const all = await listAll(store, "", 1000);
    assert.deepEqual(all, ["k/before", ...sorted, "l-sibling"].sort((a, b) => a < b ? -1 : 1));
    const first = await store.list("l/", { limit: 3 });
    assert.equal(first.truncated, true);
    assert.deepEqual(first.objects.map((o) => o.key), sorted.slice(0, 3));
    for (const o of first.objects) assert.equal(o.size, (await store.head(o.key))!.size);
    const tail = await store.list("l/", { startAfter: sorted.at(-3)! });
    assert.deepEqual(tail, {
      objects: await Promise.all(sorted.slice(-2).map(async (key) => (await store.head(key))!)),
      truncated: false,
    });
    const exact = await store.list("l/", { limit: 2500 });
    assert.equal(exact.objects.length, 2500);
    assert.equal(exact.truncated, false);
    assert.deepEqual(await store.list("nothing/"), { objects: [], truncated: false });
    assert.deepEqual(await store.list("l/", { startAfter: "m" }), {
      objects: [],
      truncated: false,
    });
  });

  test("concurrent puts of many keys and of one key", async (store) => {
    const data = Array.from({ length: 64 }, (_, i) => pattern(10_000 + i, i));
    await Promise.all(data.map((d, i) => store.put(`c/${i}`, d)));
    const back = await Promise.all(data.map((_, i) => store.get(`c/${i}`)));
    back.forEach((b, i) => assert.deepEqual(b, data[i]));
    // Racing writers of one key: the result is one of them, whole.
    await Promise.all(data.slice(0, 16).map((d) => store.put("same", d)));
    const got = await store.get("same");
    assert.ok(
      data.slice(0, 16).some((d) => d.length === got.length && d.every((x, i) => x === got[i])),
    );
  });
}
