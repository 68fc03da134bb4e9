/**
 * Micro benchmarks of the metadata engines: `deno bench -A backends/kv_bench.ts`.
 *
 * @module
 */

import type { KvEngine } from "../core/kv.ts";
import { MemoryKvEngine } from "./kv_memory.ts";
import { SqliteKvEngine } from "./kv_sqlite.ts";

const dir = await Deno.makeTempDir({ prefix: "slayerfs-kv-bench-" });
const engines: [string, KvEngine][] = [
  ["memory", new MemoryKvEngine()],
  ["sqlite", await SqliteKvEngine.open(`${dir}/normal.db`)],
  ["sqlite durable", await SqliteKvEngine.open(`${dir}/durable.db`, { durable: true })],
];
const value = new Uint8Array(100).fill(7);
const PRELOAD = 10_000;
for (const [, kv] of engines) {
  await kv.txn((tx) => {
    for (let i = 0; i < PRELOAD; i++) tx.set(`i/${i}`, value);
    return Promise.resolve();
  });
}

for (const [name, kv] of engines) {
  let n = 0;
  Deno.bench(
    `${name}: 3-key write txn`,
    { group: "write", baseline: name === "memory" },
    async () => {
      const i = n++;
      await kv.txn((tx) => {
        tx.set(`w/${i}`, value);
        tx.set(`d/1/${i}`, value);
        tx.set("c/next", value);
        return Promise.resolve();
      });
    },
  );
  let m = 0;
  Deno.bench(
    `${name}: read-only txn with one get`,
    { group: "read", baseline: name === "memory" },
    async () => {
      await kv.txn((tx) => tx.get(`i/${m++ % PRELOAD}`), { readOnly: true });
    },
  );
  let s = 0;
  Deno.bench(
    `${name}: scan of 100 pairs`,
    { group: "scan", baseline: name === "memory" },
    async () => {
      await kv.txn((tx) => tx.scan("i/", { startAfter: `i/${s++ % PRELOAD}`, limit: 100 }), {
        readOnly: true,
      });
    },
  );
}

globalThis.addEventListener("unload", () => {
  for (const [, kv] of engines) void kv.close();
  Deno.removeSync(dir, { recursive: true });
});
