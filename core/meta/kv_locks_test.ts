/**
 * Tests of `KvLocks`: two lock managers (two session ids, as two mounts) over one engine — the
 * memory engine and two connections to one SQLite file.
 *
 * @module
 */

import assert from "node:assert/strict";
import { MemoryKvEngine, SqliteKvEngine } from "../../backends/mod.ts";
import type { KvEngine } from "../kv.ts";
import {
  F_RDLCK,
  F_UNLCK,
  F_WRLCK,
  type Ino,
  LOCK_EX,
  LOCK_NB,
  LOCK_SH,
  LOCK_UN,
} from "../types.ts";
import { decodePlock, KvLocks, listLocks, releaseSessionLocks, setRange } from "./kv_locks.ts";
import { plockKey } from "./keys.ts";

const INO = 42 as Ino;

/** Every key under `L`, lock records and inode guards alike. */
const lockKeys = (kv: KvEngine) =>
  kv.txn((tx) => tx.scan("L", { keysOnly: true }), { readOnly: true });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A request that has not settled yet is still pending after a while. */
async function pending(p: Promise<unknown>, ms = 150): Promise<boolean> {
  let settled = false;
  p.then(() => settled = true, () => settled = true);
  await sleep(ms);
  return !settled;
}

/** Two engines over one volume (the same one twice for memory) and two managers on them. */
interface Pair extends AsyncDisposable {
  kvA: KvEngine;
  kvB: KvEngine;
  a: KvLocks;
  b: KvLocks;
}

const engines: Array<{ name: string; open(): Promise<Pair> }> = [
  {
    name: "mem",
    open() {
      const kv = new MemoryKvEngine();
      return Promise.resolve({
        kvA: kv,
        kvB: kv,
        a: new KvLocks(kv, { sessionId: 1 }),
        b: new KvLocks(kv, { sessionId: 2 }),
        [Symbol.asyncDispose]: () => kv.close(),
      });
    },
  },
  {
    name: "sqlite3",
    async open() {
      const dir = await Deno.makeTempDir({ prefix: "slayerfs-locks-" });
      const kvA = await SqliteKvEngine.open(`${dir}/meta.db`);
      const kvB = await SqliteKvEngine.open(`${dir}/meta.db`);
      return {
        kvA,
        kvB,
        a: new KvLocks(kvA, { sessionId: 1 }),
        b: new KvLocks(kvB, { sessionId: 2 }),
        async [Symbol.asyncDispose]() {
          await kvA.close();
          await kvB.close();
          await Deno.remove(dir, { recursive: true });
        },
      };
    },
  },
];

/** A POSIX lock of `type` over [start, end]. */
const lk = (type: number, start: number, end: number, pid = 7) => ({ type, start, end, pid });

for (const e of engines) {
  Deno.test(`KvLocks (${e.name}): flock conflicts between mounts, same owner numbers`, async () => {
    await using p = await e.open();
    const { a, b } = p;
    await a.flock(INO, 1n, LOCK_SH, { pid: 10 });
    await b.flock(INO, 1n, LOCK_SH | LOCK_NB); // the same owner number on another mount
    await assert.rejects(b.flock(INO, 2n, LOCK_EX | LOCK_NB), { code: "EAGAIN" });
    // An upgrade that must wait drops the shared lock meanwhile (as Linux does).
    const upgrade = a.flock(INO, 1n, LOCK_EX);
    assert.equal(await pending(upgrade), true, "A's upgrade waits for B's shared lock");
    await b.flock(INO, 1n, LOCK_UN);
    await upgrade;
    await assert.rejects(b.flock(INO, 1n, LOCK_SH | LOCK_NB), { code: "EAGAIN" });
    await a.flock(INO, 1n, LOCK_SH); // downgrade
    await b.flock(INO, 1n, LOCK_SH | LOCK_NB);
    await a.releaseFlock(INO, 1n);
    await b.releaseFlock(INO, 1n);
    assert.deepEqual(await lockKeys(p.kvA), [], "no record and no guard left");
  });

  Deno.test(`KvLocks (${e.name}): POSIX ranges split, merge, upgrade, downgrade`, async () => {
    await using p = await e.open();
    const { a, b } = p;
    await a.setlk(INO, 1n, lk(F_WRLCK, 0, 99), false);
    await a.setlk(INO, 1n, lk(F_UNLCK, 40, 59), false); // split
    assert.equal((await b.getlk(INO, 1n, lk(F_RDLCK, 45, 50))).type, F_UNLCK);
    assert.deepEqual(await b.getlk(INO, 1n, lk(F_RDLCK, 30, 50)), lk(F_WRLCK, 0, 39, 0));
    assert.deepEqual(await b.getlk(INO, 1n, lk(F_RDLCK, 50, 70)), lk(F_WRLCK, 60, 99, 0));
    await b.setlk(INO, 1n, lk(F_WRLCK, 40, 59), false); // B takes the hole
    await assert.rejects(a.setlk(INO, 1n, lk(F_WRLCK, 40, 40), false), { code: "EAGAIN" });
    await b.releasePosix(INO, 1n);
    await a.setlk(INO, 1n, lk(F_WRLCK, 40, 59), false); // merge back into one range
    const ranges = async () =>
      decodePlock(
        (await p.kvA.txn((tx) => tx.get(plockKey(INO, 1, 1n)), { readOnly: true }))!,
      ).ranges;
    assert.deepEqual(await ranges(), [{ type: F_WRLCK, start: 0, end: 99 }]);
    await a.setlk(INO, 1n, lk(F_RDLCK, 0, 49), false); // downgrade half
    await b.setlk(INO, 2n, lk(F_RDLCK, 10, 20), false);
    await assert.rejects(b.setlk(INO, 2n, lk(F_RDLCK, 50, 50), false), { code: "EAGAIN" });
    await assert.rejects(a.setlk(INO, 1n, lk(F_WRLCK, 0, 99), false), { code: "EAGAIN" });
    await b.setlk(INO, 2n, lk(F_UNLCK, 0, Infinity), false);
    await a.setlk(INO, 1n, lk(F_WRLCK, 0, Infinity), false); // upgrade to the end of the file
    assert.deepEqual(await ranges(), [{ type: F_WRLCK, start: 0, end: Infinity }]);
    assert.deepEqual(await b.getlk(INO, 9n, lk(F_RDLCK, 1e12, 1e12)), lk(F_WRLCK, 0, Infinity, 0));
    await a.setlk(INO, 1n, lk(F_UNLCK, 0, Infinity), false);
    assert.deepEqual(await lockKeys(p.kvB), []);
    assert.equal(a.heldCount, 0);
  });

  Deno.test(`KvLocks (${e.name}): F_GETLK reports the pid of this mount's holders only`, async () => {
    await using p = await e.open();
    const { a, b } = p;
    await a.setlk(INO, 1n, lk(F_RDLCK, 0, 9, 1234), false);
    assert.deepEqual(await a.getlk(INO, 2n, lk(F_WRLCK, 5, 5)), lk(F_RDLCK, 0, 9, 1234));
    assert.deepEqual(await b.getlk(INO, 1n, lk(F_WRLCK, 5, 5)), lk(F_RDLCK, 0, 9, 0));
    assert.equal((await b.getlk(INO, 1n, lk(F_RDLCK, 5, 5))).type, F_UNLCK, "readers share");
    assert.equal((await a.getlk(INO, 1n, lk(F_WRLCK, 5, 5))).type, F_UNLCK, "not against itself");
  });

  Deno.test(`KvLocks (${e.name}): blocked waits wake on local and remote releases`, async () => {
    await using p = await e.open();
    const { a, b } = p;
    await a.setlk(INO, 1n, lk(F_WRLCK, 0, 9), false);
    const local = a.setlk(INO, 2n, lk(F_WRLCK, 5, 5), true);
    const remote = b.setlk(INO, 1n, lk(F_RDLCK, 0, 0), true);
    assert.equal(await pending(local), true);
    assert.equal(await pending(remote, 0), true);
    await a.setlk(INO, 1n, lk(F_UNLCK, 0, 4), false);
    await remote; // B's range is free now; A's owner 2 still waits for byte 5
    assert.equal(await pending(local), true);
    await a.releasePosix(INO, 1n);
    await local;
    // flock: B waits for A's exclusive lock; A closes.
    await a.flock(INO, 3n, LOCK_EX);
    const f = b.flock(INO, 3n, LOCK_EX);
    assert.equal(await pending(f), true);
    await a.releaseFlock(INO, 3n);
    await f;
    // A waiting request ends with EINTR when its caller is interrupted.
    let interrupted = false;
    const w = a.flock(INO, 4n, LOCK_SH, { interrupted: () => interrupted });
    assert.equal(await pending(w), true);
    interrupted = true;
    await assert.rejects(w, { code: "EINTR" });
  });

  Deno.test(`KvLocks (${e.name}): one exclusive holder at a time under contention`, async () => {
    await using p = await e.open();
    let inside = 0;
    let entries = 0;
    const worker = async (m: KvLocks, owner: bigint, posix: boolean) => {
      for (let i = 0; i < 4; i++) {
        if (posix) await m.setlk(INO, owner, lk(F_WRLCK, 0, Infinity), true);
        else await m.flock(INO, owner, LOCK_EX);
        assert.equal(inside++, 0, "two holders at once");
        entries++;
        await sleep(Math.random() * 3);
        inside--;
        if (posix) await m.releasePosix(INO, owner);
        else await m.flock(INO, owner, LOCK_UN);
      }
    };
    // flock and POSIX locks are independent: one kind at a time.
    for (const posix of [false, true]) {
      const all = [];
      for (let o = 1n; o <= 3n; o++) all.push(worker(p.a, o, posix), worker(p.b, o, posix));
      await Promise.all(all);
    }
    assert.equal(entries, 48);
    assert.deepEqual(await lockKeys(p.kvA), []);
  });

  Deno.test(`KvLocks (${e.name}): releaseSessionLocks frees a dead mount's locks`, async () => {
    await using p = await e.open();
    const { a, b } = p;
    for (let i = 1; i <= 30; i++) {
      await a.setlk(i as Ino, 1n, lk(F_WRLCK, 0, 0), false);
      await a.flock(i as Ino, 1n, LOCK_EX);
    }
    await b.flock(100 as Ino, 1n, LOCK_SH);
    const waiting = b.flock(5 as Ino, 2n, LOCK_EX);
    assert.equal(await releaseSessionLocks(p.kvB, 1, 7), 60);
    await waiting; // polled: A's lock is gone
    await b.setlk(3 as Ino, 1n, lk(F_WRLCK, 0, 0), false);
    assert.equal((await listLocks(p.kvA)).filter((l) => l.sessionId === 1).length, 0);
    assert.equal((await listLocks(p.kvA)).filter((l) => l.sessionId === 2).length, 3);
    assert.equal((await lockKeys(p.kvA)).length, 6, "3 records and their 3 guards");
  });

  Deno.test(`KvLocks (${e.name}): markLost fails the lost holders with ENOLCK`, async () => {
    await using p = await e.open();
    const { a, b } = p;
    await a.setlk(INO, 1n, lk(F_WRLCK, 0, 9), false);
    await a.flock(INO, 2n, LOCK_SH);
    await releaseSessionLocks(p.kvB, 1); // another mount's cleanup
    await b.setlk(INO, 1n, lk(F_WRLCK, 0, 9), false); // now B holds what A thought it held
    const lost = a.markLost();
    assert.deepEqual(
      new Set(lost.map((l) => `${l.kind}:${l.owner}`)),
      new Set(["posix:1", "flock:2"]),
    );
    await assert.rejects(a.setlk(INO, 1n, lk(F_UNLCK, 0, 9), false), { code: "ENOLCK" });
    await assert.rejects(a.setlk(INO, 1n, lk(F_WRLCK, 20, 29), false), { code: "ENOLCK" });
    await assert.rejects(a.flock(INO, 2n, LOCK_UN), { code: "ENOLCK" });
    await assert.rejects(a.flock(INO, 2n, LOCK_EX | LOCK_NB), { code: "ENOLCK" });
    await a.setlk(INO, 3n, lk(F_WRLCK, 20, 29), false); // other holders go on
    await a.releasePosix(INO, 1n); // the close ends the fence
    await a.releaseFlock(INO, 2n);
    await a.setlk(INO, 1n, lk(F_WRLCK, 30, 39), false);
    await a.flock(INO, 2n, LOCK_SH | LOCK_NB);
    await assert.rejects(a.setlk(INO, 1n, lk(F_WRLCK, 0, 0), false), { code: "EAGAIN" });
    // A mount that registered a new session takes its next locks under that one.
    assert.equal(a.markLost(9).length, 3);
    await a.releasePosix(INO, 1n);
    await a.setlk(INO, 1n, lk(F_WRLCK, 50, 59), false);
    const sessions = (await listLocks(p.kvA)).map((l) => l.sessionId).sort();
    assert.deepEqual(sessions, [2, 9], "the lost session's records are deleted");
  });

  Deno.test(`KvLocks (${e.name}): close drops the mount's locks and ends its waits`, async () => {
    await using p = await e.open();
    const { a, b } = p;
    await a.setlk(INO, 1n, lk(F_WRLCK, 0, 9), false);
    await a.flock(INO, 1n, LOCK_SH);
    await b.flock(INO, 1n, LOCK_SH);
    const w = b.setlk(INO, 2n, lk(F_WRLCK, 0, 0), true);
    const blocked = a.flock(INO, 2n, LOCK_EX);
    assert.equal(await pending(blocked), true);
    await a.close();
    await assert.rejects(blocked, { code: "EINTR" });
    await w;
    assert.deepEqual((await listLocks(p.kvB)).map((l) => l.sessionId), [2, 2]);
    await b.close();
    assert.deepEqual(await lockKeys(p.kvB), []);
  });
}

Deno.test("KvLocks: releases of nothing cost no transaction", async () => {
  const mem = new MemoryKvEngine();
  let txns = 0;
  const kv: KvEngine = {
    scheme: "mem",
    txn: (fn, o) => (txns++, mem.txn(fn, o)),
    close: () => mem.close(),
  };
  const locks = new KvLocks(kv, { sessionId: 1 });
  await locks.releasePosix(INO, 1n);
  await locks.releaseFlock(INO, 1n);
  await locks.setlk(INO, 1n, lk(F_UNLCK, 0, Infinity), false);
  await locks.close();
  assert.equal(txns, 0);
  await kv.close();
});

Deno.test("setRange splits, merges and keeps ranges sorted", () => {
  const w = (start: number, end: number) => ({ type: F_WRLCK, start, end });
  const r = (start: number, end: number) => ({ type: F_RDLCK, start, end });
  assert.deepEqual(setRange([w(0, 9)], { type: F_UNLCK, start: 3, end: 5 }), [w(0, 2), w(6, 9)]);
  assert.deepEqual(setRange([w(0, 2), w(6, 9)], w(3, 5)), [w(0, 9)]);
  assert.deepEqual(setRange([w(0, 9)], r(3, 5)), [w(0, 2), r(3, 5), w(6, 9)]);
  assert.deepEqual(setRange([r(0, 4)], r(5, Infinity)), [r(0, Infinity)]);
  assert.deepEqual(setRange([r(0, 4), w(10, 12)], { type: F_UNLCK, start: 0, end: Infinity }), []);
});
