/**
 * POSIX suite cases for attributes and permissions: chmod, chown and timestamps, setuid
 * clearing, permission checks for a non-root user, and extended attributes.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "../_libc.ts";
import {
  bytesEqual,
  type CaseBodies,
  dec,
  enc,
  modeBits,
  NOBODY,
  pseudoRandom,
  runAsNobody,
  sleep,
  throwsErrno,
} from "./_helpers.ts";

const cases: CaseBodies = {};

/** chmod, chown, utimensat (incl. UTIME_NOW / UTIME_OMIT) and ctime updates. */
cases.attributes = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, enc.encode("x"));
  let before = L.lstat(f);
  await sleep(20);
  L.chmod(f, 0o640);
  let after = L.lstat(f);
  assert.equal(after.mode & 0o7777, 0o640);
  assert.ok(after.ctimeNs > before.ctimeNs, "chmod updates ctime");
  assert.equal(after.mtimeNs, before.mtimeNs, "chmod keeps mtime");

  before = after;
  await sleep(20);
  L.chown(f, NOBODY, NOBODY);
  after = L.lstat(f);
  assert.equal(after.uid, NOBODY);
  assert.equal(after.gid, NOBODY);
  assert.ok(after.ctimeNs > before.ctimeNs, "chown updates ctime");
  L.chown(f, -1, 0);
  assert.equal(L.lstat(f).uid, NOBODY, "uid -1 keeps the owner");
  assert.equal(L.lstat(f).gid, 0);

  L.utimensat(f, { sec: 1_000_000_000, nsec: 123_456_789 }, { sec: 1_100_000_000, nsec: 987 });
  after = L.lstat(f);
  assert.equal(after.atimeNs, 1_000_000_000_123_456_789n, "atime set exactly");
  assert.equal(after.mtimeNs, 1_100_000_000_000_000_987n, "mtime set exactly");

  before = after;
  await sleep(20);
  const wallBefore = BigInt(Date.now() - 2000) * 1_000_000n;
  L.utimensat(f, "omit", "now");
  const wallAfter = BigInt(Date.now() + 2000) * 1_000_000n;
  after = L.lstat(f);
  assert.equal(after.atimeNs, before.atimeNs, "UTIME_OMIT keeps atime");
  assert.ok(after.mtimeNs >= wallBefore && after.mtimeNs <= wallAfter, "UTIME_NOW sets mtime");
  assert.ok(after.ctimeNs > before.ctimeNs, "utimensat updates ctime");
  L.utimensat(f, "now", "omit");
  const again = L.lstat(f);
  assert.ok(again.atimeNs >= wallBefore, "UTIME_NOW sets atime");
  assert.equal(again.mtimeNs, after.mtimeNs, "UTIME_OMIT keeps mtime");

  before = L.lstat(f);
  await sleep(20);
  await Deno.writeFile(f, enc.encode("more"), { append: true });
  after = L.lstat(f);
  assert.ok(after.mtimeNs > before.mtimeNs, "write updates mtime");
  assert.ok(after.ctimeNs > before.ctimeNs, "write updates ctime");

  L.mkdir(`${d}/dir`);
  before = L.lstat(`${d}/dir`);
  await sleep(20);
  await Deno.writeFile(`${d}/dir/new`, enc.encode(""));
  after = L.lstat(`${d}/dir`);
  assert.ok(after.mtimeNs > before.mtimeNs, "creating an entry updates the directory's mtime");
  assert.ok(after.ctimeNs > before.ctimeNs, "creating an entry updates the directory's ctime");

  L.symlink("f", `${d}/link`);
  L.lchown(`${d}/link`, NOBODY, NOBODY);
  assert.equal(L.lstat(`${d}/link`).uid, NOBODY, "lchown changes the link");
  assert.equal(L.lstat(f).gid, 0, "lchown leaves the target alone");
  L.utimensat(`${d}/link`, { sec: 5, nsec: 0 }, { sec: 6, nsec: 0 }, L.AT_SYMLINK_NOFOLLOW);
  assert.equal(L.lstat(`${d}/link`).mtimeNs, 6_000_000_000n);
  assert.notEqual(L.lstat(f).mtimeNs, 6_000_000_000n);
};

/** setuid/setgid bits are cleared on a write by a non-root user and on chown. */
cases.setuid_cleared = async (d) => {
  const f = `${d}/suid`;
  await Deno.writeFile(f, enc.encode("x"));
  L.chmod(f, 0o6777);
  assert.equal(modeBits(f), 0o6777);
  const r = await runAsNobody('printf y >> "$1"', f);
  assert.equal(r.code, 0, `write as uid ${NOBODY} failed: ${r.stderr}`);
  assert.equal(dec.decode(await Deno.readFile(f)), "xy");
  assert.equal(modeBits(f), 0o0777, "a non-root write clears setuid and setgid");

  const g = `${d}/chowned`;
  await Deno.writeFile(g, enc.encode("x"));
  L.chmod(g, 0o6755);
  L.chown(g, NOBODY, NOBODY);
  assert.equal(modeBits(g), 0o0755, "chown clears setuid and setgid");

  const h = `${d}/root-write`;
  await Deno.writeFile(h, enc.encode("x"));
  L.chmod(h, 0o4755);
  await Deno.writeFile(h, enc.encode("y"), { append: true });
  assert.equal(modeBits(h), 0o4755, "a write by root keeps setuid");
};

/** A non-root user is denied access to a root-owned 0600 file and a root-owned directory. */
cases.permission_denied = async (d) => {
  const open = `${d}/public`;
  await Deno.writeFile(open, enc.encode("public"));
  L.chmod(open, 0o644);
  const ok = await runAsNobody('cat "$1"', open);
  assert.equal(
    ok.stdout,
    "public",
    `uid ${NOBODY} cannot read a 0644 file (mount without allow_other?): ${ok.stderr}`,
  );
  const secret = `${d}/secret`;
  await Deno.writeFile(secret, enc.encode("secret"));
  L.chmod(secret, 0o600);
  const r = await runAsNobody('cat "$1"', secret);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Permission denied/, "EACCES on reading a 0600 file of root");
  const w = await runAsNobody('printf x >> "$1"', open);
  assert.match(w.stderr, /Permission denied/, "EACCES on writing a 0644 file of root");
  const c = await runAsNobody('touch "$1/new"', d);
  assert.match(c.stderr, /Permission denied/, "EACCES on creating in a 0755 dir of root");
  const m = await runAsNobody('chmod 777 "$1"', open);
  assert.match(m.stderr, /Operation not permitted/, "EPERM on chmod by a non-owner");
  L.mkdir(`${d}/closed`, 0o700);
  await Deno.writeFile(`${d}/closed/f`, enc.encode("f"));
  L.chmod(`${d}/closed/f`, 0o666);
  const t = await runAsNobody('cat "$1"', `${d}/closed/f`);
  assert.match(t.stderr, /Permission denied/, "EACCES on traversing a 0700 dir");
  L.access(secret, L.R_OK | L.W_OK);
};

/** Extended attributes: set, get, list, remove, flags and large values. */
cases.xattrs = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, enc.encode("x"));
  L.setxattr(f, "user.a", enc.encode("1"));
  L.setxattr(f, "user.b", enc.encode("22"));
  L.setxattr(f, "user.empty", new Uint8Array(0));
  assert.equal(dec.decode(L.getxattr(f, "user.a")), "1");
  assert.equal(dec.decode(L.getxattr(f, "user.b")), "22");
  assert.equal(L.getxattr(f, "user.empty").length, 0);
  const listed = L.listxattr(f).filter((n) => n.startsWith("user.")).sort();
  assert.deepEqual(listed, ["user.a", "user.b", "user.empty"]);
  throwsErrno(() => L.setxattr(f, "user.a", enc.encode("x"), L.XATTR_CREATE), "EEXIST");
  throwsErrno(() => L.setxattr(f, "user.zz", enc.encode("x"), L.XATTR_REPLACE), "ENODATA");
  L.setxattr(f, "user.a", enc.encode("replaced"), L.XATTR_REPLACE);
  assert.equal(dec.decode(L.getxattr(f, "user.a")), "replaced");
  L.setxattr(f, "user.a", enc.encode("s"));
  assert.equal(dec.decode(L.getxattr(f, "user.a")), "s", "a shorter value replaces a longer one");
  throwsErrno(() => L.getxattr(f, "user.missing"), "ENODATA");
  L.removexattr(f, "user.a");
  throwsErrno(() => L.getxattr(f, "user.a"), "ENODATA");
  throwsErrno(() => L.removexattr(f, "user.a"), "ENODATA");
  const large = pseudoRandom(60 * 1024, 6);
  L.setxattr(f, "user.large", large);
  bytesEqual(L.getxattr(f, "user.large"), large, "60 KiB xattr value");
  L.mkdir(`${d}/dir`);
  L.setxattr(`${d}/dir`, "user.dir", enc.encode("on a dir"));
  assert.equal(dec.decode(L.getxattr(`${d}/dir`, "user.dir")), "on a dir");
  throwsErrno(() => L.getxattr(`${d}/missing`, "user.a"), "ENOENT");
  L.link(f, `${d}/hard`);
  assert.equal(dec.decode(L.getxattr(`${d}/hard`, "user.b")), "22", "xattrs belong to the inode");
};

/** The attribute cases, in suite order. */
export const attrCases: CaseBodies = cases;
