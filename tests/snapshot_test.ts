/**
 * `slayerfs snapshot` through a real mount: a snapshot is a read-only clone at
 * `PATH/.snapshots/NAME` (every change inside fails with EROFS, reads work, later writes to PATH do
 * not show in it), `.snapshots` is left out of the listing of PATH (and of a clone of PATH) but can
 * be entered by name, `ls` lists the snapshots, a clone of a snapshot is writable, and `rm` frees
 * only the data no one else uses: after `gc --delete` the store holds exactly the objects of the
 * blocks the live tree and the other snapshot still use. Run on SQLite and on a private Redis
 * (tests/_engines.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { engineFixtures } from "./_engines.ts";
import * as L from "./_libc.ts";
import { runCli, startSlayer } from "./_mount.ts";
import { bytesEqual, pseudoRandom, throwsErrno } from "./posix/_helpers.ts";

const MiB = 2 ** 20;

/** Files under the `file://` store of a mount. */
async function objectCount(storage: string): Promise<number> {
  let n = 0;
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await walk(`${dir}/${e.name}`);
      else n++;
    }
  };
  await walk(new URL(storage).pathname).catch(() => {});
  return n;
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args);
  assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

// On SQLite and on a private Redis: the feature works on every metadata engine (issue #14).
for (const fx of engineFixtures.filter((f) => f.name === "sqlite3" || f.name === "redis")) {
  Deno.test(`${fx.name}: snapshots are read-only clones under .snapshots; rm + gc frees only their own data`, async () => {
    await using server = await fx.start();
    // 1 MiB blocks: the model is 4 blocks, each an object.
    // Long kernel cache timeouts: a stale cached entry would show (the daemon must invalidate).
    await using fs = await startSlayer({
      meta: server.newVolumeUrl(),
      formatArgs: ["--block-size", "1M"],
      extraArgs: ["-o", "negative_timeout=60,entry_timeout=60"],
    });
    const m = fs.mnt;
    const models = `${m}/models`;
    await Deno.mkdir(`${models}/llama`, { recursive: true });
    const v1 = pseudoRandom(4 * MiB, 1);
    await Deno.writeFile(`${models}/llama/weights`, v1);
    await Deno.writeTextFile(`${models}/llama/config.json`, '{"v":1}');
    await Deno.symlink("llama", `${models}/current`);
    const base = await objectCount(fs.storage);
    assert.equal(base, 4, "the weights are 4 objects");

    // Looked up before (the kernel caches the miss): the daemon makes the kernel forget it.
    await assert.rejects(Deno.lstat(`${models}/.snapshots`), Deno.errors.NotFound);
    assert.match(await cli(["snapshot", "create", models, "v1"]), /\.snapshots\/v1: 5 inodes/);
    assert.equal(await objectCount(fs.storage), base, "a snapshot adds no object");
    assert.deepEqual(await names(models), ["current", "llama"], ".snapshots is not listed");
    assert.deepEqual(await names(`${models}/.snapshots`), ["v1"]);
    const snap = `${models}/.snapshots/v1`;
    bytesEqual(await Deno.readFile(`${snap}/llama/weights`), v1, "snapshot reads");
    assert.equal(await Deno.readLink(`${snap}/current`), "llama");

    // Every change inside fails with EROFS.
    const w = `${snap}/llama/weights`;
    throwsErrno(() => L.open(w, L.O.WRONLY | L.O.CLOEXEC), "EROFS", "open for writing");
    throwsErrno(() => L.open(w, L.O.RDONLY | L.O.TRUNC | L.O.CLOEXEC), "EROFS", "O_TRUNC");
    throwsErrno(
      () => L.open(`${snap}/new`, L.O.WRONLY | L.O.CREAT | L.O.CLOEXEC),
      "EROFS",
      "create",
    );
    throwsErrno(() => L.truncate(w, 0), "EROFS", "truncate");
    throwsErrno(() => L.chmod(w, 0o600), "EROFS", "chmod");
    throwsErrno(() => L.chown(w, 1, 1), "EROFS", "chown");
    throwsErrno(() => L.utimensat(w, "now", "now"), "EROFS", "utimes");
    throwsErrno(() => L.setxattr(w, "user.x", new Uint8Array([1])), "EROFS", "setxattr");
    throwsErrno(() => L.unlink(w), "EROFS", "unlink");
    throwsErrno(() => L.mkdir(`${snap}/d`, 0o755), "EROFS", "mkdir");
    throwsErrno(() => L.symlink("x", `${snap}/s`), "EROFS", "symlink");
    throwsErrno(() => L.rename(w, `${m}/stolen`), "EROFS", "rename out");
    throwsErrno(() => L.rename(`${models}/llama/config.json`, `${snap}/c`), "EROFS", "rename in");
    throwsErrno(() => L.link(w, `${m}/hard`), "EROFS", "link out");
    throwsErrno(() => L.rmdir(`${snap}/llama`), "EROFS", "rmdir inside");
    throwsErrno(() => L.rmdir(`${models}/.snapshots`), "EROFS", "rmdir .snapshots");
    throwsErrno(() => L.rename(`${models}/.snapshots`, `${m}/s`), "EROFS", "rename .snapshots");
    const fd = L.open(w, L.O.RDONLY | L.O.CLOEXEC); // reading is fine
    L.close(fd);

    // The live tree moves on; the snapshot does not.
    const v2 = pseudoRandom(4 * MiB, 2);
    await Deno.writeFile(`${models}/llama/weights`, v2);
    await Deno.writeTextFile(`${models}/llama/config.json`, '{"v":2}');
    bytesEqual(await Deno.readFile(`${snap}/llama/weights`), v1, "the snapshot keeps v1");
    assert.equal(await Deno.readTextFile(`${snap}/llama/config.json`), '{"v":1}');
    assert.equal(await objectCount(fs.storage), base + 4, "v1's objects stay for the snapshot");

    await cli(["snapshot", "create", models, "v2"]);
    const dup = await runCli(["snapshot", "create", models, "v2"]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /File exists/);
    assert.match(await cli(["snapshot", "ls", models]), /^name +created\nv1 +\d{4}-.*\nv2 +\d{4}-/);
    const listed = JSON.parse(await cli(["snapshot", "ls", "--json", models]));
    assert.deepEqual(listed.map((s: { name: string }) => s.name), ["v1", "v2"]);
    const bad = await runCli(["snapshot", "create", models, "a/b"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Invalid snapshot name/);

    // A clone of the folder leaves its snapshots out; a clone of a snapshot is writable.
    await cli(["clone", models, `${m}/models-copy`]);
    await assert.rejects(Deno.lstat(`${m}/models-copy/.snapshots`), Deno.errors.NotFound);
    await cli(["clone", snap, `${m}/restored`]);
    await Deno.writeTextFile(`${m}/restored/llama/config.json`, '{"v":"restored"}');
    bytesEqual(await Deno.readFile(`${m}/restored/llama/weights`), v1, "restored from v1");
    await Deno.remove(`${m}/restored`, { recursive: true });
    await Deno.remove(`${m}/models-copy`, { recursive: true });

    // rm v1: its own data (v1's 4 blocks) goes after gc; v2's (shared with the live tree) stays.
    // A file of it open at the time stays readable until its last close.
    const open = L.open(`${snap}/llama/weights`, L.O.RDONLY | L.O.CLOEXEC);
    assert.match(await cli(["snapshot", "rm", models, "v1"]), /Removed snapshot v1/);
    assert.deepEqual(await names(`${models}/.snapshots`), ["v2"]);
    await assert.rejects(Deno.lstat(snap), Deno.errors.NotFound);
    bytesEqual(L.preadFull(open, 4 * MiB, 0), v1, "open file of a removed snapshot");
    L.close(open);
    // The release follows the close; then the file goes and gc deletes what only it used.
    let left = -1;
    for (let i = 0; i < 40 && left !== base; i++) {
      await cli(["gc", "--delete", fs.meta]);
      left = await objectCount(fs.storage);
      if (left !== base) await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(left, base, "v1's objects are deleted, v2's stay");
    bytesEqual(await Deno.readFile(`${models}/.snapshots/v2/llama/weights`), v2, "v2 intact");
    bytesEqual(await Deno.readFile(`${models}/llama/weights`), v2, "live intact");
    const gone = await runCli(["snapshot", "rm", models, "v1"]);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /No snapshot "v1"/);

    // The last one takes .snapshots with it; then the folder can go.
    assert.ok((await Deno.lstat(`${models}/.snapshots/v2`)).isDirectory); // cached by the kernel
    await cli(["snapshot", "rm", models, "v2"]);
    await assert.rejects(Deno.lstat(`${models}/.snapshots/v2`), Deno.errors.NotFound);
    await assert.rejects(Deno.lstat(`${models}/.snapshots`), Deno.errors.NotFound);
    assert.match(await cli(["snapshot", "ls", models]), /No snapshots/);
    await Deno.remove(models, { recursive: true });
    await cli(["gc", "--delete", fs.meta]);
    assert.equal(await objectCount(fs.storage), 0, "everything freed");
    const fsck = await runCli(["fsck", "-q", fs.meta]);
    assert.equal(fsck.code, 0, fsck.stdout);
  });
}
