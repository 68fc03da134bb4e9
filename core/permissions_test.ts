import assert from "node:assert/strict";
import { applySetAttr, permits } from "./permissions.ts";
import {
  type Attr,
  type Ctx,
  type Ino,
  ROOT_CTX,
  S_IFDIR,
  S_IFREG,
  S_ISGID,
  S_ISUID,
} from "./types.ts";

const user: Ctx = { uid: 1000, gid: 1000, pid: 1, umask: 0o022, groups: () => [1000] };
const other: Ctx = { uid: 2000, gid: 2000, pid: 1, umask: 0, groups: () => [] };

const t = { sec: 1, nsec: 0 };
const blank = { ino: 2 as Ino, nlink: 1, rdev: 0, size: 0, parent: 0 as Ino };

function attr(mode: number, uid = 0, gid = 0): Attr {
  return { ...blank, mode, uid, gid, atime: t, mtime: t, ctime: t };
}

const code = (errno: string) => ({ code: errno });

Deno.test("permits() reads the owner, group or other bits", () => {
  const a = attr(S_IFREG | 0o640, 1000, 100);
  assert.equal(permits(user, a, 4 | 2), true);
  assert.equal(permits(user, a, 1), false);
  const member: Ctx = { ...other, groups: () => [100] };
  assert.equal(permits(member, a, 4), true);
  assert.equal(permits(member, a, 2), false);
  assert.equal(permits(other, a, 4), false);
  assert.equal(permits(other, a, 0), true);
});

Deno.test("permits() lets root do anything but execute a file without any x bit", () => {
  assert.equal(permits(ROOT_CTX, attr(S_IFREG | 0o000, 1000), 4 | 2), true);
  assert.equal(permits(ROOT_CTX, attr(S_IFREG | 0o644, 1000), 1), false);
  assert.equal(permits(ROOT_CTX, attr(S_IFREG | 0o010, 1000), 1), true);
  assert.equal(permits(ROOT_CTX, attr(S_IFDIR | 0o000, 1000), 1), true);
});

Deno.test("applySetAttr() lets only the owner change the mode, anyone drop setuid/setgid", () => {
  assert.throws(() => applySetAttr(user, attr(S_IFREG | 0o644), { mode: 0o777 }), code("EPERM"));
  const a = applySetAttr(other, attr(S_IFREG | 0o6755, 1000), { mode: 0o755 });
  assert.equal(a.mode, S_IFREG | 0o755);
  // The owner keeps setgid only for a group it is in.
  assert.equal(
    applySetAttr(user, attr(S_IFREG, 1000, 1000), { mode: 0o2755 }).mode & S_ISGID,
    S_ISGID,
  );
  assert.equal(applySetAttr(user, attr(S_IFREG, 1000, 5), { mode: 0o2755 }).mode & S_ISGID, 0);
});

Deno.test("applySetAttr() lets only root chown, the owner chgrp to its groups, and clears setuid/setgid", () => {
  assert.throws(() => applySetAttr(user, attr(S_IFREG | 0o644), { uid: 1000 }), code("EPERM"));
  const a = applySetAttr(ROOT_CTX, attr(S_IFREG | 0o6755), { uid: 1000, gid: 1000 });
  assert.equal(a.uid, 1000);
  assert.equal(a.gid, 1000);
  assert.equal(a.mode & (S_ISUID | S_ISGID), 0);
  assert.throws(() => applySetAttr(user, attr(S_IFREG, 1000, 1000), { gid: 5 }), code("EPERM"));
  // Without group execute, setgid marks mandatory locking and stays.
  const b = applySetAttr(ROOT_CTX, attr(S_IFREG | 0o6744), { uid: 1000 });
  assert.equal(b.mode & (S_ISUID | S_ISGID), S_ISGID);
  // Directories keep both.
  const d = applySetAttr(ROOT_CTX, attr(S_IFDIR | 0o6755), { uid: 1000 });
  assert.equal(d.mode & (S_ISUID | S_ISGID), S_ISUID | S_ISGID);
});

Deno.test("applySetAttr() lets the owner set times, others only 'now' with write access", () => {
  const a = applySetAttr(user, attr(S_IFREG | 0o644, 1000), {
    mtime: { sec: 5, nsec: 6 },
    atime: "now",
  });
  assert.deepEqual(a.mtime, { sec: 5, nsec: 6 });
  assert.ok(a.atime.sec > 1);
  assert.ok(a.ctime.sec > 1);
  const file = attr(S_IFREG | 0o644, 1000);
  assert.throws(() => applySetAttr(other, file, { mtime: { sec: 1, nsec: 0 } }), code("EPERM"));
  assert.throws(() => applySetAttr(other, file, { mtime: "now" }), code("EACCES"));
  applySetAttr(other, attr(S_IFREG | 0o666, 1000), { mtime: "now" });
});
