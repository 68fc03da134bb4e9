/**
 * Smooth upgrade (`mount --upgrade`, `SIGHUP`): a new daemon takes the live `/dev/fuse`
 * connection over while `/usr/bin/dd` writes through the mount and other processes hold files
 * open (one with an flock); nothing fails, the data is whole, the old daemon exits and `status`
 * shows the new one.
 */

import {
  equal as assertEquals,
  notEqual as assertNotEquals,
  ok as assert,
} from "node:assert/strict";
import { alive, cliFor, holdFile, mountBackground, runFor, sleep, waitFor } from "./_takeover.ts";
import { isMounted } from "./_mount.ts";

const MiB = 2 ** 20;
const DD_MIB = 64;

/** dd's output offset (its `of=` is fd 1), from /proc. */
function ddOffset(pid: number): number {
  try {
    const info = Deno.readTextFileSync(`/proc/${pid}/fdinfo/1`);
    return Number(/pos:\s*(\d+)/.exec(info)?.[1] ?? 0);
  } catch {
    return -1;
  }
}

Deno.test("mount --upgrade and SIGHUP hand the live connection over without a failure", async () => {
  await using m = await mountBackground(["--writeback"]);
  const first = m.state()!;
  assert(first.session !== undefined, "the mount has a session");
  // A source of random bytes on local disk, written through the mount by dd.
  const src = `${m.dir}/src.bin`;
  const data = new Uint8Array(DD_MIB * MiB);
  for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  await Deno.writeFile(src, data);

  await using held = await holdFile(`${m.mnt}/held.txt`, "rw");
  assertEquals(await held.ask("write before|"), "ok");
  assertEquals(await held.ask("lock"), "ok"); // flock(LOCK_EX) through the mount
  const w = await runFor(30_000, "sh", ["-c", `printf 'read me' > '${m.mnt}/ro.txt'`]);
  assertEquals(w.code, 0);
  await using reader = await holdFile(`${m.mnt}/ro.txt`, "r");

  // dd writes through the mount in direct 1 MiB writes (each one a FUSE request), fed at a
  // steady pace; its last 8 MiB wait until the old daemon has gone, so dd is mid-way at the
  // handover by construction, and its writes go on while the new daemon starts.
  const dd = new Deno.Command("/usr/bin/dd", {
    args: [`of=${m.mnt}/big.bin`, "bs=1M", "iflag=fullblock", "oflag=direct"],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const ddErr = new Response(dd.stderr).text();
  let handedOver = false;
  const feeder = (async () => {
    const w = dd.stdin.getWriter();
    for (let i = 0; i < DD_MIB; i++) {
      while (!handedOver && i >= DD_MIB - 8) await sleep(50);
      await w.write(data.subarray(i * MiB, (i + 1) * MiB));
      if (!handedOver) await sleep(50);
    }
    await w.close();
  })();
  try {
    await waitFor(30_000, "dd to start writing", () => ddOffset(dd.pid) >= 4 * MiB);
    const atStart = ddOffset(dd.pid);
    const upgrading = cliFor(120_000, ["mount", "--upgrade", m.mnt]);
    const atHandover = await waitFor(
      120_000,
      "the old daemon to hand over and exit",
      () => !alive(first.pid) ? { ddAlive: alive(dd.pid), offset: ddOffset(dd.pid) } : undefined,
    );
    handedOver = true;
    assert(atHandover.ddAlive, "dd runs during the handover");
    assert(
      atHandover.offset > atStart && atHandover.offset < DD_MIB * MiB,
      `dd wrote during the upgrade and is mid-way (${atStart} then ${atHandover.offset} bytes)`,
    );
    const up = await upgrading;
    assertEquals(up.code, 0, `upgrade failed: ${up.stderr}\n${m.log()}`);
    assert(/upgraded/.test(up.stdout), up.stdout);
    const second = m.state()!;
    assertNotEquals(second.pid, first.pid);
    assertEquals(second.tookOverFrom, first.pid);
    assertEquals(second.session, first.session, "the session goes on (its locks stay held)");
    assert(isMounted(m.mnt));

    // dd finishes without an error, and every byte arrived.
    const status = await Promise.race([
      feeder.then(() => dd.status),
      new Promise<never>((_, rej) => setTimeout(() => rej(new Error("dd hung")), 120_000)),
    ]);
    assertEquals(status.code, 0, await ddErr);
    const cmp = await runFor(60_000, "cmp", [src, `${m.mnt}/big.bin`]);
    assertEquals(cmp.code, 0, `dd's file differs: ${cmp.stdout}${cmp.stderr}`);
  } finally {
    handedOver = true;
    try {
      dd.kill("SIGKILL");
    } catch { /* done */ }
    await dd.status;
    await feeder.catch(() => {});
    await ddErr.catch(() => {});
  }

  // The files held open across the upgrade go on: read, write, fsync, lock kept, close.
  assertEquals(await reader.ask("read"), "data read me");
  assertEquals(await held.ask("write after"), "ok");
  assertEquals(await held.ask("fsync"), "ok");
  assertEquals(await held.ask("read"), "data before|after");
  const busy = await runFor(30_000, "flock", ["-n", `${m.mnt}/held.txt`, "true"]);
  assertEquals(busy.code, 1, "the flock taken before the upgrade is still held");
  assertEquals(await held.ask("close"), "ok");
  const free = await runFor(30_000, "flock", ["-n", `${m.mnt}/held.txt`, "true"]);
  assertEquals(free.code, 0, "closing the file released its flock");
  assertEquals(await reader.ask("close"), "ok");

  // status shows the new daemon.
  const st = await cliFor(60_000, ["status", m.mnt]);
  assertEquals(st.code, 0, st.stderr);
  assert(st.stdout.includes(`pid ${m.state()!.pid}`), st.stdout);

  // SIGHUP: the daemon restarts in place the same way.
  const second = m.state()!.pid;
  Deno.kill(second, "SIGHUP");
  const third = await waitFor(90_000, "a new daemon after SIGHUP", () => {
    const s = m.state();
    return s && s.pid !== second ? s : undefined;
  });
  await waitFor(15_000, "the SIGHUPed daemon to exit", () => !alive(second));
  assertEquals(third.session, first.session);
  const cat = await runFor(30_000, "cat", [`${m.mnt}/held.txt`]);
  assertEquals(cat.stdout, "before|after");
  const cmp2 = await runFor(60_000, "cmp", [src, `${m.mnt}/big.bin`]);
  assertEquals(cmp2.code, 0);

  // The stage the first daemon filled is uploaded by its successors.
  await waitFor(60_000, "the staged blocks to upload", () => {
    const wb = m.state()?.writeback;
    return wb && wb.stagedObjects === 0 && wb.uploading === 0;
  });

  // A plain unmount still works after the handovers.
  const um = await cliFor(60_000, ["umount", m.mnt]);
  assertEquals(um.code, 0, `${um.stderr}\n${m.log()}`);
  assert(!isMounted(m.mnt));
  await waitFor(15_000, "the last daemon to exit", () => !alive(third.pid));
});
