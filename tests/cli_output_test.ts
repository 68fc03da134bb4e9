/**
 * What `status` and `info` print on a real background mount: `status` for people by default and
 * as JSON with `--json`, from any path inside the mount, the hottest files by path; `info` with
 * logical and stored sizes, inline blocks as inline, and a directory's recursive summary; and
 * both refuse a dead mount (its daemon SIGKILLed) with one clear line and exit 1.
 *
 * @module
 */

import assert from "node:assert/strict";
import { forceUnmountSync, isMounted, runCli } from "./_mount.ts";
import { errorLines } from "./_io.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: "status and info print for people, --json for scripts, and refuse a dead mount",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-out-" });
    const mnt = `${dir}/mnt`;
    const meta = `sqlite3://${dir}/meta.db`;
    let pid = 0;
    try {
      await Deno.mkdir(mnt);
      const f = await runCli(["format", "--storage", `file://${dir}/blocks`, meta, "out-vol"]);
      assert.equal(f.code, 0, f.stderr);
      const m = await runCli(["mount", "--cache-dir", `${dir}/cache`, meta, mnt]);
      assert.equal(m.code, 0, m.stderr);
      await Deno.mkdir(`${mnt}/d/e`, { recursive: true });
      await Deno.writeFile(`${mnt}/d/zeros`, new Uint8Array(5_000_000));
      await Deno.writeTextFile(`${mnt}/d/e/small`, "hi\n");
      const hot = crypto.getRandomValues(new Uint8Array(60_000));
      await Deno.writeFile(`${mnt}/d/hot.bin`, hot);
      await Deno.link(`${mnt}/d/hot.bin`, `${mnt}/d/e/hot-link`);
      // Written blocks are cached: reading them back hits the cache.
      for (let i = 0; i < 3; i++) assert.deepEqual(await Deno.readFile(`${mnt}/d/hot.bin`), hot);

      // --json: the daemon's state, from a path deep inside the mount.
      let state: Record<string, unknown> = {};
      for (let i = 0; i < 50; i++) {
        const j = await runCli(["status", "--json", `${mnt}/d/e`]);
        assert.equal(j.code, 0, j.stderr);
        state = JSON.parse(j.stdout);
        if ((state.hottestFiles as unknown[] | undefined)?.length) break;
        await sleep(200);
      }
      pid = state.pid as number;
      assert.equal(state.volume, "out-vol");
      assert.equal(state.mountpoint, mnt);
      assert.ok((state.hottestFiles as unknown[]).length > 0, JSON.stringify(state));

      // For people: labelled lines, tiers with sizes and hit rates, hottest files by path.
      const st = await runCli(["status", `${mnt}/d/e/small`]);
      assert.equal(st.code, 0, st.stderr);
      assert.doesNotMatch(st.stdout, /^\s*[{"]/, "not JSON");
      assert.match(st.stdout, new RegExp(`^Volume "out-vol" mounted at ${mnt} \\(pid ${pid}, `));
      assert.match(st.stdout, /^ {2}Storage: +file:\/\//m);
      assert.match(st.stdout, /^ {2}Usage: +[\d.]+ MiB used, \d+ inodes$/m);
      assert.match(st.stdout, /^ {2}Cache: +.*hits.*\(\d+\.\d% hit rate\)$/m);
      assert.match(
        st.stdout,
        /^ {4}memory +[\d.]+ \w?i?B of 32\.0 MiB +\d+ blocks +[\d.]+% hits$/m,
      );
      assert.match(st.stdout, new RegExp(`^ {4}${dir}/cache +.* of [0-9.]+ [KMGT]iB`, "m"));
      assert.match(st.stdout, /^ {4}\d+ +\/d\/(hot\.bin|e\/hot-link)$/m, st.stdout);
      assert.match(st.stdout, /^ {4}write +\d+ +0 +\d+ µs$/m);

      // info of a file: logical and stored size, each block with its object.
      const zi = await runCli(["info", `${mnt}/d/zeros`]);
      assert.equal(zi.code, 0, zi.stderr);
      assert.match(zi.stdout, /^ {2}size: +4\.8 MiB \(5000000 bytes\)$/m);
      assert.match(zi.stdout, /^ {2}stored: +[\d.]+ KiB in the block store, 0 B inline/m);
      assert.match(zi.stdout, /block 0 \(4\.0 MiB\): chunks\/0\/0\/\d+_0_4194304, [\d.]+ KiB lz4/);
      // A small file is inline: no object key that does not exist.
      const si = await runCli(["info", `${mnt}/d/e/small`]);
      assert.equal(si.code, 0, si.stderr);
      assert.match(si.stdout, /^ {2}stored: +0 B in the block store, 3 B inline in the metadata$/m);
      assert.match(si.stdout, /block 0 \(3 B\): inline in the metadata/);
      assert.doesNotMatch(si.stdout, /chunks\//);
      // info of a directory: the whole tree, a hard-linked file once; no progress line here.
      const di = await runCli(["info", `${mnt}/d`]);
      assert.equal(di.code, 0, di.stderr);
      assert.match(di.stdout, /^ {2}files: +3$/m);
      assert.match(di.stdout, /^ {2}directories: +2$/m);
      assert.match(di.stdout, /^ {2}length: +4\.8 MiB \(5060003 bytes\)$/m);
      assert.match(di.stdout, /^ {2}stored: +[\d.]+ KiB in the block store, 3 B inline/m);
      assert.deepEqual(errorLines(di.stderr), []);

      // A dead mount: one line, exit 1, for status, info and status --json alike.
      Deno.kill(pid, "SIGKILL");
      await sleep(300);
      for (const args of [["status", `${mnt}/d`], ["status", "--json", mnt], ["info", mnt]]) {
        const r = await runCli(args);
        assert.equal(r.code, 1, `${args.join(" ")}: ${r.stdout}`);
        assert.equal(r.stdout, "");
        const lines = errorLines(r.stderr);
        assert.equal(lines.length, 1, r.stderr);
        assert.match(
          lines[0]!,
          new RegExp(
            `mount at "${mnt}" is dead: its daemon \\(pid ${pid}\\) is gone ` +
              `\\(Transport endpoint is not connected\\)`,
          ),
        );
      }
      const u = await runCli(["umount", mnt]);
      assert.equal(u.code, 0, u.stderr);
      assert.ok(!isMounted(mnt));
    } finally {
      try {
        if (pid) Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
      forceUnmountSync(mnt);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
