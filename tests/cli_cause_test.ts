/**
 * Errors that carry their real cause, through the real CLI: a mount by a user without access to
 * `/dev/fuse`, a home folder that cannot be written, an S3 endpoint that refuses connections.
 * Each is one line with a hint, and nothing is created.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CLI, forceUnmountSync, isMounted, REPO_ROOT } from "./_mount.ts";
import { run } from "./_run.ts";
import { errorLines } from "./_io.ts";

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-cause-" });
  await Deno.chmod(dir, 0o755);
  try {
    await fn(dir);
  } finally {
    forceUnmountSync(`${dir}/m`);
    await Deno.remove(dir, { recursive: true });
  }
}

const devFuseOpen = ((Deno.statSync("/dev/fuse").mode ?? 0) & 0o006) === 0o006;

Deno.test({
  name: "a user without /dev/fuse is told so, and no default volume is formatted",
  ignore: devFuseOpen, // where every user may open /dev/fuse, there is nothing to refuse
  async fn() {
    await withTemp(async (dir) => {
      const install = await run(`${REPO_ROOT}/dev`, ["install", `${dir}/bin`]);
      assert.equal(install.code, 0, install.stderr);
      for (const d of ["h", "m"]) {
        await Deno.mkdir(`${dir}/${d}`);
        await Deno.chmod(`${dir}/${d}`, 0o777);
      }
      const r = await run("setpriv", [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        `${dir}/bin/slayerfs`,
        "mount",
        `${dir}/m`,
      ], { cwd: dir, env: { SLAYERFS_HOME: `${dir}/h` } });
      assert.equal(r.code, 1, r.stdout);
      const lines = errorLines(r.stderr);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0]!,
        /^slayerfs: Failed to open \/dev\/fuse: Permission denied \(mount as root/,
      );
      assert.ok(!isMounted(`${dir}/m`));
      assert.deepEqual([...Deno.readDirSync(`${dir}/h`)], [], "nothing formatted");
    });
  },
});

Deno.test("a home folder that cannot be written suggests SLAYERFS_HOME", async () => {
  await withTemp(async (dir) => {
    await Deno.mkdir(`${dir}/home`);
    await Deno.mkdir(`${dir}/m`);
    // A read-only home, in a mount namespace of its own (root writes anywhere else).
    const script = 'mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@"';
    const r = await run("unshare", [
      "-m",
      "sh",
      "-c",
      script,
      "sh",
      `${dir}/home`,
      "env",
      "-u",
      "SLAYERFS_HOME",
      `HOME=${dir}/home`,
      Deno.execPath(),
      "run",
      "-A",
      `${REPO_ROOT}/cli.ts`,
      "mount",
      `${dir}/m`,
    ], { cwd: REPO_ROOT });
    assert.equal(r.code, 1, r.stdout);
    const lines = errorLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0]!,
      new RegExp(
        `^slayerfs: Cannot create "${dir}/home/\\.slayerfs/default": Read-only file system; ` +
          "set SLAYERFS_HOME to a folder you can write",
      ),
    );
    assert.ok(!isMounted(`${dir}/m`));
  });
});

Deno.test("an S3 endpoint that refuses connections is said so once", async () => {
  await withTemp(async (dir) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close(); // nothing listens there now: connections are refused
    const url = `s3://bkt/p?endpoint=http://127.0.0.1:${port}&region=us-east-1&path_style=true`;
    // Credentials for this process only: other test files share the environment.
    const r = await run(Deno.execPath(), [
      "run",
      "-A",
      CLI,
      "format",
      "--storage",
      url,
      `sqlite3://${dir}/meta.db`,
      "v",
    ], { cwd: REPO_ROOT, env: { AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" } });
    assert.equal(r.code, 1, r.stdout);
    const lines = errorLines(r.stderr);
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0]!,
      new RegExp(`127\\.0\\.0\\.1:${port}.*cannot connect: Connection refused`),
    );
    assert.equal(lines[0]!.match(/Connection refused/g)?.length, 1, lines[0]);
    assert.equal(lines[0]!.match(/Request to/g), null, lines[0]);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "no metadata file");
  });
});
