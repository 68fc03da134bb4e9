/**
 * POSIX suite cases for locks: flock between open file descriptions, and fcntl record locks
 * against another process (`_lock_holder.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "../_libc.ts";
import { type CaseBodies, enc, sleep, throwsErrno } from "./_helpers.ts";

const cases: CaseBodies = {};

/** A waiter for one line of a child's stdout. */
function lineReader(stream: ReadableStream<Uint8Array>): () => Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return async () => {
    while (!buf.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) {
        const rest = buf;
        buf = "";
        return rest;
      }
      buf += value;
    }
    const i = buf.indexOf("\n");
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    return line;
  };
}

/** A child process holding an fcntl lock (see `_lock_holder.ts`). */
async function holdLock(
  path: string,
  type: "r" | "w",
  start: number,
  len: number,
): Promise<{ pid: number; release(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./_lock_holder.ts", import.meta.url).pathname,
      path,
      type,
      String(start),
      String(len),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const line = await lineReader(child.stdout)();
  if (!line.startsWith("locked ")) {
    await child.stdin.close().catch(() => {});
    await child.status;
    throw new Error(`Lock holder failed: "${line}"`);
  }
  return {
    pid: child.pid,
    async release() {
      await child.stdin.close().catch(() => {});
      await child.status;
    },
  };
}

/** flock: conflicts between open file descriptions, LOCK_NB, release on close. */
cases.flock = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, enc.encode("x"));
  const a = L.open(f, L.O.RDWR);
  const b = L.open(f, L.O.RDWR);
  let c = -1;
  try {
    L.flock(a, L.LOCK_SH);
    L.flock(b, L.LOCK_SH | L.LOCK_NB);
    c = L.open(f, L.O.RDONLY);
    throwsErrno(() => L.flock(c, L.LOCK_EX | L.LOCK_NB), "EAGAIN", "EX against two SH locks");
    L.flock(a, L.LOCK_UN);
    L.flock(b, L.LOCK_UN);
    L.flock(c, L.LOCK_EX | L.LOCK_NB);
    throwsErrno(() => L.flock(a, L.LOCK_EX | L.LOCK_NB), "EAGAIN", "EWOULDBLOCK");
    throwsErrno(() => L.flock(b, L.LOCK_SH | L.LOCK_NB), "EAGAIN");
    const waiter = L.flockAsync(a, L.LOCK_EX);
    let granted = false;
    waiter.then(() => granted = true, () => {});
    await sleep(200);
    assert.equal(granted, false, "a blocking flock waits while the lock is held");
    L.close(c);
    c = -1;
    await waiter;
    throwsErrno(() => L.flock(b, L.LOCK_EX | L.LOCK_NB), "EAGAIN");
  } finally {
    L.close(a);
    if (c >= 0) L.close(c);
  }
  // Closing the last descriptor of `a` drops its lock. Under heavy load the final reference of
  // `a` (taken by the thread that waited in flock) can be dropped a moment after close returns,
  // so allow up to 2 s before calling it a leak.
  for (let tries = 0;; tries++) {
    try {
      L.flock(b, L.LOCK_EX | L.LOCK_NB);
      break;
    } catch (err) {
      if (tries >= 40 || !(err instanceof L.LibcError) || !/EAGAIN/.test(err.message)) throw err;
      await sleep(50);
    }
  }
  L.close(b);
};

/** fcntl record locks against another process: F_GETLK, F_SETLK, F_SETLKW. */
cases.fcntl_locks = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, new Uint8Array(1000));
  const holder = await holdLock(f, "w", 0, 100);
  const fd = L.open(f, L.O.RDWR);
  try {
    const conflict = L.getlk(fd, { type: L.F_WRLCK, start: 10, len: 5 });
    assert.equal(conflict.type, L.F_WRLCK);
    assert.equal(conflict.start, 0);
    assert.equal(conflict.len, 100);
    assert.equal(conflict.pid, holder.pid, "F_GETLK reports the holder's pid");
    const free = L.getlk(fd, { type: L.F_WRLCK, start: 100, len: 50 });
    assert.equal(free.type, L.F_UNLCK, "no conflict past the held range");
    throwsErrno(() => L.setlk(fd, { type: L.F_WRLCK, start: 50, len: 1 }), "EAGAIN");
    throwsErrno(() => L.setlk(fd, { type: L.F_RDLCK, start: 0, len: 0 }), "EAGAIN");
    L.setlk(fd, { type: L.F_WRLCK, start: 100, len: 100 });
    const waiter = L.setlkwAsync(fd, { type: L.F_WRLCK, start: 0, len: 10 });
    let granted = false;
    waiter.then(() => granted = true, () => {});
    await sleep(300);
    assert.equal(granted, false, "F_SETLKW waits while the range is locked");
    await holder.release();
    await waiter;
    assert.equal(granted, true);
    const mine = L.getlk(fd, { type: L.F_WRLCK, start: 0, len: 0 });
    assert.equal(mine.type, L.F_UNLCK, "a process does not conflict with its own locks");
  } finally {
    await holder.release();
    L.close(fd);
  }
  const reader = await holdLock(f, "r", 0, 0);
  const fd2 = L.open(f, L.O.RDWR);
  try {
    L.setlk(fd2, { type: L.F_RDLCK, start: 0, len: 10 });
    throwsErrno(() => L.setlk(fd2, { type: L.F_WRLCK, start: 0, len: 10 }), "EAGAIN");
  } finally {
    await reader.release();
    L.close(fd2);
  }
};

/** The lock cases, in suite order. */
export const lockCases: CaseBodies = cases;
