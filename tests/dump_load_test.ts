/**
 * `slayerfs dump` and `slayerfs load` on every engine of `_engines.ts`: a volume written through a
 * real mount (files over several chunks with holes, overwrites, inline blocks, dedup, folders,
 * symlinks, hard links, xattrs, a FIFO, a deleted file) is dumped, migrated to SQLite, back into
 * a fresh volume of the engine, and into the memory engine; every dump of a copy has the same
 * records, the copies check clean with fsck, and the volume loaded back, mounted on the same
 * store, reads the same bytes. A non-empty target and a truncated dump are refused.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { MemoryKvEngine } from "../backends/kv_memory.ts";
import { dumpMeta, loadMeta, readLines } from "../core/dump/mod.ts";
import { engineFixtures } from "./_engines.ts";
import { getxattr, setxattr } from "./_libc_xattr.ts";
import { CLI, REPO_ROOT, runCli, startSlayer } from "./_mount.ts";
import { run } from "./_run.ts";

const MiB = 1 << 20;

/** Deterministic pseudo-random bytes. */
function bytes(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

/** Writes the test tree under `root`; returns the expected contents of its regular files. */
async function populate(root: string): Promise<Map<string, Uint8Array>> {
  const files = new Map<string, Uint8Array>();
  const put = async (rel: string, data: Uint8Array) => {
    await Deno.writeFile(`${root}/${rel}`, data);
    files.set(rel, data);
  };
  await Deno.mkdir(`${root}/dir/sub/deep`, { recursive: true });
  await Deno.mkdir(`${root}/empty`);
  await put("dir/big.bin", bytes(300 * 1024, 1)); // several 64 KiB blocks
  await put("dir/sub/small.txt", new TextEncoder().encode("inline block\n")); // inline
  await put("dir/sub/deep/dup1.bin", bytes(128 * 1024, 7)); // dedup: same blocks twice
  await put("dir/sub/deep/dup2.bin", bytes(128 * 1024, 7));
  await put("é ünïcödé name.txt", bytes(5000, 3));
  // Two chunks (64 MiB each) with a hole between them, and an overwrite in the first.
  const sparse = new Uint8Array(70 * MiB + 1000);
  {
    using f = await Deno.open(`${root}/sparse.bin`, { write: true, create: true });
    const a = bytes(200 * 1024, 11);
    const b = bytes(100 * 1024, 12);
    const c = bytes(1000, 13);
    await f.write(a);
    sparse.set(a, 0);
    await f.seek(70 * MiB, Deno.SeekMode.Start);
    await f.write(c);
    sparse.set(c, 70 * MiB);
    await f.seek(50 * 1024, Deno.SeekMode.Start);
    await f.write(b);
    sparse.set(b, 50 * 1024);
  }
  files.set("sparse.bin", sparse);
  // Garbage: a deleted file.
  await Deno.writeFile(`${root}/gone.bin`, bytes(100 * 1024, 5));
  await Deno.remove(`${root}/gone.bin`);
  await Deno.symlink("dir/big.bin", `${root}/link`);
  await Deno.link(`${root}/dir/big.bin`, `${root}/dir/sub/hard`);
  files.set("dir/sub/hard", files.get("dir/big.bin")!);
  setxattr(`${root}/dir/big.bin`, "user.color", new TextEncoder().encode("blue"));
  setxattr(`${root}/dir`, "user.bin", bytes(40, 9));
  const r = await run("mkfifo", [`${root}/fifo`]);
  assert.equal(r.code, 0, r.stderr);
  return files;
}

/** Checks the tree `populate` wrote, read through the mount at `root`. */
async function verify(root: string, files: Map<string, Uint8Array>): Promise<void> {
  for (const [rel, data] of files) {
    const got = await Deno.readFile(`${root}/${rel}`);
    assert.equal(got.byteLength, data.byteLength, `${rel}: size`);
    assert.ok(Buffer.compare(got, data) === 0, `${rel}: contents`);
  }
  assert.equal(await Deno.readLink(`${root}/link`), "dir/big.bin");
  assert.equal((await Deno.stat(`${root}/dir/big.bin`)).nlink, 2);
  assert.equal((await Deno.lstat(`${root}/fifo`)).isFifo, true);
  assert.equal((await Deno.stat(`${root}/empty`)).isDirectory, true);
  assert.equal(new TextDecoder().decode(getxattr(`${root}/dir/big.bin`, "user.color")), "blue");
  assert.deepEqual(getxattr(`${root}/dir`, "user.bin"), bytes(40, 9));
}

/** The dump's lines without its header (which holds the time and the engine). */
function body(dump: string): string {
  return dump.slice(dump.indexOf("\n") + 1);
}

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args);
  assert.equal(r.code, 0, `slayerfs ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

for (const fixture of engineFixtures) {
  Deno.test(`dump and load round-trip a volume (${fixture.name})`, async () => {
    await using server = await fixture.start();
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-dump-" });
    try {
      const storage = `file://${dir}/blocks`;
      const source = server.newVolumeUrl();
      let files: Map<string, Uint8Array>;
      {
        await using m = await startSlayer({
          meta: source,
          storage,
          formatArgs: ["--block-size", "64K", "--dedup"],
        });
        files = await populate(m.mnt);
      }
      await cli(["dump", source, `${dir}/one.json`]);
      const one = await Deno.readTextFile(`${dir}/one.json`);
      for (const t of ["format", "counter", "inode", "entry", "chunk", "symlink", "xattr"]) {
        assert.ok(one.includes(`{"t":"${t}"`), `the dump has ${t} records`);
      }
      for (const t of ["slice", "inline", "blob"]) {
        assert.ok(one.includes(`{"t":"${t}"`), `the dump has ${t} records`);
      }
      assert.ok(!one.includes(`{"t":"raw"`), "every key of this version is known");
      assert.ok(one.includes('"name":"é ünïcödé name.txt"'), "names are text");

      // Migrated to SQLite (from standard input), dumped to standard output, and back into a
      // fresh volume of the fixture's engine: every dump has the same records.
      const copy = `sqlite3://${dir}/copy.db`;
      const load = await new Deno.Command("sh", {
        args: [
          "-c",
          `exec "$0" run -A "$1" load "$2" - < "$3"`,
          Deno.execPath(),
          CLI,
          copy,
          `${dir}/one.json`,
        ],
        cwd: REPO_ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(load.code, 0, new TextDecoder().decode(load.stderr));
      const two = await cli(["dump", copy, "-"]);
      assert.equal(body(two), body(one), "the SQLite copy dumps identically");
      await Deno.writeTextFile(`${dir}/two.json`, two);
      const target = server.newVolumeUrl();
      await cli(["load", target, `${dir}/two.json`]);
      await cli(["dump", target, `${dir}/three.json`]);
      const three = await Deno.readTextFile(`${dir}/three.json`);
      assert.equal(body(three), body(one), "the volume loaded back dumps identically");

      // Into the memory engine, in process.
      const mem = new MemoryKvEngine();
      try {
        using f = await Deno.open(`${dir}/one.json`);
        await loadMeta(mem, readLines(f.readable), { batch: 3 });
        let four = "";
        await dumpMeta(mem, (t) => {
          four += t;
          return Promise.resolve();
        }, { batch: 7 });
        assert.equal(body(four), body(one), "memory engine: identical dump (paged by 7)");
        // A dump reformatted by another tool (not one record per line) loads too.
        const pretty = JSON.stringify(JSON.parse(one), null, 2).split("\n");
        const mem2 = new MemoryKvEngine();
        try {
          const lines = (async function* () {
            yield* pretty;
          })();
          await loadMeta(mem2, lines);
          let five = "";
          await dumpMeta(mem2, (t) => {
            five += t;
            return Promise.resolve();
          });
          assert.equal(body(five), body(one), "a reformatted dump loads the same keys");
        } finally {
          await mem2.close();
        }
      } finally {
        await mem.close();
      }

      // A non-empty target is refused, and so is a truncated dump.
      const again = await runCli(["load", target, `${dir}/one.json`]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /not empty/);
      for (const end of [one.length - 40, one.lastIndexOf("\n", one.length - 40) + 1]) {
        await Deno.writeTextFile(`${dir}/cut.json`, one.slice(0, end));
        const cut = await runCli(["load", `sqlite3://${dir}/cut.db`, `${dir}/cut.json`]);
        assert.equal(cut.code, 1);
        assert.match(cut.stderr, /^slayerfs: The dump is truncated/);
        assert.equal(await Deno.stat(`${dir}/cut.db`).then(() => true, () => false), false);
      }

      // fsck finds the loaded volume whole (dedup, inline and sparse files; counters).
      assert.match(await cli(["fsck", copy]), /^ok$/m);
      assert.match(await cli(["fsck", target]), /^ok$/m);

      // The loaded volume, on the same store, reads the same bytes.
      await using m2 = await startSlayer({ meta: target, storage, format: false });
      await verify(m2.mnt, files);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
