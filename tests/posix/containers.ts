/**
 * POSIX suite cases that container filesystems lean on: `renameat2(RENAME_WHITEOUT)` (overlayfs
 * upper layers) and `ENAMETOOLONG` for a name over 255 bytes from every call that takes a path.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "../_libc.ts";
import { type CaseBodies, dec, enc, names, throwsErrno } from "./_helpers.ts";

const cases: CaseBodies = {};

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;

/** RENAME_WHITEOUT moves the entry and leaves a 0/0 character device at the old name. */
cases.rename_whiteout = async (d) => {
  await Deno.writeFile(`${d}/a`, enc.encode("lower"));
  const ino = L.lstat(`${d}/a`).ino;
  L.renameat2(`${d}/a`, `${d}/b`, L.RENAME_WHITEOUT);
  assert.equal(L.lstat(`${d}/b`).ino, ino, "the entry moved");
  assert.equal(dec.decode(await Deno.readFile(`${d}/b`)), "lower");
  const wo = L.lstat(`${d}/a`);
  assert.equal(wo.mode & S_IFMT, S_IFCHR, "a character device took the old name");
  assert.equal(wo.mode & 0o7777, 0, "with mode 0");
  assert.equal(Number(wo.rdev), 0, "and device number 0/0");
  assert.equal(wo.nlink, 1);
  assert.notEqual(wo.ino, ino);
  assert.deepEqual((await names(d)).sort(), ["a", "b"]);

  // Over an existing target: the target is replaced, a whiteout still takes the old name.
  await Deno.writeFile(`${d}/c`, enc.encode("c"));
  await Deno.writeFile(`${d}/e`, enc.encode("e"));
  L.renameat2(`${d}/c`, `${d}/e`, L.RENAME_WHITEOUT);
  assert.equal(dec.decode(await Deno.readFile(`${d}/e`)), "c");
  assert.equal(L.lstat(`${d}/c`).mode & S_IFMT, S_IFCHR);

  // A directory can be whited out too (overlayfs removes lower directories that way).
  L.mkdir(`${d}/dir`);
  await Deno.writeFile(`${d}/dir/x`, enc.encode("x"));
  L.mkdir(`${d}/sub`);
  L.renameat2(`${d}/dir`, `${d}/sub/dir`, L.RENAME_WHITEOUT);
  assert.equal(L.lstat(`${d}/dir`).mode & S_IFMT, S_IFCHR);
  assert.deepEqual(await names(`${d}/sub/dir`), ["x"]);
  assert.equal(L.lstat(`${d}/sub`).nlink, 3, "sub gained a subdirectory");

  // With RENAME_NOREPLACE: EEXIST over an existing name, and nothing changes.
  throwsErrno(
    () => L.renameat2(`${d}/b`, `${d}/e`, L.RENAME_WHITEOUT | L.RENAME_NOREPLACE),
    "EEXIST",
    "RENAME_WHITEOUT | RENAME_NOREPLACE over an existing name",
  );
  assert.equal(dec.decode(await Deno.readFile(`${d}/b`)), "lower");
  L.renameat2(`${d}/b`, `${d}/f`, L.RENAME_WHITEOUT | L.RENAME_NOREPLACE);
  assert.equal(L.lstat(`${d}/b`).mode & S_IFMT, S_IFCHR);
  throwsErrno(
    () => L.renameat2(`${d}/f`, `${d}/e`, L.RENAME_WHITEOUT | L.RENAME_EXCHANGE),
    "EINVAL",
    "RENAME_WHITEOUT | RENAME_EXCHANGE",
  );
  throwsErrno(() => L.renameat2(`${d}/missing`, `${d}/g`, L.RENAME_WHITEOUT), "ENOENT");
  // Whiteouts are plain entries: they can be removed and replaced.
  L.unlink(`${d}/a`);
  await Deno.writeFile(`${d}/a`, enc.encode("new"));
  assert.equal(dec.decode(await Deno.readFile(`${d}/a`)), "new");
};

/** A name of 256 bytes is ENAMETOOLONG for every call, whether or not it exists. */
cases.name_too_long = async (d) => {
  const long = `${d}/${"n".repeat(256)}`;
  const ok = `${d}/${"n".repeat(255)}`;
  await Deno.writeFile(ok, enc.encode("x"));
  L.mkdir(`${d}/dir`);
  const calls: Array<[string, () => unknown]> = [
    ["open O_CREAT", () => L.open(long, L.O.CREAT | L.O.WRONLY)],
    ["open", () => L.open(long, L.O.RDONLY)],
    ["mkdir", () => L.mkdir(long)],
    ["mknod", () => L.mknod(long, 0o010644)],
    ["link to", () => L.link(ok, long)],
    ["link from", () => L.link(long, `${d}/l`)],
    ["symlink", () => L.symlink("target", long)],
    ["rename to", () => L.rename(ok, long)],
    ["rename from", () => L.rename(long, `${d}/r`)],
    ["unlink", () => L.unlink(long)],
    ["rmdir", () => L.rmdir(long)],
    ["truncate", () => L.truncate(long, 0)],
    ["chmod", () => L.chmod(long, 0o600)],
    ["chown", () => L.chown(long, 0, 0)],
    ["lstat", () => L.lstat(long)],
    ["stat in a subpath", () => L.lstat(`${long}/x`)],
  ];
  for (const [what, call] of calls) throwsErrno(call, "ENAMETOOLONG", what);
  assert.equal(dec.decode(await Deno.readFile(ok)), "x", "the 255-byte name is untouched");
  assert.deepEqual((await names(d)).sort(), ["dir", "n".repeat(255)]);
};

/** `O_TMPFILE` (x86_64: `__O_TMPFILE | O_DIRECTORY`). */
const O_TMPFILE = 0o20000000 | L.O.DIRECTORY;

/**
 * `O_TMPFILE`: where the filesystem has it (tmpfs), an unnamed file that reads back what was
 * written and never shows in the directory; where it has not (SlayerFS: libfuse 3.14 answers the
 * kernel's `FUSE_TMPFILE` with `ENOSYS`, see SEMANTICS.md), `EOPNOTSUPP` — what overlayfs and
 * programs test for to fall back to a named temporary file — and nothing left in the directory.
 */
cases.o_tmpfile = async (d) => {
  let fd: number;
  try {
    fd = L.open(d, O_TMPFILE | L.O.RDWR, 0o600);
  } catch (e) {
    assert.equal((e as L.LibcError).code, "EOPNOTSUPP", String(e));
    assert.deepEqual(await names(d), [], "nothing left behind");
    return;
  }
  try {
    L.pwriteFull(fd, enc.encode("unnamed"), 0);
    assert.equal(dec.decode(L.preadFull(fd, 7, 0)), "unnamed");
    assert.equal(L.fstat(fd).nlink, 0, "no name links to it");
    assert.deepEqual(await names(d), [], "it is not in the directory");
  } finally {
    L.close(fd);
  }
  assert.deepEqual(await names(d), []);
};

/** The cases of this file. */
export const containerCases: CaseBodies = cases;
