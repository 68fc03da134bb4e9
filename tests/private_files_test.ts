/**
 * What SlayerFS keeps on the local disk is owner-only: another user (uid 65534) can read neither
 * the metadata database and its WAL, nor the file store's blocks, the disk cache, the writeback
 * stage, the state files or the daemon's log — and a volume left with the old modes (0644 files
 * in 0755 folders) is closed at its next mount. Through the real CLI and a real mount.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CLI, forceUnmountSync, isMounted, REPO_ROOT } from "./_mount.ts";
import { run, type RunResult } from "./_run.ts";
import { runAsNobody } from "./posix/_helpers.ts";

const MARKER = `secret-${crypto.randomUUID()}`;

/** A text file of `n` bytes with {@linkcode MARKER} at its start and every 64 KiB. */
function secretText(n: number): Uint8Array {
  const out = new Uint8Array(n).fill(0x2e);
  const mark = new TextEncoder().encode(MARKER);
  for (let at = 0; at + mark.length <= n; at += 65536) out.set(mark, at);
  return out;
}

async function walk(path: string, fn: (path: string, isDir: boolean) => Promise<void>) {
  await fn(path, true);
  for await (const e of Deno.readDir(path)) {
    const p = `${path}/${e.name}`;
    if (e.isDirectory) await walk(p, fn);
    else await fn(p, false);
  }
}

Deno.test({
  name: "local files are owner-only, and an old volume's are closed at its next mount",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-private-" });
    await Deno.chmod(dir, 0o755); // uid 65534 may look inside, as in a home folder
    const home = `${dir}/home`;
    await Deno.mkdir(home, { mode: 0o755 });
    await Deno.chmod(home, 0o755);
    const cli = (args: string[]): Promise<RunResult> =>
      run(Deno.execPath(), ["run", "-A", CLI, ...args], {
        cwd: REPO_ROOT,
        env: { SLAYERFS_HOME: home },
      });
    const meta = `sqlite3://${dir}/meta.db`;
    const mnt = `${dir}/mnt`;
    const mount = async () => {
      const r = await cli([
        "mount",
        "--cache-dir",
        `${dir}/cache`,
        "--writeback",
        "--writeback-dir",
        `${dir}/stage`,
        meta,
        mnt,
      ]);
      assert.equal(r.code, 0, r.stderr);
    };
    const umount = async () => assert.equal((await cli(["umount", mnt])).code, 0);
    const state = `${home}/run/${encodeURIComponent(mnt)}.json`;
    const paths = [
      `${dir}/meta.db`,
      `${dir}/meta.db-wal`,
      `${dir}/blocks`,
      `${dir}/cache`,
      `${dir}/stage`,
      `${home}/run`,
      state,
      `${home}/slayerfs.log`,
    ];
    /** Whether uid 65534 finds the marker in (or under) `path`, and what grep said. */
    const nobodyFinds = async (path: string) => {
      const r = await runAsNobody('grep -rl -- "$1" "$2"', MARKER, path);
      return { found: r.code === 0, said: r.stderr };
    };
    const assertClosed = async (when: string, fresh: boolean) => {
      for (const path of paths) {
        const { found, said } = await nobodyFinds(path);
        assert.ok(!found, `${when}: uid 65534 read ${path}`);
        assert.match(said, /Permission denied/, `${when}: ${path}`);
        const mode = Deno.statSync(path).mode! & 0o777;
        assert.equal(mode & 0o077, 0, `${when}: ${path} is ${mode.toString(8)}`);
      }
      // A fresh volume is owner-only all the way down; an old one is closed by its folders (its
      // files are not walked at mount).
      if (!fresh) return;
      for (const root of [`${dir}/blocks`, `${dir}/cache`]) {
        await walk(root, async (p, isDir) => {
          const mode = (await Deno.stat(p)).mode! & 0o777;
          assert.equal(mode & 0o077, 0, `${when}: ${p} is ${mode.toString(8)}`);
          if (!isDir) assert.equal(mode, 0o600, p);
        });
      }
    };
    try {
      await Deno.mkdir(mnt);
      const f = await cli([
        "format",
        "--compress",
        "none",
        "--storage",
        `file://${dir}/blocks`,
        meta,
        "private",
      ]);
      assert.equal(f.code, 0, f.stderr);
      await mount();
      // A small file (inlined in the metadata) and a large one (blocks), both 0600 on the mount.
      await Deno.writeFile(`${mnt}/small`, secretText(2000), { mode: 0o600 });
      await Deno.writeFile(`${mnt}/large`, secretText(3 << 20), { mode: 0o600 });
      assert.equal((await runAsNobody('cat "$1"', `${mnt}/large`)).code, 1, "the mount denies");
      await assertClosed("while mounted", true);
      await umount();

      // A volume as older versions left it: 0644 files in 0755 folders.
      for (const root of [`${dir}/blocks`, `${dir}/cache`, `${dir}/stage`, `${home}/run`]) {
        await walk(root, (p, isDir) => Deno.chmod(p, isDir ? 0o755 : 0o644));
      }
      for (const p of [`${dir}/meta.db`, `${home}/slayerfs.log`]) await Deno.chmod(p, 0o644);
      assert.ok((await nobodyFinds(`${dir}/blocks`)).found, "the old modes leak (the test works)");
      await mount();
      await Deno.writeFile(`${mnt}/more`, secretText(1 << 20), { mode: 0o600 });
      await assertClosed("after the next mount", false);
      assert.deepEqual(await Deno.readFile(`${mnt}/large`), secretText(3 << 20));
      await umount();
    } finally {
      if (isMounted(mnt)) await cli(["umount", mnt]).catch(() => {});
      forceUnmountSync(mnt);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
