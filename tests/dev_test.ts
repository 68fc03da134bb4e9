/**
 * The `./dev` entry point as a new user meets it: its help lists every command, `./dev install`
 * gives a `slayerfs` command that another user runs offline, `./dev compile` explains
 * `DENORT_BIN` when the runtime cannot be downloaded, and `./dev mount` recovers a dead mount.
 *
 * @module
 */

import assert from "node:assert/strict";
import { forceUnmountSync, isMounted, REPO_ROOT } from "./_mount.ts";
import { run } from "./_run.ts";

const DEV = `${REPO_ROOT}/dev`;
const COMMANDS = [
  "mount",
  "install",
  "install-helper",
  "test",
  "ok",
  "cli",
  "compile",
  "deno",
  "help",
];

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-dev-" });
  await Deno.chmod(dir, 0o755); // other users traverse it
  try {
    await fn(dir);
  } finally {
    forceUnmountSync(`${dir}/mnt`);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("./dev help lists every command, and an unknown one is refused with the list", async () => {
  const help = await run(DEV, ["help"]);
  assert.equal(help.code, 0, help.stderr);
  for (const c of COMMANDS) assert.match(help.stdout, new RegExp(`\\./dev ${c}\\b`), c);
  assert.match(help.stdout, /DENORT_BIN/);
  const bad = await run(DEV, ["frobnicate"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command "frobnicate"/);
  for (const c of COMMANDS) assert.match(bad.stderr, new RegExp(`\\./dev ${c}\\b`), c);
});

/** Whether every folder above the clone lets other users through (the launcher's precondition). */
function cloneReadableByAll(): boolean {
  for (let dir = REPO_ROOT; dir !== "/" && dir !== ""; dir = dir.slice(0, dir.lastIndexOf("/"))) {
    if ((Deno.statSync(dir).mode! & 0o005) !== 0o005) return false;
  }
  return true;
}

Deno.test({
  name: "./dev install writes a launcher that nobody runs offline",
  // The README's condition for other users: a clone they can read. A clone under /root is not.
  ignore: !cloneReadableByAll(),
}, async () => {
  await withTemp(async (dir) => {
    const r = await run(DEV, ["install", `${dir}/bin`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...Deno.readDirSync(`${dir}/bin`)].map((e) => e.name), ["slayerfs"]);
    // Another user, no network, no home: starts from the shared cache, downloads nothing.
    const help = await run("unshare", [
      "-n",
      "setpriv",
      "--reuid=65534",
      "--regid=65534",
      "--clear-groups",
      "env",
      "-i",
      "HOME=/nonexistent",
      "PATH=/usr/bin:/bin",
      `${dir}/bin/slayerfs`,
      "--help",
    ], { cwd: dir });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage:/m);
    assert.match(help.stdout, /^ {2}mount +mount a volume/m);
    assert.doesNotMatch(help.stderr, /Download|error/i, help.stderr);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["bin"]);
  });
});

Deno.test("./dev compile says what DENORT_BIN is for when the runtime cannot be downloaded", async () => {
  await withTemp(async (dir) => {
    const r = await run("unshare", ["-n", DEV, "compile", "--output", `${dir}/slayerfs`]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /denort.*dl\.deno\.land/);
    assert.match(r.stderr, /DENORT_BIN=\/path\/to\/denort/);
    const bad = await run("unshare", ["-n", DEV, "compile", "--output", `${dir}/slayerfs`], {
      env: { DENORT_BIN: `${dir}/no-denort` },
    });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /DENORT_BIN=.*no-denort must be the denort runtime of Deno 2\./);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no binary, no temporary file");
  });
});

Deno.test({
  name: "./dev mount mounts again over the dead mount a SIGKILLed daemon left",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await withTemp(async (dir) => {
      const mnt = `${dir}/mnt`;
      const env = { SLAYERFS_HOME: `${dir}/home` };
      const daemonPid = async () =>
        JSON.parse(
          await Deno.readTextFile(`${dir}/home/run/${encodeURIComponent(mnt)}.json`),
        ).pid as number;
      const first = await run(DEV, ["mount", mnt], { env });
      assert.equal(first.code, 0, first.stderr);
      try {
        await Deno.writeTextFile(`${mnt}/f`, "survives");
        Deno.kill(await daemonPid(), "SIGKILL");
        await new Promise((r) => setTimeout(r, 300));
        assert.throws(() => Deno.statSync(mnt), /not connected/i, "the mount is dead");
        const again = await run(DEV, ["mount", mnt], { env });
        assert.equal(again.code, 0, again.stderr);
        assert.doesNotMatch(again.stderr, /Transport endpoint/);
        assert.equal(await Deno.readTextFile(`${mnt}/f`), "survives");
        const u = await run(DEV, ["cli", "umount", mnt], { env });
        assert.equal(u.code, 0, u.stderr);
        assert.ok(!isMounted(mnt));
      } finally {
        try {
          Deno.kill(await daemonPid(), "SIGKILL");
        } catch { /* gone */ }
        forceUnmountSync(mnt);
      }
    });
  },
});
