/**
 * A child process of the SQLite multi-process test: runs N increment transactions on a shared
 * counter, then exits.
 *
 * @module
 */

import { SqliteKvEngine } from "./kv_sqlite.ts";

const [path, count] = Deno.args;
if (path === undefined || count === undefined) {
  throw new Error("Usage: _sqlite_increment_child.ts META_DB_PATH COUNT");
}
const kv = await SqliteKvEngine.open(path);
for (let i = 0; i < Number(count); i++) {
  await kv.txn(async (tx) => {
    const v = await tx.get("counter");
    const n = v === undefined ? 0 : new DataView(v.buffer, v.byteOffset).getUint32(0);
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, n + 1);
    tx.set("counter", out);
    tx.set(`by/${Deno.pid}/${i}`, out);
  });
}
await kv.close();
