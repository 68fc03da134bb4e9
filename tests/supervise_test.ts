/**
 * `mount --supervise`: a supervisor keeps a duplicate of the `/dev/fuse` descriptor; when the
 * daemon is SIGKILLed, a new one serves the same connection within seconds (no `ENOTCONN`), with
 * everything fsync'ed intact, new opens working, and the handles of the dead daemon failing with
 * `EBADF`. An upgrade of a supervised mount keeps the supervisor, and an unmount ends it.
 */

import {
  equal as assertEquals,
  notEqual as assertNotEquals,
  ok as assert,
} from "node:assert/strict";
import { alive, cliFor, holdFile, mountBackground, runFor, waitFor } from "./_takeover.ts";
import { isMounted } from "./_mount.ts";

/** SIGKILLs the daemon of `m` and returns how long until a file of the mount reads again. */
async function killAndRead(
  m: Awaited<ReturnType<typeof mountBackground>>,
  path: string,
  want: string,
): Promise<{ ms: number; pid: number }> {
  const before = m.state()!;
  Deno.kill(before.pid, "SIGKILL");
  await waitFor(10_000, "the daemon to die", () => !alive(before.pid));
  const t0 = Date.now();
  // Right away: the request waits in the kernel for the new daemon instead of failing.
  const cat = await runFor(30_000, "cat", [path]);
  const ms = Date.now() - t0;
  assertEquals(cat.code, 0, `read after the crash failed: ${cat.stderr}\n${m.log()}`);
  assertEquals(cat.stdout, want);
  const after = await waitFor(30_000, "the new daemon's state", () => {
    const s = m.state();
    return s && s.pid !== before.pid && alive(s.pid) ? s : undefined;
  });
  assertEquals(after.supervisor, before.supervisor);
  return { ms, pid: after.pid };
}

Deno.test("a supervised mount survives kill -9 of its daemon", async () => {
  await using m = await mountBackground(["--supervise"]);
  const first = m.state()!;
  assert(first.supervisor !== undefined && alive(first.supervisor), "a supervisor runs");
  assertNotEquals(first.supervisor, first.pid);

  // Data fsync'ed before the crash, and a file still open at the crash.
  {
    await using w = await holdFile(`${m.mnt}/synced.txt`, "rw");
    assertEquals(await w.ask("write durable"), "ok");
    assertEquals(await w.ask("fsync"), "ok");
    assertEquals(await w.ask("close"), "ok");
  }
  await using open = await holdFile(`${m.mnt}/open.txt`, "rw");
  assertEquals(await open.ask("write kept"), "ok");
  assertEquals(await open.ask("fsync"), "ok");
  let crashed = 0;

  const st = await cliFor(60_000, ["status", m.mnt]);
  assert(st.stdout.includes(`supervisor pid ${first.supervisor}`), st.stdout);

  // A request the daemon holds when it dies: a flock(1) waiting for the holder's lock.
  assertEquals(await open.ask("lock"), "ok");
  const waiter = new Deno.Command("flock", {
    args: ["-x", `${m.mnt}/open.txt`, "true"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const waited = waiter.output();
  try {
    await new Promise((r) => setTimeout(r, 1000));
    assert(alive(waiter.pid), "flock waits for the lock");

    const crash1 = await killAndRead(m, `${m.mnt}/synced.txt`, "durable");
    assert(crash1.ms < 20_000, `served again after ${crash1.ms} ms`);
    crashed = crash1.pid;
    // The request the dead daemon had read is answered (EIO), not left waiting forever.
    // (flock(1) then opens the file again and retries: the dead session's lock is gone.)
    await Promise.race([
      waited,
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error("flock hung")), 30_000)),
    ]);
    assert(/Answered EIO to [1-9]\d* requests the dead daemon left/.test(m.log()), m.log());
  } finally {
    try {
      waiter.kill("SIGKILL");
    } catch { /* done */ }
    await waited.catch(() => {});
  }
  const crash1 = { pid: crashed };
  assert(isMounted(m.mnt));

  // New opens, writes and reads work; the handle of the dead daemon is gone (EBADF).
  const w = await runFor(30_000, "sh", [
    "-c",
    `printf new > '${m.mnt}/new.txt' && cat '${m.mnt}/new.txt' '${m.mnt}/open.txt'`,
  ]);
  assertEquals(w.code, 0, w.stderr);
  assertEquals(w.stdout, "newkept");
  // (A read may still come from the kernel's page cache; a write goes to the daemon.)
  const stale = await open.ask("write lost");
  assertEquals(stale, "error EBADF", "a handle of the dead daemon is gone");

  // An upgrade of a supervised mount registers the new daemon with the same supervisor...
  const up = await cliFor(120_000, ["mount", "--upgrade", m.mnt]);
  assertEquals(up.code, 0, `${up.stderr}\n${m.log()}`);
  const upgraded = m.state()!;
  assertNotEquals(upgraded.pid, crash1.pid);
  assertEquals(upgraded.supervisor, first.supervisor);
  await waitFor(15_000, "the upgraded daemon to exit", () => !alive(crash1.pid));
  // ... which restarts it too.
  await waitFor(
    15_000,
    "the supervisor to learn of the upgrade",
    () => m.log().includes(`Daemon pid ${upgraded.pid} registered`),
  );
  const crash2 = await killAndRead(m, `${m.mnt}/new.txt`, "new");
  assert(crash2.ms < 20_000, `served again after ${crash2.ms} ms`);

  // Closing a handle of a dead daemon is harmless; an unmount ends the daemon and the supervisor.
  const closed = await open.ask("close");
  assert(closed === "ok" || closed.startsWith("error"), closed);
  const um = await cliFor(60_000, ["umount", m.mnt]);
  assertEquals(um.code, 0, `${um.stderr}\n${m.log()}`);
  assert(!isMounted(m.mnt));
  await waitFor(
    20_000,
    "the daemon and the supervisor to exit",
    () => !alive(crash2.pid) && !alive(first.supervisor!),
  );
});
