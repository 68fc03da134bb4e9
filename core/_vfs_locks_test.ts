import assert from "node:assert/strict";
import { MemoryBlockStore, MemoryKvEngine } from "../backends/mod.ts";
import { KvLocks, listLocks, releaseSessionLocks } from "./meta/kv_locks.ts";
import { formatVolume, Volume } from "./volume.ts";
import { F_WRLCK, type Ino, LOCK_EX, LOCK_NB, LOCK_SH, O_RDWR, ROOT_CTX } from "./types.ts";
import { nameFromText } from "./types.ts";

/** Two volumes (mounts) over one memory engine, each with its own session's KvLocks. */
async function twoMounts() {
  const kv = new MemoryKvEngine();
  await formatVolume(kv, { name: "locks", storage: "mem://" });
  const store = new MemoryBlockStore();
  const a = await Volume.openWith(kv.share(), store, { locks: new KvLocks(kv, { sessionId: 1 }) });
  const b = await Volume.openWith(kv.share(), store, { locks: new KvLocks(kv, { sessionId: 2 }) });
  return {
    kv,
    a,
    b,
    async [Symbol.asyncDispose]() {
      await a.close();
      await b.close();
      await kv.close();
    },
  };
}

Deno.test("Vfs fences the handles whose locks were lost: EIO to writes, ENOLCK to locks", async () => {
  await using m = await twoMounts();
  const va = m.a.vfs;
  const { attr, opened } = await va.create(ROOT_CTX, 1 as Ino, nameFromText("f"), 0o644, O_RDWR);
  const ino = attr.ino;
  const locked = opened.fh;
  const free = (await va.open(ROOT_CTX, ino, O_RDWR)).fh; // takes no lock
  const posix = (await va.open(ROOT_CTX, ino, O_RDWR)).fh;
  await va.flock(ROOT_CTX, ino, locked, 1n, LOCK_EX);
  await va.setlk(ROOT_CTX, ino, posix, 2n, { type: F_WRLCK, start: 0, end: 9, pid: 5 }, false);
  await va.write(ROOT_CTX, ino, locked, 0, new Uint8Array([1]));

  // Another mount's cleanup of A's session, then A learns it lost its locks.
  assert.equal(await releaseSessionLocks(m.kv, 1), 2);
  const vb = m.b.vfs;
  const fb = (await vb.open(ROOT_CTX, ino, O_RDWR)).fh;
  await vb.flock(ROOT_CTX, ino, fb, 1n, LOCK_EX | LOCK_NB);
  assert.equal(va.locksLost(), 2);

  await assert.rejects(va.write(ROOT_CTX, ino, locked, 0, new Uint8Array([2])), { code: "EIO" });
  await assert.rejects(va.fsync(ROOT_CTX, ino, locked, false), { code: "EIO" });
  await assert.rejects(va.write(ROOT_CTX, ino, posix, 0, new Uint8Array([2])), { code: "EIO" });
  await assert.rejects(va.flock(ROOT_CTX, ino, locked, 1n, LOCK_SH | LOCK_NB), {
    code: "ENOLCK",
  });
  await va.write(ROOT_CTX, ino, free, 1, new Uint8Array([3])); // never locked: goes on
  await assert.rejects(va.flock(ROOT_CTX, ino, free, 3n, LOCK_SH | LOCK_NB), { code: "EAGAIN" });

  // Closing ends the fence: a new handle may lock again once B lets go.
  await va.flush(ROOT_CTX, ino, locked, 1n);
  await va.release(ROOT_CTX, ino, locked, 1n, true);
  await vb.release(ROOT_CTX, ino, fb, 1n, true);
  const again = (await va.open(ROOT_CTX, ino, O_RDWR)).fh;
  await va.flock(ROOT_CTX, ino, again, 1n, LOCK_EX | LOCK_NB);
  await va.write(ROOT_CTX, ino, again, 0, new Uint8Array([4]));
  for (const fh of [again, free, posix]) {
    await va.flush(ROOT_CTX, ino, fh, 9n);
    await va.release(ROOT_CTX, ino, fh, fh === again ? 1n : 9n, true);
  }
  assert.deepEqual(await listLocks(m.kv), []);
});
