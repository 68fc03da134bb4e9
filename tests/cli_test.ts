/**
 * The command line: bad input gets one clear line on stderr and a non-zero exit; `umount`,
 * `status` and `info` work on a real mount.
 *
 * @module
 */

import assert from "node:assert/strict";
import { errorLines } from "./_cli.ts";
import { CLI, forceUnmountSync, isMounted, mountId, runCli, startSlayer } from "./_mount.ts";

/** Asserts a failed run with exactly one clear error line matching `pattern`. */
function assertOneLineError(
  r: { code: number; stdout: string; stderr: string },
  pattern: RegExp,
  what: string,
): void {
  assert.notEqual(r.code, 0, `${what}: exit code`);
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, `${what}: expected one line on stderr, got:\n${r.stderr}`);
  assert.doesNotMatch(lines[0]!, /^\s*at |Uncaught|stack/i, `${what}: no stack trace`);
  assert.match(lines[0]!, pattern, `${what}: message`);
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-cli-" });
  try {
    await fn(dir);
  } finally {
    forceUnmountSync(`${dir}/mnt`);
    await Deno.remove(dir, { recursive: true });
  }
}

/** Formats a volume with file storage in `dir` and makes its mountpoint `dir/mnt`. */
async function formatIn(dir: string, name: string): Promise<{ meta: string; mnt: string }> {
  const meta = `sqlite3://${dir}/meta.db`;
  const mnt = `${dir}/mnt`;
  const f = await runCli(["format", "--storage", `file://${dir}/blocks`, meta, name]);
  assert.equal(f.code, 0, f.stderr);
  await Deno.mkdir(mnt);
  return { meta, mnt };
}

Deno.test("cli rejects an unknown flag with one line", async () => {
  await withTempDir(async (dir) => {
    const r = await runCli(["format", "--bogus-flag", `sqlite3://${dir}/meta.db`, "v"]);
    assertOneLineError(r, /bogus-flag/, "unknown flag");
    const m = await runCli(["mount", "--nope", `sqlite3://${dir}/meta.db`, `${dir}/mnt`]);
    assertOneLineError(m, /nope/, "unknown mount flag");
    const meta = `sqlite3://${dir}/meta.db`;
    for (
      const [o, re] of [["frob", /frob/], ["loop=fast", /loop=fast/], ["attr_timeout=x", /attr/]]
    ) {
      const r2 = await runCli(["mount", "-o", o as string, meta, `${dir}/mnt`]);
      assertOneLineError(r2, re as RegExp, `mount -o ${o}`);
      assert.equal(r2.code, 2, `mount -o ${o} is a usage error`);
    }
    const spin = await runCli(["mount", "-o", "loop_spin_us=-1", meta, `${dir}/mnt`]);
    assertOneLineError(spin, /loop_spin_us/, "negative spin");
  });
});

Deno.test("cli rejects an unknown command with one line", async () => {
  const r = await runCli(["frobnicate"]);
  assertOneLineError(r, /frobnicate/, "unknown command");
});

Deno.test("cli rejects unknown URL schemes with one line", async () => {
  await withTempDir(async (dir) => {
    const s = await runCli(["format", "--storage", "ftp://host/x", `sqlite3://${dir}/m.db`, "v"]);
    assertOneLineError(s, /ftp/, "unknown storage scheme");
    const m = await runCli(["format", "--storage", `file://${dir}/blocks`, "bogus://x", "v"]);
    assertOneLineError(m, /bogus/, "unknown meta scheme");
    await Deno.mkdir(`${dir}/mnt`);
    const mm = await runCli(["mount", "bogus://x", `${dir}/mnt`]);
    assertOneLineError(mm, /"bogus".*sqlite3, mem/, "mount: unknown meta scheme");
    assert.equal(mm.code, 2, "an unknown scheme is a usage error");
  });
});

Deno.test("cli mount -d creates a missing mountpoint and refuses a non-empty one", async () => {
  await withTempDir(async (dir) => {
    const meta = `sqlite3://${dir}/meta.db`;
    const f = await runCli(["format", "--storage", `file://${dir}/blocks`, meta, "v"]);
    assert.equal(f.code, 0, f.stderr);
    const fresh = `${dir}/new/mnt`;
    const m = await runCli(["mount", "-d", "--log", `${dir}/log`, meta, fresh]);
    try {
      assert.equal(m.code, 0, m.stderr);
      assert.ok(isMounted(fresh), "-d returns once mounted");
      await Deno.writeTextFile(`${fresh}/f`, "x");
      assert.equal((await runCli(["umount", fresh])).code, 0);
    } finally {
      forceUnmountSync(fresh);
    }
    assert.ok((await Deno.stat(fresh)).isDirectory, "the created mountpoint stays");
    await Deno.mkdir(`${dir}/mnt`);
    await Deno.writeTextFile(`${dir}/mnt/occupied`, "x");
    const busy = await runCli(["mount", meta, `${dir}/mnt`]);
    assertOneLineError(busy, /empty/i, "non-empty mountpoint");
    assert.ok(!isMounted(`${dir}/mnt`));
    // A mount of a missing volume creates no mountpoint.
    const bad = await runCli(["mount", "-o", "nonempty", `sqlite3://${dir}/none.db`, `${dir}/x/y`]);
    assertOneLineError(bad, /does not exist/, "missing volume");
    await assert.rejects(Deno.stat(`${dir}/x`), Deno.errors.NotFound);
  });
});

Deno.test("cli mount -f serves in the terminal until SIGTERM", async () => {
  await withTempDir(async (dir) => {
    const { meta, mnt } = await formatIn(dir, "fg");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "mount", "-f", meta, mnt],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let done = false;
    const status = child.status.finally(() => done = true);
    try {
      for (let i = 0; i < 400 && !isMounted(mnt) && !done; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(isMounted(mnt), "-f mounts");
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(!done, "-f keeps serving in this process");
      child.kill("SIGTERM");
      assert.equal((await status).code, 0);
      assert.ok(!isMounted(mnt), "SIGTERM unmounts");
    } finally {
      if (!done) child.kill("SIGKILL");
      await status;
      await child.stderr.cancel().catch(() => {});
      forceUnmountSync(mnt);
    }
  });
});

Deno.test({
  name: "cli refuses to mount on a mountpoint that is already mounted",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using fs = await startSlayer();
    await Deno.writeTextFile(`${fs.mnt}/keep`, "kept");
    const id = mountId(fs.mnt);
    const r = await runCli(["mount", fs.meta, fs.mnt]);
    assertOneLineError(r, /mounted|busy|in use/i, "already mounted");
    assert.equal(mountId(fs.mnt), id, "the first mount is untouched");
    assert.equal(await Deno.readTextFile(`${fs.mnt}/keep`), "kept");
  },
});

Deno.test({
  name: "cli refuses to reformat with other settings and keeps the data",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using fs = await startSlayer({ formatArgs: ["--block-size", "4M"] });
    await Deno.writeTextFile(`${fs.mnt}/precious`, "data");
    await fs.restart();
    const r = await runCli([
      "format",
      "--storage",
      fs.storage,
      "--block-size",
      "1M",
      fs.meta,
      "test",
    ]);
    assertOneLineError(r, /block|format|exist/i, "format with another block size");
    await fs.restart();
    assert.equal(await Deno.readTextFile(`${fs.mnt}/precious`), "data");
  },
});

Deno.test("cli refuses corrupt metadata with one line", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/meta.db`, crypto.getRandomValues(new Uint8Array(8192)));
    await Deno.mkdir(`${dir}/mnt`);
    const r = await runCli(["mount", `sqlite3://${dir}/meta.db`, `${dir}/mnt`]);
    assertOneLineError(r, /meta|corrupt|database|format/i, "corrupt metadata");
    assert.ok(!isMounted(`${dir}/mnt`));
    const s = await runCli(["status", `sqlite3://${dir}/meta.db`]);
    assert.notEqual(s.code, 0, "status of corrupt metadata fails");
  });
});

Deno.test("cli mounts in the background, reports status and info, and unmounts", async () => {
  await withTempDir(async (dir) => {
    const { meta, mnt } = await formatIn(dir, "cli-vol");
    const log = `${dir}/daemon.log`;
    const m = await runCli(["mount", "--log", log, meta, mnt]);
    assert.equal(m.code, 0, `background mount: ${m.stderr}`);
    try {
      assert.ok(isMounted(mnt), "mounted when `mount` returns");
      await Deno.writeTextFile(`${mnt}/file`, "hello");
      const st = await runCli(["status", mnt]);
      assert.equal(st.code, 0, `status: ${st.stderr}`);
      assert.match(st.stdout, /cli-vol/, "status names the volume");
      // The state is refreshed every 2 s: wait for the create and write to be counted.
      let ops: Record<string, { count: number; errors: number; meanUs: number }> = {};
      for (let i = 0; i < 50 && !(ops.create?.count && ops.write?.count); i++) {
        await new Promise((r) => setTimeout(r, 100));
        ops = JSON.parse((await runCli(["status", "--json", mnt])).stdout).ops ?? {};
      }
      assert.equal(ops.create?.count, 1, `status counts the create: ${JSON.stringify(ops)}`);
      assert.ok(ops.write!.count >= 1 && ops.write!.errors === 0, "status counts the write");
      const info = await runCli(["info", `${mnt}/file`]);
      assert.equal(info.code, 0, `info: ${info.stderr}`);
      assert.notEqual(info.stdout.trim(), "", "info prints something");
      const u = await runCli(["umount", mnt]);
      assert.equal(u.code, 0, `umount: ${u.stderr}`);
      assert.ok(!isMounted(mnt), "unmounted when `umount` returns");
      const logged = await Deno.readTextFile(log);
      assert.match(logged, /^slayerfs: daemon: Serving "cli-vol" at /m, logged);
      assert.match(logged, /^slayerfs: daemon: Stopped$/m, logged);
      const again = await runCli(["umount", mnt]);
      assertOneLineError(again, /not|mount/i, "umount of a directory that is not mounted");
      const st2 = await runCli(["status", mnt]);
      assert.notEqual(st2.code, 0, "status of an unmounted directory fails");
      const info2 = await runCli(["info", "/"]);
      assert.notEqual(info2.code, 0, "info outside SlayerFS fails");
      // The data survived: mount again and read it.
      const m2 = await runCli(["mount", meta, mnt]);
      assert.equal(m2.code, 0, m2.stderr);
      assert.equal(await Deno.readTextFile(`${mnt}/file`), "hello");
      assert.equal((await runCli(["umount", mnt])).code, 0);
    } finally {
      forceUnmountSync(mnt);
    }
  });
});

Deno.test({
  name: "cli mount clears a dead mount left by a SIGKILLed daemon",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using fs = await startSlayer();
    await Deno.writeTextFile(`${fs.mnt}/f`, "survives");
    await fs.kill9();
    assert.ok(isMounted(fs.mnt), "the dead mount is still listed");
    await fs.restart();
    assert.equal(await Deno.readTextFile(`${fs.mnt}/f`), "survives");
  },
});

Deno.test("cli gc reports and deletes leaked uploads next to a live mount, and keeps every file", async () => {
  await withTempDir(async (dir) => {
    const { meta, mnt } = await formatIn(dir, "gc-vol");
    assert.equal((await runCli(["mount", meta, mnt])).code, 0);
    try {
      const big = Uint8Array.from({ length: 5 << 20 }, (_, i) => (i * 7 + (i >> 12)) & 0xff);
      const small = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 13) & 0xff);
      await Deno.writeFile(`${mnt}/big`, big);
      await Deno.writeFile(`${mnt}/small`, small);
      // What a writer that died between upload and commit leaves: a block of slice 999999 that
      // no file has, two hours old; and one of slice 999998 uploaded just now.
      const leaked = "chunks/0/999/999999_0_4096";
      const young = "chunks/0/999/999998_0_10";
      await Deno.mkdir(`${dir}/blocks/chunks/0/999`, { recursive: true });
      await Deno.writeFile(`${dir}/blocks/${leaked}`, new Uint8Array(4096));
      const old = new Date(Date.now() - 7_200_000);
      await Deno.utime(`${dir}/blocks/${leaked}`, old, old);
      await Deno.writeFile(`${dir}/blocks/${young}`, new Uint8Array(10));

      const dry = await runCli(["gc", meta]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /^leaked: 1 \(0\.0 MiB\) \(run with --delete/m, dry.stdout);
      assert.match(dry.stdout, new RegExp(`^  ${leaked}$`, "m"));
      assert.match(dry.stdout, /may be in flight\): 1$/m);
      await Deno.stat(`${dir}/blocks/${leaked}`); // still there

      const del = await runCli(["gc", "--delete", meta]);
      assert.equal(del.code, 0, del.stderr);
      assert.match(del.stdout, /^leaked: 1 .*\(deleted\)$/m, del.stdout);
      await assert.rejects(Deno.stat(`${dir}/blocks/${leaked}`), Deno.errors.NotFound);
      await Deno.stat(`${dir}/blocks/${young}`);
      assert.match((await runCli(["gc", meta])).stdout, /^leaked: 0 /m);

      assert.deepEqual(await Deno.readFile(`${mnt}/big`), big);
      assert.deepEqual(await Deno.readFile(`${mnt}/small`), small);
      assert.equal((await runCli(["umount", mnt])).code, 0);
      assert.equal((await runCli(["mount", meta, mnt])).code, 0);
      assert.deepEqual(await Deno.readFile(`${mnt}/big`), big, "after a remount");
      assert.equal((await runCli(["umount", mnt])).code, 0);

      assertOneLineError(await runCli(["gc", "--min-age", "-5", meta]), /min-age/, "bad age");
      assertOneLineError(await runCli(["gc"]), /META_URL/, "no url");
      assertOneLineError(
        await runCli(["gc", `sqlite3://${dir}/none.db`]),
        /does not exist/,
        "missing metadata",
      );
    } finally {
      forceUnmountSync(mnt);
    }
  });
});
