/**
 * `tar -x` through a real mount keeps what the archive says of each file: GNU tar writes a file,
 * then sets its mtime, owner and mode through the open descriptor (`utimensat`, `fchown`,
 * `fchmod`) and closes it. The mount commits those changes with the file's data at the close, in
 * one transaction (`core/vfs.ts` `setattr`, `core/writer.ts` `hold`); this checks that every file,
 * folder and link comes out as it went in, both through the mount that extracted it and after a
 * restart (from the metadata engine alone), and that a file's changes count one write
 * transaction for the data and the three changes together.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startSlayer } from "./_mount.ts";
import { run } from "./_run.ts";
import { bytesEqual, pseudoRandom } from "./posix/_helpers.ts";

/** mode, owner, mtime (s) and size of every entry below `root`, by relative path. */
async function describe(root: string, rel = ""): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of Deno.readDir(`${root}/${rel}`)) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    const st = await Deno.lstat(`${root}/${path}`);
    const mtime = Math.floor(st.mtime!.getTime() / 1000);
    const size = e.isDirectory ? "-" : st.size;
    out.set(path, `${(st.mode! & 0o7777).toString(8)} ${st.uid}:${st.gid} ${mtime} ${size}`);
    if (e.isDirectory) { for (const [k, v] of await describe(root, path)) out.set(k, v); }
  }
  return out;
}

/** Runs `cmd`, failing with its stderr unless it exits 0. */
async function ok(cmd: string, args: string[]): Promise<void> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
}

/** Write transactions so far, from the mount's Prometheus counters. */
async function writeTxns(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  let n = 0;
  for (
    const m of text.matchAll(
      /^slayerfs_meta_txn_duration_seconds_count\{[^}]*kind="write"[^}]*\} (\S+)/gm,
    )
  ) {
    n += Number(m[1]);
  }
  return n;
}

Deno.test({
  name: "tar -x through the mount keeps modes, owners and mtimes, committed with the data",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const work = await Deno.makeTempDir({ prefix: "slayerfs-tar-" });
    const port = 19000 + Math.floor(Math.random() * 1000);
    await using fs = await startSlayer({ extraArgs: ["--metrics", `127.0.0.1:${port}`] });
    try {
      const src = `${work}/src`;
      await Deno.mkdir(`${src}/sub/deeper`, { recursive: true });
      const files: Array<[string, number, number, number]> = [ // path, size, mode, uid/gid
        ["a.txt", 1000, 0o644, 0],
        ["b.bin", 300_000, 0o600, 1234],
        ["sub/run.sh", 20, 0o755, 0],
        ["sub/deeper/ro", 5000, 0o444, 5678],
        ["sub/deeper/setgid", 10, 0o2750, 1234],
        ["empty", 0, 0o640, 0],
      ];
      for (const [i, [path, size, mode, owner]] of files.entries()) {
        const p = `${src}/${path}`;
        await Deno.writeFile(p, pseudoRandom(size, i));
        await Deno.chown(p, owner, owner);
        await Deno.chmod(p, mode);
        await Deno.utime(p, 1_600_000_000 + i, 1_500_000_000 + i * 1000);
      }
      await Deno.symlink("a.txt", `${src}/link`);
      await Deno.link(`${src}/a.txt`, `${src}/sub/hard`);
      await Deno.chmod(`${src}/sub`, 0o750);
      for (const d of ["sub/deeper", "sub", "."]) await Deno.utime(`${src}/${d}`, 1, 1_400_000_000);
      await ok("tar", ["-cf", `${work}/src.tar`, "-C", src, "."]);
      const want = await describe(src);

      await Deno.mkdir(`${fs.mnt}/x`);
      const before = await writeTxns(port);
      await ok("tar", ["-xf", `${work}/src.tar`, "-C", `${fs.mnt}/x`]);
      const txns = (await writeTxns(port)) - before;
      assert.deepEqual(await describe(`${fs.mnt}/x`), want, "through the mount that extracted it");
      // Per file written, a create and a commit (29 in all here, where giving each file's
      // utimensat, fchown and fchmod transactions of their own took 44): the empty file,
      // never written, and the folders and links (created, then given their owner, mode and
      // times) take up to 18.
      assert.ok(txns <= 2 * files.length + 18, `${txns} write transactions`);

      await fs.restart();
      assert.deepEqual(await describe(`${fs.mnt}/x`), want, "after a restart");
      for (const [i, [path, size]] of files.entries()) {
        bytesEqual(await Deno.readFile(`${fs.mnt}/x/${path}`), pseudoRandom(size, i), path);
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
