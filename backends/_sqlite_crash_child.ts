/**
 * The child process of the SQLite crash test: commits numbered transactions in a loop and
 * prints each number once its commit returned, until it is killed.
 *
 * @module
 */

import { SqliteKvEngine } from "./kv_sqlite.ts";

const path = Deno.args[0];
if (path === undefined) throw new Error("Usage: _sqlite_crash_child.ts META_DB_PATH");
const kv = await SqliteKvEngine.open(path);
const enc = new TextEncoder();
for (let i = 0;; i++) {
  await kv.txn((tx) => {
    const value = new Uint8Array(1000 + i % 5000).fill(i & 0xff);
    tx.set(`txn/${i}/a`, value);
    tx.set(`txn/${i}/b`, value);
    tx.set(`txn/${i}/c`, value);
    tx.set("counter", enc.encode(String(i)));
    return Promise.resolve();
  });
  await Deno.stdout.write(enc.encode(`${i}\n`));
}
