/**
 * Locks across mounts: two daemons mount one volume (each engine fixture that can be shared) and
 * every `flock` and `fcntl` lock taken through one is seen and respected through the other —
 * `LOCK_NB` fails with `EWOULDBLOCK`, `F_GETLK` reports the other mount's lock (pid 0), blocked
 * waits wake when the holder unlocks, closes or exits, an interrupted wait ends, and a clean
 * unmount leaves no lock behind. Through real mounts, real daemons and real lock calls.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "./_libc.ts";
import { engineFixtures } from "./_engines.ts";
import { startSlayer } from "./_mount.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether `p` is still pending after `ms`. */
async function pending(p: Promise<unknown>, ms = 300): Promise<boolean> {
  let settled = false;
  p.then(() => settled = true, () => settled = true);
  await sleep(ms);
  return !settled;
}

function throwsErrno(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof L.LibcError && e.message.includes(code));
}

/** A child process holding an fcntl lock through `path` until its stdin closes. */
async function holdLock(path: string, type: "r" | "w", start: number, len: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./posix/_lock_holder.ts", import.meta.url).pathname,
      path,
      type,
      String(start),
      String(len),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null", // its close fails once the mount is gone (the unmount case)
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    line += value;
  }
  reader.releaseLock();
  const release = async () => {
    await child.stdin.close().catch(() => {});
    await child.status;
    await child.stdout.cancel().catch(() => {});
  };
  if (!line.startsWith("locked ")) {
    await release();
    throw new Error(`Lock holder failed: "${line.trim()}"`);
  }
  return { pid: child.pid, release };
}

/** A Python child blocked in F_SETLKW that SIGALRM interrupts after a second. */
async function interruptedSetlkw(path: string): Promise<string> {
  const out = await new Deno.Command("python3", {
    args: [
      "-c",
      [
        "import fcntl, os, signal, sys",
        "def alarm(s, f): raise TimeoutError()",
        "signal.signal(signal.SIGALRM, alarm)",
        "fd = os.open(sys.argv[1], os.O_RDWR)",
        "signal.alarm(1)",
        "try:",
        "  fcntl.lockf(fd, fcntl.LOCK_EX)",
        "  print('locked')",
        "except TimeoutError:",
        "  print('interrupted')",
      ].join("\n"),
      path,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim() + new TextDecoder().decode(out.stderr);
}

for (const fixture of engineFixtures.filter((f) => f.shared)) {
  Deno.test({
    name: `locks across two mounts of one ${fixture.name} volume`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await using server = await fixture.start();
      await using a = await startSlayer({ meta: server.newVolumeUrl() });
      await using b = await startSlayer({ meta: a.meta, format: false });
      await Deno.writeFile(`${a.mnt}/f`, new Uint8Array(1000));
      await a.guard(60_000, "locks across mounts", async () => {
        // flock: A's exclusive lock blocks B; B's blocked flock wakes when A unlocks.
        const fa = L.open(`${a.mnt}/f`, L.O.RDWR);
        const fb = L.open(`${b.mnt}/f`, L.O.RDWR);
        try {
          L.flock(fa, L.LOCK_EX | L.LOCK_NB);
          throwsErrno(() => L.flock(fb, L.LOCK_SH | L.LOCK_NB), "EAGAIN");
          const waiter = L.flockAsync(fb, L.LOCK_EX);
          assert.equal(await pending(waiter), true, "B's flock waits for A's");
          L.flock(fa, L.LOCK_UN);
          await waiter;
          throwsErrno(() => L.flock(fa, L.LOCK_SH | L.LOCK_NB), "EAGAIN");
          L.flock(fb, L.LOCK_SH); // downgrade: A may share now
          L.flock(fa, L.LOCK_SH | L.LOCK_NB);
          L.flock(fa, L.LOCK_UN);
          // B's blocked flock wakes when A closes its descriptor (no unlock).
          L.flock(fb, L.LOCK_UN);
          L.flock(fa, L.LOCK_EX | L.LOCK_NB);
          const waiter2 = L.flockAsync(fb, L.LOCK_SH);
          assert.equal(await pending(waiter2), true);
          L.close(fa);
          await waiter2;
          L.flock(fb, L.LOCK_UN);
        } finally {
          L.close(fb);
          try {
            L.close(fa);
          } catch { /* closed above */ }
        }

        // fcntl: another process holds a write lock through A.
        const holder = await holdLock(`${a.mnt}/f`, "w", 0, 100);
        const fd = L.open(`${b.mnt}/f`, L.O.RDWR);
        try {
          const c = L.getlk(fd, { type: L.F_RDLCK, start: 50, len: 10 });
          assert.equal(c.type, L.F_WRLCK, "F_GETLK on B reports A's lock");
          assert.equal(c.start, 0);
          assert.equal(c.len, 100);
          assert.equal(c.pid, 0, "a lock of another mount reports pid 0");
          assert.equal(L.getlk(fd, { type: L.F_WRLCK, start: 100, len: 0 }).type, L.F_UNLCK);
          throwsErrno(() => L.setlk(fd, { type: L.F_RDLCK, start: 99, len: 1 }), "EAGAIN");
          L.setlk(fd, { type: L.F_WRLCK, start: 100, len: 10 });
          // An interrupted F_SETLKW on B ends (EINTR) instead of waiting for A.
          assert.equal(await interruptedSetlkw(`${b.mnt}/f`), "interrupted");
          const waiter = L.setlkwAsync(fd, { type: L.F_WRLCK, start: 0, len: 1 });
          assert.equal(await pending(waiter), true, "F_SETLKW on B waits for A's lock");
          await holder.release(); // the holder exits: A drops its lock at the close
          await waiter;
          const fa2 = L.open(`${a.mnt}/f`, L.O.RDWR);
          try {
            const mine = L.getlk(fa2, { type: L.F_WRLCK, start: 0, len: 0 });
            assert.equal(mine.type, L.F_WRLCK, "A sees B's lock now");
            assert.equal(mine.pid, 0);
          } finally {
            L.close(fa2);
          }
        } finally {
          await holder.release();
          L.close(fd);
        }
      });

      // A clean unmount drops the locks of processes still holding them through the mount.
      const holder = await holdLock(`${b.mnt}/f`, "w", 0, 0);
      try {
        await b.stop();
      } finally {
        await holder.release().catch(() => {});
      }
      const fa = L.open(`${a.mnt}/f`, L.O.RDWR);
      try {
        L.setlk(fa, { type: L.F_WRLCK, start: 0, len: 0 });
      } finally {
        L.close(fa);
      }
    },
  });
}
