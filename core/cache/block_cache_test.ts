import { deepEqual, equal } from "node:assert/strict";
import { BlockCache } from "./block_cache.ts";

Deno.test("BlockCache evicts the least recently used blocks to stay under its capacity", () => {
  const cache = new BlockCache(10);
  cache.put("a", new Uint8Array(4));
  cache.put("b", new Uint8Array(4));
  equal(cache.bytes, 8);
  cache.getSync("a");
  cache.put("c", new Uint8Array(4));
  equal(cache.has("a"), true);
  equal(cache.has("b"), false);
  equal(cache.has("c"), true);
  equal(cache.bytes, 8);
  cache.put("d", new Uint8Array(11)); // larger than the cache: not cached
  equal(cache.has("d"), false);
  equal(cache.bytes, 8);
});

Deno.test("BlockCache counts hits and misses and never hits on get()", async () => {
  const cache = new BlockCache(100);
  const a = new Uint8Array([1, 2, 3]);
  cache.put("a", a);
  equal(cache.getSync("a"), a);
  equal(cache.getSync("b"), undefined);
  equal(await cache.get("a"), undefined);
  deepEqual([cache.hits, cache.misses], [1, 1]);
});

Deno.test("BlockCache replaces a block put twice and drops deleted ones", () => {
  const cache = new BlockCache(100);
  cache.put("a", new Uint8Array(10));
  cache.put("a", new Uint8Array(20));
  equal(cache.bytes, 20);
  cache.delete("a");
  cache.delete("missing");
  equal(cache.has("a"), false);
  equal(cache.bytes, 0);
});

Deno.test("BlockCache of capacity 0 caches nothing", () => {
  const cache = new BlockCache(0);
  cache.put("a", new Uint8Array(1));
  equal(cache.has("a"), false);
  equal(cache.getSync("a"), undefined);
  equal(cache.bytes, 0);
  equal(cache.misses, 1);
});
