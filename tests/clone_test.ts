/**
 * `slayerfs clone` through a real mount: a tree with modes, owners, times, xattrs, a symlink and
 * hard links (inside the tree, and to a file outside it) is cloned with every attribute kept and
 * no new object in the store; writes on either side afterwards do not show in the other; a clone
 * onto an existing name fails with EEXIST and leaves nothing; a daemon killed half-way through a
 * clone leaves no partial destination, and the next mount (cleaning up the dead session) removes
 * the half-built tree so that `fsck` finds every reference count right and the inode count is back.
 * Run on SQLite and on a private Redis (tests/_engines.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { openKvEngine } from "../backends/mod.ts";
import { engineFixtures } from "./_engines.ts";
import * as L from "./_libc.ts";
import { runCli, startSlayer } from "./_mount.ts";
import { bytesEqual, pseudoRandom } from "./posix/_helpers.ts";

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

/** Relative paths under `dir`, sorted (the listing a user sees). */
async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      out.push(rel + e.name);
      if (e.isDirectory) await walk(`${d}/${e.name}`, `${rel}${e.name}/`);
    }
  };
  await walk(dir, "");
  return out.sort();
}

async function usedInodes(meta: string): Promise<number> {
  const r = await runCli(["status", "--json", meta]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).inodes;
}

const xattr = (s: string) => new TextEncoder().encode(s);

// On SQLite and on a private Redis: the feature works on every metadata engine (issue #14).
for (const fx of engineFixtures.filter((f) => f.name === "sqlite3" || f.name === "redis")) {
  Deno.test(`${fx.name}: clone copies a tree in metadata only, keeps every attribute, and is atomic`, async () => {
    await using server = await fx.start();
    // Long kernel cache timeouts: a stale cached entry would show (the daemon must invalidate).
    const cacheLong = ["-o", "negative_timeout=60,entry_timeout=60"];
    await using fs = await startSlayer({
      meta: server.newVolumeUrl(),
      extraArgs: ["--session-timeout", "3", ...cacheLong],
    });
    const m = fs.mnt;
    const src = `${m}/src`;
    // The tree: modes, owners, times, xattrs, a symlink, hard links in and out of the tree.
    await Deno.mkdir(`${src}/sub/deep`, { recursive: true });
    const big = pseudoRandom(5 * MiB + 123, 1);
    await Deno.writeFile(`${src}/big`, big);
    await Deno.writeTextFile(`${src}/sub/small`, "small file");
    await Deno.writeTextFile(`${src}/sub/deep/linked`, "two names inside, one outside");
    await Deno.link(`${src}/sub/deep/linked`, `${src}/linked-too`);
    await Deno.link(`${src}/sub/deep/linked`, `${m}/outside`);
    await Deno.symlink("sub/small", `${src}/sym`);
    await Deno.chmod(`${src}/sub/small`, 0o640);
    await Deno.chmod(`${src}/sub`, 0o2750);
    await Deno.chown(`${src}/sub/small`, 1234, 5678);
    await Deno.chown(`${src}/sub`, 4321, 8765);
    L.setxattr(`${src}/big`, "user.model", xattr("llama"));
    L.setxattr(`${src}/sub`, "user.dir", xattr("d"));
    const past = new Date("2020-02-02T02:02:02Z");
    await Deno.utime(`${src}/sub/small`, past, past);
    await Deno.utime(`${src}/big`, new Date("2021-01-01T00:00:00Z"), past);
    await Deno.utime(`${src}/sub/deep`, past, past);

    const objects = await objectCount(fs.storage);
    assert.ok(objects >= 2, `the big file is in the store: ${objects} objects`);
    const inodes = await usedInodes(fs.meta);
    // Looked up before: the kernel caches the miss, and the daemon makes it forget it.
    await assert.rejects(Deno.lstat(`${m}/dst`), Deno.errors.NotFound);
    const r = await runCli(["clone", src, `${m}/dst`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Cloned .* 7 inodes, 5\.0 MiB shared \(no data copied\)/);
    assert.equal(await objectCount(fs.storage), objects, "no new object in the store");
    assert.equal(await usedInodes(fs.meta), inodes + 7, "7 new inodes counted");

    assert.deepEqual(await listTree(`${m}/dst`), await listTree(src));
    for (const p of await listTree(src)) {
      const a = await Deno.lstat(`${src}/${p}`);
      const b = await Deno.lstat(`${m}/dst/${p}`);
      assert.notEqual(a.ino, b.ino, `${p}: a new inode`);
      assert.equal(b.mode, a.mode, `${p}: mode`);
      assert.equal(b.uid, a.uid, `${p}: owner`);
      assert.equal(b.gid, a.gid, `${p}: group`);
      assert.equal(b.mtime?.getTime(), a.mtime?.getTime(), `${p}: mtime`);
      assert.equal(b.atime?.getTime(), a.atime?.getTime(), `${p}: atime`);
      assert.equal(b.size, a.size, `${p}: size`);
      if (a.isFile) {
        bytesEqual(await Deno.readFile(`${m}/dst/${p}`), await Deno.readFile(`${src}/${p}`), p);
      }
    }
    assert.equal((await Deno.lstat(`${m}/dst/sub/small`)).uid, 1234);
    assert.equal((await Deno.lstat(`${m}/dst/sub`)).mode! & 0o7777, 0o2750);
    assert.equal((await Deno.lstat(`${m}/dst/big`)).mtime?.getTime(), past.getTime());
    assert.equal(await Deno.readLink(`${m}/dst/sym`), "sub/small");
    assert.deepEqual(L.getxattr(`${m}/dst/big`, "user.model"), xattr("llama"));
    assert.deepEqual(L.getxattr(`${m}/dst/sub`, "user.dir"), xattr("d"));
    // Two names of one inode inside the tree stay one inode, with the links inside only.
    const l1 = await Deno.lstat(`${m}/dst/sub/deep/linked`);
    const l2 = await Deno.lstat(`${m}/dst/linked-too`);
    assert.equal(l1.ino, l2.ino, "hard links stay hard links");
    assert.equal(l1.nlink, 2, "links outside the tree are not counted");
    assert.equal((await Deno.lstat(`${src}/linked-too`)).nlink, 3);
    assert.equal((await Deno.lstat(`${m}/dst/sub`)).nlink, 3, "a directory's link count");

    // Independent afterwards, both ways (overwrite, append, truncate, new names).
    const fdS = L.open(`${src}/big`, L.O.WRONLY | L.O.CLOEXEC);
    L.pwriteFull(fdS, pseudoRandom(MiB, 2), 2 * MiB);
    L.close(fdS);
    await Deno.writeTextFile(`${m}/dst/sub/small`, " more", { append: true });
    await Deno.truncate(`${m}/dst/linked-too`, 3);
    await Deno.writeTextFile(`${src}/sub/new`, "only in src");
    bytesEqual(await Deno.readFile(`${m}/dst/big`), big, "dst/big unchanged by a write to src/big");
    assert.equal(await Deno.readTextFile(`${src}/sub/small`), "small file");
    assert.equal(await Deno.readTextFile(`${m}/dst/sub/small`), "small file more");
    assert.equal(
      await Deno.readTextFile(`${src}/sub/deep/linked`),
      "two names inside, one outside",
    );
    assert.equal(await Deno.readTextFile(`${m}/dst/sub/deep/linked`), "two");
    await assert.rejects(Deno.lstat(`${m}/dst/sub/new`), Deno.errors.NotFound);

    // A single file, and a clone onto an existing name (EEXIST, nothing made).
    assert.equal((await runCli(["clone", `${src}/big`, `${m}/big-copy`])).code, 0);
    bytesEqual(await Deno.readFile(`${m}/big-copy`), await Deno.readFile(`${src}/big`), "file");
    const before = await usedInodes(fs.meta);
    const dup = await runCli(["clone", src, `${m}/dst`]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /exists \(File exists\) \[EEXIST\]/);
    assert.equal(await usedInodes(fs.meta), before, "a failed clone leaves no inode");
    assert.equal(await Deno.readTextFile(`${m}/dst/sub/small`), "small file more");
    const outside = await runCli(["clone", src, `/tmp/not-in-a-mount-${crypto.randomUUID()}`]);
    assert.equal(outside.code, 1);
    assert.match(outside.stderr, /not inside a SlayerFS mount/);

    // A daemon killed half-way: no partial destination; the half-built tree is reclaimed.
    const many = `${m}/many`;
    await Deno.mkdir(many);
    for (let i = 0; i < 40; i++) await Deno.writeTextFile(`${many}/f${i}`, `file ${i}`);
    for (let i = 0; i < 6; i++) {
      const c = await runCli(["clone", "-q", many, `${many}/c${i}`]); // doubles the tree
      assert.equal(c.code, 0, c.stderr);
    }
    const beforeKill = await usedInodes(fs.meta);
    const objectsBeforeKill = await objectCount(fs.storage);
    const kv = await openKvEngine(fs.meta);
    try {
      const cloning = runCli(["clone", many, `${m}/many-copy`]);
      let seen = false;
      for (let i = 0; i < 2000 && !seen; i++) {
        seen = (await kv.txn((tx) => tx.scan("T", { limit: 1 }), { readOnly: true })).length > 0;
        if (!seen) await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(seen, "the clone started building its detached tree");
      await fs.kill9();
      const killed = await cloning;
      assert.equal(killed.code, 1, "the clone command fails when the daemon dies");
    } finally {
      await kv.close();
    }
    await fs.restart();
    await assert.rejects(Deno.lstat(`${m}/many-copy`), Deno.errors.NotFound, "no partial DST");
    // The new mount cleans up the dead session (3 s timeout) and with it the half-built tree.
    const kv2 = await openKvEngine(fs.meta);
    try {
      let left = 1;
      for (let i = 0; i < 100 && left; i++) {
        await new Promise((r) => setTimeout(r, 200));
        left = (await kv2.txn((tx) => tx.scan("T"), { readOnly: true })).length;
      }
      assert.equal(left, 0, "the detached tree is removed");
    } finally {
      await kv2.close();
    }
    assert.equal(await usedInodes(fs.meta), beforeKill, "inodes back to before the clone");
    const fsck = await runCli(["fsck", "-q", fs.meta]);
    assert.equal(fsck.code, 0, `fsck: reference counts and counters right\n${fsck.stdout}`);
    assert.equal(await objectCount(fs.storage), objectsBeforeKill, "no object from the clones");
  });
}
