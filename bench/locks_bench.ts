/**
 * The cost of a lock request: `LocalLocks` (in memory, one mount) against `KvLocks` (in the
 * metadata engine, shared by every mount) over the memory engine and a SQLite file. Prints µs per
 * operation for: a close's release of nothing (what every `close` sends), taking and dropping a
 * POSIX lock, a flock and its unlock, and an `F_GETLK`.
 *
 * Usage: `deno run -A bench/locks_bench.ts [N]` (default 2,000 operations each).
 *
 * @module
 */

import { MemoryKvEngine, SqliteKvEngine } from "../backends/mod.ts";
import { LocalLocks, type LockManager } from "../core/locks.ts";
import { KvLocks } from "../core/meta/kv_locks.ts";
import { F_UNLCK, F_WRLCK, type Ino, LOCK_EX, LOCK_UN } from "../core/types.ts";

const N = Number(Deno.args[0] ?? 2000);
const ino = 7 as Ino;
const lock = { type: F_WRLCK, start: 0, end: 99, pid: 1 };
const unlock = { ...lock, type: F_UNLCK };

async function time(fn: (i: number) => Promise<unknown>): Promise<string> {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await fn(i);
  return ((performance.now() - t0) * 1000 / N).toFixed(1);
}

async function row(name: string, m: LockManager): Promise<string[]> {
  return [
    name,
    await time(() => m.releasePosix(ino, 1n)),
    await time(async () => {
      await m.setlk(ino, 1n, lock, false);
      await m.setlk(ino, 1n, unlock, false);
    }),
    await time(async () => {
      await m.flock(ino, 1n, LOCK_EX);
      await m.flock(ino, 1n, LOCK_UN);
    }),
    await time(() => m.getlk(ino, 2n, lock)),
  ];
}

const dir = await Deno.makeTempDir({ prefix: "slayerfs-locks-bench-" });
try {
  const mem = new MemoryKvEngine();
  const sqlite = await SqliteKvEngine.open(`${dir}/meta.db`);
  const rows = [
    await row("LocalLocks", new LocalLocks()),
    await row("KvLocks, mem", new KvLocks(mem, { sessionId: 1 })),
    await row("KvLocks, sqlite3", new KvLocks(sqlite, { sessionId: 1 })),
  ];
  await mem.close();
  await sqlite.close();
  console.log(`µs per operation (${N} each)`);
  console.log("| manager | release of nothing | setlk + unlock | flock + unlock | getlk |");
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
