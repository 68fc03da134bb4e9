import assert from "node:assert/strict";
import { memVolume } from "../_test_util.ts";
import { Errno, FsError } from "../errno.ts";
import { type Ino, nameFromText as n, O_RDWR, ROOT_CTX, ROOT_INO } from "../types.ts";

const ctx = ROOT_CTX;
const errno = (e: number) => (err: unknown) => err instanceof FsError && err.errno === e;

Deno.test("quotas follow hard links, unlinked-open files, exchanges and removed directories", async () => {
  const { vol } = await memVolume();
  await using _ = vol;
  const { vfs, meta } = { vfs: vol.vfs, meta: vol.vfs.meta };
  const qa = await vfs.mkdir(ctx, ROOT_INO, n("qa"), 0o755);
  const qb = await vfs.mkdir(ctx, ROOT_INO, n("qb"), 0o755);
  const sub = await vfs.mkdir(ctx, qa.ino, n("sub"), 0o755);
  await meta.setQuota(qa.ino, { capacity: 1 << 20 });
  await meta.setQuota(qb.ino, { inodes: 10 });
  const use = async (ino: Ino) => {
    const q = (await meta.getQuota(ino))!;
    return [q.usedSpace, q.usedInodes];
  };
  assert.deepEqual(await use(qa.ino), [0, 1]);

  // A file with two links in one tree: unlinking the name in its own directory keeps it counted.
  const { attr: f, opened } = await vfs.create(ctx, sub.ino, n("f"), 0o644, O_RDWR);
  await vfs.write(ctx, f.ino, opened.fh, 0, new Uint8Array(5000));
  await vfs.flush(ctx, f.ino, opened.fh, 0n);
  await vfs.link(ctx, f.ino, qa.ino, n("f2"));
  assert.deepEqual(await use(qa.ino), [8192, 2]);
  await vfs.unlink(ctx, sub.ino, n("f"));
  assert.deepEqual(await use(qa.ino), [8192, 2]);
  // Still under qa: it may grow to the limit and no further.
  await assert.rejects(vfs.setattr(ctx, f.ino, { size: 2 << 20 }), errno(Errno.EDQUOT));
  // Unlinked while open: out of the quota at once, even while it is written.
  await vfs.unlink(ctx, qa.ino, n("f2"));
  assert.deepEqual(await use(qa.ino), [0, 1]);
  await vfs.write(ctx, f.ino, opened.fh, 0, new Uint8Array(3 << 20));
  await vfs.flush(ctx, f.ino, opened.fh, 0n);
  await vfs.release(ctx, f.ino, opened.fh, 0n, false);
  assert.deepEqual(await use(qa.ino), [0, 1]);

  // RENAME_EXCHANGE of two files in different quotas swaps their usage.
  await vol.writeFile("/qa/x", new Uint8Array(10_000));
  await vol.writeFile("/qb/y", new Uint8Array(100));
  assert.deepEqual(await use(qa.ino), [12288, 2]);
  assert.deepEqual(await use(qb.ino), [4096, 1]);
  await vfs.rename(ctx, qa.ino, n("x"), qb.ino, n("y"), 2);
  assert.deepEqual(await use(qa.ino), [4096, 2]);
  assert.deepEqual(await use(qb.ino), [12288, 1]);

  // Removing a quota's directory removes the quota.
  await vol.unlink("/qb/y");
  await vfs.rmdir(ctx, ROOT_INO, n("qb"));
  assert.deepEqual((await meta.listQuotas()).map((q) => q.ino), [qa.ino]);
  // And every usage kept equals a walk.
  const c = (await meta.checkQuota(qa.ino, false))!;
  assert.deepEqual([c.kept.usedSpace, c.kept.usedInodes], [c.walked.space, c.walked.inodes]);
});

Deno.test("writes of several files on one mount count each other's uncommitted data", async () => {
  const { vol } = await memVolume();
  await using _ = vol;
  const vfs = vol.vfs;
  const q = await vfs.mkdir(ctx, ROOT_INO, n("q"), 0o755);
  await vfs.meta.setQuota(q.ino, { capacity: 1 << 20 });
  const f1 = await vfs.create(ctx, q.ino, n("f1"), 0o644, O_RDWR);
  const f2 = await vfs.create(ctx, q.ino, n("f2"), 0o644, O_RDWR);
  const kib = (k: number) => new Uint8Array(k * 1024);
  await vfs.write(ctx, f1.attr.ino, f1.opened.fh, 0, kib(600));
  // f1's 600 KiB are not committed yet, but they count: f2 cannot take another 600.
  await assert.rejects(
    vfs.write(ctx, f2.attr.ino, f2.opened.fh, 0, kib(600)),
    errno(Errno.EDQUOT),
  );
  await vfs.write(ctx, f2.attr.ino, f2.opened.fh, 0, kib(400));
  await vfs.flush(ctx, f1.attr.ino, f1.opened.fh, 0n);
  await vfs.flush(ctx, f2.attr.ino, f2.opened.fh, 0n);
  // Committed now, and counted once: 24 KiB are left.
  await vfs.write(ctx, f1.attr.ino, f1.opened.fh, kib(600).length, kib(24));
  await assert.rejects(
    vfs.write(ctx, f2.attr.ino, f2.opened.fh, kib(400).length, kib(4)),
    errno(Errno.EDQUOT),
  );
  await vfs.release(ctx, f1.attr.ino, f1.opened.fh, 0n, false);
  await vfs.release(ctx, f2.attr.ino, f2.opened.fh, 0n, false);
  assert.equal((await vfs.meta.getQuota(q.ino))!.usedSpace, 1 << 20);
});
