/**
 * `slayerfs mount --subdir PATH` through real mounts: the mount shows only that directory's tree
 * (its root is the directory; `..` inside stays inside, in lookups, stat and listings), files
 * made there appear in the volume under PATH, `df`/`stat -f` show the directory's quota, and a
 * missing subdirectory fails the mount with one clear line. Inode numbers the mount never handed
 * out (outside the tree, or forged) fail with ESTALE: a file handle (`open_by_handle_at`) with a
 * forged inode number through the kernel, and any request on the operation layer that the FUSE
 * adapter drives (`subdirOps`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { memVolume } from "../core/_test_util.ts";
import { Errno, FsError } from "../core/errno.ts";
import { subdirOps } from "../core/tenant_ops.ts";
import { nameFromText, ROOT_CTX, ROOT_INO } from "../core/types.ts";
import type { Ino } from "../core/types.ts";
import { engineFixtures } from "./_engines.ts";
import { runCli, startSlayer } from "./_mount.ts";
import { probe, quotaSet, sh } from "./_tenants.ts";

// On SQLite, and on Redis as a shared volume would be (the tenants' usual engine).
for (const fx of engineFixtures.filter((f) => f.name === "sqlite3" || f.name === "redis")) {
  Deno.test({
    name:
      `${fx.name}: subdir mount: isolation, .. at the root, statfs of the quota, missing subdir`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await using server = await fx.start();
      await using full = await startSlayer({ meta: server.newVolumeUrl() });
      const F = full.mnt;
      await Deno.mkdir(`${F}/team-a/sub`, { recursive: true });
      await Deno.mkdir(`${F}/team-b`);
      await Deno.writeTextFile(`${F}/team-a/hello`, "a");
      await Deno.writeTextFile(`${F}/team-b/secret`, "b");
      await Deno.writeTextFile(`${F}/top`, "t");
      await quotaSet(full.meta, "/team-a", "--capacity", "100M", "--inodes", "1000");

      // A missing subdirectory: the mount fails with one line, and nothing is mounted.
      const missing = await runCli(["mount", "--subdir", "/nope", full.meta, `${full.dir}/m2`]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^slayerfs: Subdirectory "\/nope" of the volume: .*ENOENT/m);
      const file = await runCli(["mount", "--subdir", "/top", full.meta, `${full.dir}/m2`]);
      assert.equal(file.code, 1);
      assert.match(file.stderr, /Subdirectory "\/top" of the volume is not a directory/);

      await using sub = await startSlayer({
        meta: full.meta,
        format: false,
        extraArgs: ["--subdir", "/team-a"],
      });
      await sub.guard(120_000, "subdir checks", async () => {
        const S = sub.mnt;
        const names = [];
        for await (const e of Deno.readDir(S)) names.push(e.name);
        assert.deepEqual(names.sort(), ["hello", "sub"]);
        assert.equal(await Deno.readTextFile(`${S}/hello`), "a");
        // `..` of a directory inside leads back to the mount's root, never above it.
        const root = await Deno.stat(S);
        assert.equal((await Deno.stat(`${S}/sub/..`)).ino, root.ino);
        assert.equal(root.ino, 1);
        const ls = await sh(`ls -iA '${S}' '${S}/sub'`);
        assert.equal(ls.code, 0, ls.stderr);
        // Every inode number shown is one inside team-a (`..` of the root is the kernel's).
        const inside = new Set([
          (await Deno.stat(`${F}/team-a/hello`)).ino,
          (await Deno.stat(`${F}/team-a/sub`)).ino,
        ]);
        for (const m of ls.stdout.matchAll(/^\s*(\d+) /gm)) {
          assert.ok(inside.has(Number(m[1])), `ls -ia shows inode ${m[1]} of the tree`);
        }
        const up = await sh(`cd '${S}/sub/../..' && pwd -P && ls`);
        assert.equal(up.stdout.split("\n")[0], sub.dir, "cd .. past the root leaves the mount");
        assert.ok(!up.stdout.includes("team-b") && !up.stdout.includes("secret"));
        // File handles: one of a file in the tree opens; the same handle with the inode number of a
        // file outside (team-b/secret) forged in fails with ESTALE.
        const secret = (await Deno.stat(`${F}/team-b/secret`)).ino!;
        const handles = await probe(`
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
class FH(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint), ("type", ctypes.c_int), ("h", ctypes.c_ubyte * 128)]
def fail():
    e = ctypes.get_errno()
    raise OSError(e, os.strerror(e))
def handle(path):
    fh, mid = FH(), ctypes.c_int()
    fh.bytes = 128
    if libc.name_to_handle_at(-100, path.encode(), ctypes.byref(fh), ctypes.byref(mid), 0):
        fail()
    return fh
def open_h(fh):
    mfd = os.open("${S}", os.O_RDONLY)
    fd = libc.open_by_handle_at(mfd, ctypes.byref(fh), os.O_RDONLY)
    os.close(mfd)
    if fd < 0:
        fail()
    os.close(fd)
fh = handle("${S}/hello")
op("own", lambda: open_h(fh))
forged = FH.from_buffer_copy(fh)
struct.pack_into("<2I", forged.h, 0, ${secret} >> 32, ${secret} & 0xffffffff)
op("forged", lambda: open_h(forged))
`);
        assert.deepEqual(Object.fromEntries(handles), { own: "OK", forged: "ESTALE" });
        // Changes land under /team-a of the volume.
        await Deno.writeTextFile(`${S}/sub/new`, "n");
        assert.equal(await Deno.readTextFile(`${F}/team-a/sub/new`), "n");
        await Deno.rename(`${S}/sub/new`, `${S}/moved`);
        assert.equal(await Deno.readTextFile(`${F}/team-a/moved`), "n");
        // statfs: the quota's capacity and inodes, not the volume's.
        const df = await sh(`stat -f -c '%S %b %f %c %d' '${S}'`);
        const [bsize, blocks, free, files, ffree] = df.stdout.trim().split(" ").map(Number);
        assert.equal(bsize! * blocks!, 100 * 2 ** 20);
        assert.equal(files, 1000);
        assert.equal(ffree, 1000 - 3); // hello, sub, moved
        assert.ok(free! < blocks!);
        const dfFull = await sh(`stat -f -c '%S %b' '${F}'`);
        const [fb, fn] = dfFull.stdout.trim().split(" ").map(Number);
        assert.ok(fb! * fn! > 100 * 2 ** 20, "the full mount's root shows the volume");
        const dfDir = await sh(`stat -f -c '%S %b %c' '${F}/team-a'`);
        assert.equal(dfDir.stdout.trim(), `4096 ${100 * 256} 1000`, "df of team-a: its quota");
      });
    },
  });
}

const stale = (e: unknown) => e instanceof FsError && e.errno === Errno.ESTALE;

Deno.test("subdirOps: the root maps to the directory; other inodes only once handed out", async () => {
  const { vol } = await memVolume();
  await using _ = vol;
  const vfs = vol.vfs;
  const ctx = ROOT_CTX;
  const a = await vfs.mkdir(ctx, ROOT_INO, nameFromText("team-a"), 0o755);
  const b = await vfs.mkdir(ctx, ROOT_INO, nameFromText("team-b"), 0o755);
  const secret = await vfs.mknod(ctx, b.ino, nameFromText("secret"), 0o644, 0);
  const inner = await vfs.mkdir(ctx, a.ino, nameFromText("in"), 0o755);
  const ops = subdirOps(vfs, a.ino);
  assert.equal((await ops.getattr(ctx, ROOT_INO)).ino, ROOT_INO);
  // Forged numbers: outside the tree, or inside but never looked up here.
  for (const ino of [b.ino, secret.ino, inner.ino, 12345 as Ino]) {
    await assert.rejects(ops.getattr(ctx, ino), stale);
    await assert.rejects(ops.open(ctx, ino, 0), stale);
    await assert.rejects(ops.lookup(ctx, ino, nameFromText("x")), stale);
  }
  await assert.rejects(
    ops.rename(ctx, ROOT_INO, nameFromText("in"), b.ino, nameFromText("x"), 0),
    stale,
  );
  // Handed out by a lookup: reachable; its `..` is the root; the root's `..` is the root.
  const found = await ops.lookup(ctx, ROOT_INO, nameFromText("in"));
  assert.equal(found.ino, inner.ino);
  assert.equal((await ops.getattr(ctx, inner.ino)).ino, inner.ino);
  assert.equal((await ops.lookup(ctx, inner.ino, nameFromText(".."))).ino, ROOT_INO);
  assert.equal((await ops.lookup(ctx, ROOT_INO, nameFromText(".."))).ino, ROOT_INO);
  const h = await ops.opendir(ctx, ROOT_INO, 0);
  const list = await ops.readdir(ctx, ROOT_INO, h.fh, 0, 10, true);
  const dots = list.find((e) => e.name === "..")!;
  assert.equal(dots.ino, ROOT_INO);
  assert.equal(dots.attr?.ino, ROOT_INO);
  assert.ok(list.every((e) => e.ino !== ROOT_INO || e.name === "." || e.name === ".."));
});
