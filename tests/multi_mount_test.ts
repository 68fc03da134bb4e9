/**
 * Many mounts of one volume, through real daemons and real mounts (`startSlayer` twice on one
 * meta URL), on every engine fixture that allows it (`engineFixtures` with `shared`):
 * close-to-open (contents and size, no stale kernel pages), names created, renamed and removed on
 * one mount seen on the other within the TTLs, a file unlinked on one mount kept open on the
 * other until its last close there (then its blocks go), sessions listed by `status META_URL`, a
 * kill -9'd daemon's session cleaned up by the other mount within its session timeout (its
 * unlinked-open file deleted), a remount on the same host cleaning up its killed predecessor at
 * once, and `destroy` refusing while mounts are live.
 *
 * @module
 */

import assert from "node:assert/strict";
import { engineFixtures } from "./_engines.ts";
import { CLI, REPO_ROOT, runCli, type SlayerMount, startSlayer } from "./_mount.ts";

/** Short, so that a dead mount is cleaned up within seconds. */
const TIMEOUT_ARGS = ["--session-timeout", "2"];

function rand(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Asserts equal bytes (without node's slow diff of large arrays). */
function same(got: Uint8Array, want: Uint8Array, what: string): void {
  const at = got.findIndex((b, i) => b !== want[i]);
  assert.ok(
    got.length === want.length && at < 0,
    `${what}: length ${got.length}, differs at ${at}`,
  );
}

/**
 * Holds `path` open in a child process (`sh` with the file on fd 3) until `release()`: a close in
 * this process of a file on a mount that was just killed can block the whole test process.
 */
async function holdOpen(path: string): Promise<{ release(): Promise<void> }> {
  const child = new Deno.Command("sh", {
    args: ["-c", 'exec 3<"$1"; echo held; exec sleep 600', "sh", path],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  const first = await reader.read();
  reader.releaseLock();
  if (new TextDecoder().decode(first.value ?? new Uint8Array()).trim() !== "held") {
    throw new Error(`could not open ${path} in a child process`);
  }
  child.stdout.cancel().catch(() => {});
  return {
    async release() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** The objects in a mount's `file://` block store (under `chunks/`). */
async function objects(m: SlayerMount): Promise<number> {
  let n = 0;
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(`${d}/${e.name}`);
      else if (!e.name.startsWith(".")) n++;
    }
  };
  await walk(`${m.dir}/blocks/chunks`).catch(() => {});
  return n;
}

interface StatusJson {
  name: string;
  space: number;
  inodes: number;
  sessions: Array<
    { id: number; host: string; pid: number; mountpoint: string; version: string; live: boolean }
  >;
}

async function status(meta: string): Promise<StatusJson> {
  const r = await runCli(["status", "--json", meta]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusJson;
}

for (const fx of engineFixtures.filter((f) => f.shared)) {
  Deno.test({
    name: `${fx.name}: close-to-open and names across two mounts`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await using server = await fx.start();
      const meta = server.newVolumeUrl();
      await using a = await startSlayer({ meta, extraArgs: TIMEOUT_ARGS });
      await using b = await startSlayer({ meta, format: false, extraArgs: TIMEOUT_ARGS });

      // Written and closed on A: B's open sees all of it, at its size.
      const one = rand(300_000, 1);
      await Deno.writeFile(`${a.mnt}/f`, one);
      same(await Deno.readFile(`${b.mnt}/f`), one, "B reads A's file");
      assert.equal((await Deno.stat(`${b.mnt}/f`)).size, one.length);

      // B has the file in its page cache; A rewrites it (same size, then longer): B's next open
      // reads the new bytes, not its cached pages, and the new size at once.
      const two = rand(300_000, 2);
      await Deno.writeFile(`${a.mnt}/f`, two);
      same(await Deno.readFile(`${b.mnt}/f`), two, "B reads A's rewrite (same size)");
      const three = rand(450_000, 3);
      await Deno.writeFile(`${a.mnt}/f`, three);
      same(await Deno.readFile(`${b.mnt}/f`), three, "B reads A's longer rewrite");
      // An fsync'ed write through a handle still open on A is seen by B's next open too.
      const h = await Deno.open(`${a.mnt}/f`, { write: true });
      await h.write(new TextEncoder().encode("HEAD"));
      await h.sync();
      const got = await Deno.readFile(`${b.mnt}/f`);
      assert.equal(new TextDecoder().decode(got.subarray(0, 4)), "HEAD");
      h.close();
      // Appended on B, read back on A.
      await Deno.writeFile(`${b.mnt}/f`, new Uint8Array([7, 7, 7]), { append: true });
      const back = await Deno.readFile(`${a.mnt}/f`);
      assert.equal(back.length, three.length + 3);
      assert.deepEqual([...back.subarray(three.length)], [7, 7, 7]);

      // Names: created, renamed and removed on A appear on B within the TTLs (1 s).
      await Deno.writeTextFile(`${a.mnt}/new`, "n");
      await until("B to see a new file", () => exists(`${b.mnt}/new`), 3000);
      await Deno.rename(`${a.mnt}/new`, `${a.mnt}/renamed`);
      await until(
        "B to see the rename",
        async () => !(await exists(`${b.mnt}/new`)) && await exists(`${b.mnt}/renamed`),
        3000,
      );
      assert.equal(await Deno.readTextFile(`${b.mnt}/renamed`), "n");
      await Deno.mkdir(`${a.mnt}/dir`);
      await until("B to see a new folder", () => exists(`${b.mnt}/dir`), 3000);
      await Deno.remove(`${a.mnt}/renamed`);
      await until("B to see the unlink", async () => !(await exists(`${b.mnt}/renamed`)), 3000);
      const names = [];
      for await (const e of Deno.readDir(b.mnt)) names.push(e.name);
      assert.deepEqual(names.sort(), ["dir", "f"]);
    },
  });

  Deno.test({
    name: `${fx.name}: a file unlinked on one mount stays open on the other until closed there`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await using server = await fx.start();
      const meta = server.newVolumeUrl();
      await using a = await startSlayer({ meta, extraArgs: TIMEOUT_ARGS });
      await using b = await startSlayer({ meta, format: false, extraArgs: TIMEOUT_ARGS });
      const data = rand(1_500_000, 4);
      await Deno.writeFile(`${a.mnt}/g`, data);
      const stored = await objects(a);
      assert.ok(stored >= 1, "g's blocks are in the store");
      const f = await Deno.open(`${a.mnt}/g`, { read: true, write: true });
      try {
        await Deno.remove(`${b.mnt}/g`);
        await until("A to see the unlink", async () => !(await exists(`${a.mnt}/g`)), 3000);
        // A still reads and writes it.
        const buf = new Uint8Array(data.length);
        let off = 0;
        while (off < buf.length) {
          const n = await f.read(buf.subarray(off));
          if (n === null) break;
          off += n;
        }
        same(buf.subarray(0, off), data, "A reads the unlinked file");
        await f.write(new TextEncoder().encode("tail"));
        await f.sync();
        await f.seek(data.length, Deno.SeekMode.Start);
        const tail = new Uint8Array(4);
        assert.equal(await f.read(tail), 4);
        assert.equal(new TextDecoder().decode(tail), "tail");
        assert.ok((await objects(a)) >= stored, "its blocks are kept while open");
      } finally {
        f.close();
      }
      // The last close, on A, deletes it: its blocks leave the store.
      await until("g's blocks to be deleted", async () => (await objects(a)) === 0);
      assert.equal((await status(meta)).inodes, 1, "only the root is left");
    },
  });

  Deno.test({
    name:
      `${fx.name}: status lists the sessions; a killed mount's session and files are cleaned up`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await using server = await fx.start();
      const meta = server.newVolumeUrl();
      await using a = await startSlayer({ meta, extraArgs: TIMEOUT_ARGS });
      await using b = await startSlayer({ meta, format: false, extraArgs: TIMEOUT_ARGS });
      const st = await status(meta);
      assert.deepEqual(
        st.sessions.map((s) => [s.pid, s.mountpoint, s.host, s.live]).sort(),
        [[a.pid, a.mnt, Deno.hostname(), true], [b.pid, b.mnt, Deno.hostname(), true]].sort(),
      );
      assert.ok(st.sessions.every((s) => s.version.length > 0));
      // Each mount's own status names its session.
      const own = JSON.parse((await runCli(["status", "--json", a.mnt])).stdout) as {
        session?: number;
      };
      assert.equal(own.session, st.sessions.find((s) => s.pid === a.pid)?.id);
      const text = await runCli(["status", meta]);
      assert.match(text.stdout, /Sessions: 2 live/);
      assert.ok(text.stdout.includes(a.mnt) && text.stdout.includes(b.mnt), text.stdout);

      // A holds an unlinked file open when it is killed.
      await Deno.writeFile(`${a.mnt}/held`, rand(1_000_000, 5));
      const f = await holdOpen(`${a.mnt}/held`);
      try {
        await Deno.remove(`${b.mnt}/held`);
        assert.ok((await objects(a)) >= 1, "held's blocks are kept while A has it open");
        await a.kill9();
      } finally {
        await f.release();
      }
      // Within the 2 s timeout (plus a beat), B cleans up A's session and deletes the file.
      await until("A's session to be cleaned up", async () => {
        const s = await status(meta);
        return s.sessions.length === 1 && s.sessions[0]!.pid === b.pid;
      }, 15_000);
      await until("held's blocks to be deleted", async () => (await objects(a)) === 0);
      assert.equal((await status(meta)).inodes, 1, "only the root is left");
      assert.match(b.log(), /Cleaning up dead session/);
    },
  });

  Deno.test({
    name:
      `${fx.name}: a remount on the same host cleans up its killed predecessor's session at once`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await using server = await fx.start();
      const meta = server.newVolumeUrl();
      // The default timeout (60 s): the cleanup below must not wait for it.
      await using a = await startSlayer({ meta });
      await Deno.writeFile(`${a.mnt}/held`, rand(1_000_000, 7));
      const f = await holdOpen(`${a.mnt}/held`);
      try {
        await Deno.remove(`${a.mnt}/held`);
        assert.ok((await objects(a)) >= 1, "held's blocks are kept while open");
        const dead = a.pid;
        await a.kill9();
        await a.restart();
        await until("held's blocks to be deleted", async () => (await objects(a)) === 0, 20_000);
        const st = await status(meta);
        assert.deepEqual(st.sessions.map((s) => s.pid), [a.pid]);
        assert.notEqual(a.pid, dead);
      } finally {
        await f.release();
      }
    },
  });

  Deno.test({
    name: `${fx.name}: destroy refuses while mounted, asks for the name, then deletes all`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await using server = await fx.start();
      const meta = server.newVolumeUrl();
      // 5 s: a heartbeat every second, so a killed mount's session stays live for 4 s at least,
      // long enough for the first destroy below to start on a loaded machine.
      const timeout = ["--session-timeout", "5"];
      await using a = await startSlayer({ meta, extraArgs: timeout });
      const b = await startSlayer({ meta, format: false, extraArgs: timeout });
      try {
        await Deno.writeFile(`${a.mnt}/x`, rand(200_000, 6));
        const live = await runCli(["destroy", "--yes", meta]);
        assert.equal(live.code, 1, live.stderr);
        assert.match(live.stderr, /is mounted \(2 live sessions: .*\): unmount it everywhere/);
        assert.equal(live.stderr.trim().split("\n").length, 1, "one line");
      } finally {
        await b.stop();
      }
      // A killed mount's session, not cleaned up by anyone: refused until it is stale, then
      // only with --force.
      const killedAt = Date.now();
      await a.kill9();
      const young = await runCli(["destroy", "--yes", meta]);
      assert.equal(young.code, 1, young.stderr);
      // Live for 4 s at least after the kill; a CLI slower than that to start (a very loaded
      // machine) finds it stale, which the next step checks anyway.
      if (Date.now() - killedAt < 4000) assert.match(young.stderr, /is mounted/);
      else assert.match(young.stderr, /is mounted|stopped beating/);
      await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 5500 - Date.now())));
      const stale = await runCli(["destroy", "--yes", meta]);
      assert.equal(stale.code, 1, stale.stderr);
      assert.match(stale.stderr, /stopped beating .*--force/);
      // The name must be typed.
      const typed = async (answer: string) => {
        const p = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", CLI, "destroy", "--force", meta],
          cwd: REPO_ROOT,
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const w = p.stdin.getWriter();
        await w.write(new TextEncoder().encode(answer + "\n"));
        await w.close();
        const out = await p.output();
        return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
      };
      const wrong = await typed("not-the-name");
      assert.equal(wrong.code, 1, wrong.stderr);
      assert.match(wrong.stderr, /Not destroyed/);
      assert.ok((await objects(a)) >= 1, "nothing deleted");
      const name = (await status(meta)).name;
      const right = await typed(name);
      assert.equal(right.code, 0, right.stderr);
      assert.equal(await objects(a), 0, "the objects are gone");
      const gone = await runCli(["status", meta]);
      assert.equal(gone.code, 1);
      assert.equal(gone.stderr.trim().split("\n").length, 1, gone.stderr);
    },
  });
}
