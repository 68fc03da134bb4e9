/**
 * POSIX suite cases for the namespace: mkdir and rmdir, unlink, and rename in all its forms
 * (over files and directories, its errors, `RENAME_NOREPLACE`, `RENAME_EXCHANGE`, and `..` after
 * a move).
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "../_libc.ts";
import { type CaseBodies, dec, enc, modeBits, names, throwsErrno } from "./_helpers.ts";

const cases: CaseBodies = {};

/** mkdir/rmdir, link counts, and the errors for the wrong kind of node. */
cases.mkdir_rmdir = async (d) => {
  const a = `${d}/a`;
  L.mkdir(a, 0o750);
  assert.equal(modeBits(a), 0o750);
  assert.equal(L.lstat(a).nlink, 2);
  const parentLinks = L.lstat(d).nlink;
  L.mkdir(`${a}/s`);
  assert.equal(L.lstat(a).nlink, 3, "a subdirectory adds a link to its parent");
  throwsErrno(() => L.mkdir(a), "EEXIST");
  throwsErrno(() => L.rmdir(a), "ENOTEMPTY");
  await Deno.writeFile(`${a}/s/f`, enc.encode("x"));
  throwsErrno(() => L.rmdir(`${a}/s/f`), "ENOTDIR", "rmdir of a file");
  throwsErrno(() => L.unlink(`${a}/s`), "EISDIR", "unlink of a directory");
  throwsErrno(() => L.mkdir(`${a}/s/f/x`), "ENOTDIR");
  throwsErrno(() => L.mkdir(`${a}/missing/x`), "ENOENT");
  throwsErrno(() => L.rmdir(`${a}/missing`), "ENOENT");
  throwsErrno(() => L.rmdir(`${a}/s/.`), "EINVAL");
  L.unlink(`${a}/s/f`);
  L.rmdir(`${a}/s`);
  assert.equal(L.lstat(a).nlink, 2);
  assert.deepEqual(await names(a), []);
  L.rmdir(a);
  throwsErrno(() => L.lstat(a), "ENOENT");
  assert.equal(L.lstat(d).nlink, parentLinks - 1);
};

/** unlink removes a name; a second unlink fails with ENOENT. */
cases.unlink = async (d) => {
  await Deno.writeFile(`${d}/f`, enc.encode("x"));
  await Deno.writeFile(`${d}/g`, enc.encode("y"));
  L.unlink(`${d}/f`);
  throwsErrno(() => L.lstat(`${d}/f`), "ENOENT");
  throwsErrno(() => L.unlink(`${d}/f`), "ENOENT");
  assert.deepEqual(await names(d), ["g"]);
  L.symlink("g", `${d}/link`);
  L.unlink(`${d}/link`);
  assert.equal(
    dec.decode(await Deno.readFile(`${d}/g`)),
    "y",
    "unlinking a symlink keeps its target",
  );
};

/** rename of a file over a file, in one directory and across directories. */
cases.rename_file_over_file = async (d) => {
  await Deno.writeFile(`${d}/a`, enc.encode("A"));
  await Deno.writeFile(`${d}/b`, enc.encode("B"));
  const ino = L.lstat(`${d}/a`).ino;
  L.rename(`${d}/a`, `${d}/b`);
  throwsErrno(() => L.lstat(`${d}/a`), "ENOENT");
  assert.equal(dec.decode(await Deno.readFile(`${d}/b`)), "A");
  assert.equal(L.lstat(`${d}/b`).ino, ino, "the renamed inode keeps its number");
  L.mkdir(`${d}/sub`);
  await Deno.writeFile(`${d}/sub/c`, enc.encode("C"));
  L.rename(`${d}/b`, `${d}/sub/c`);
  assert.equal(dec.decode(await Deno.readFile(`${d}/sub/c`)), "A");
  assert.deepEqual(await names(d), ["sub"]);
  L.rename(`${d}/sub/c`, `${d}/sub/c`);
  assert.equal(dec.decode(await Deno.readFile(`${d}/sub/c`)), "A", "rename onto itself is a no-op");
  L.link(`${d}/sub/c`, `${d}/hard`);
  L.rename(`${d}/sub/c`, `${d}/hard`);
  assert.ok(L.lstat(`${d}/sub/c`).nlink === 2, "rename between hard links of one inode is a no-op");
  throwsErrno(() => L.rename(`${d}/missing`, `${d}/x`), "ENOENT");
};

/** rename of a directory over an empty directory, with parent link counts. */
cases.rename_dir_over_empty_dir = async (d) => {
  L.mkdir(`${d}/p`);
  L.mkdir(`${d}/q`);
  L.mkdir(`${d}/p/src`);
  await Deno.writeFile(`${d}/p/src/f`, enc.encode("f"));
  L.mkdir(`${d}/q/dst`);
  assert.equal(L.lstat(`${d}/p`).nlink, 3);
  assert.equal(L.lstat(`${d}/q`).nlink, 3);
  L.rename(`${d}/p/src`, `${d}/q/dst`);
  assert.equal(dec.decode(await Deno.readFile(`${d}/q/dst/f`)), "f");
  throwsErrno(() => L.lstat(`${d}/p/src`), "ENOENT");
  assert.equal(L.lstat(`${d}/p`).nlink, 2, "old parent loses the moved subdirectory");
  assert.equal(L.lstat(`${d}/q`).nlink, 3, "new parent: replaced one subdirectory by another");
  L.rename(`${d}/q/dst`, `${d}/p/moved`);
  assert.equal(L.lstat(`${d}/p`).nlink, 3);
  assert.equal(L.lstat(`${d}/q`).nlink, 2);
};

/** The errors of rename(2) and renameat2 RENAME_NOREPLACE. */
cases.rename_errors = async (d) => {
  L.mkdir(`${d}/dir`);
  L.mkdir(`${d}/full`);
  await Deno.writeFile(`${d}/full/x`, enc.encode("x"));
  L.mkdir(`${d}/dir/sub`);
  await Deno.writeFile(`${d}/file`, enc.encode("file"));
  await Deno.writeFile(`${d}/file2`, enc.encode("file2"));
  throwsErrno(() => L.rename(`${d}/dir`, `${d}/full`), "ENOTEMPTY", "dir over non-empty dir");
  throwsErrno(() => L.rename(`${d}/dir`, `${d}/dir/sub/inside`), "EINVAL", "dir into itself");
  throwsErrno(() => L.rename(`${d}/dir`, `${d}/dir/sub`), "EINVAL", "dir onto its child");
  throwsErrno(() => L.rename(`${d}/dir/sub`, `${d}/dir`), "ENOTEMPTY", "dir onto its parent");
  throwsErrno(() => L.rename(`${d}/file`, `${d}/dir`), "EISDIR", "file over dir");
  throwsErrno(() => L.rename(`${d}/dir`, `${d}/file`), "ENOTDIR", "dir over file");
  throwsErrno(() => L.rename(`${d}/file`, `${d}/nodir/file`), "ENOENT", "missing target parent");
  throwsErrno(() => L.rename(`${d}/file`, `${d}/file2/x`), "ENOTDIR", "file as target parent");
  throwsErrno(
    () => L.renameat2(`${d}/file`, `${d}/file2`, L.RENAME_NOREPLACE),
    "EEXIST",
    "RENAME_NOREPLACE",
  );
  L.renameat2(`${d}/file`, `${d}/file3`, L.RENAME_NOREPLACE);
  assert.equal(dec.decode(await Deno.readFile(`${d}/file3`)), "file");
  assert.equal(dec.decode(await Deno.readFile(`${d}/file2`)), "file2");
  assert.deepEqual(await names(`${d}/full`), ["x"], "the failed rename kept the target");
  throwsErrno(
    () => L.renameat2(`${d}/file3`, `${d}/absent`, L.RENAME_EXCHANGE),
    "ENOENT",
    "RENAME_EXCHANGE with a missing target",
  );
};

/** RENAME_EXCHANGE swaps a file and a directory, and two directories across parents. */
cases.rename_exchange = async (d) => {
  L.mkdir(`${d}/p1`);
  L.mkdir(`${d}/p2`);
  await Deno.writeFile(`${d}/p1/f`, enc.encode("file"));
  L.mkdir(`${d}/p2/d`);
  await Deno.writeFile(`${d}/p2/d/child`, enc.encode("child"));
  const fileIno = L.lstat(`${d}/p1/f`).ino;
  const dirIno = L.lstat(`${d}/p2/d`).ino;
  L.renameat2(`${d}/p1/f`, `${d}/p2/d`, L.RENAME_EXCHANGE);
  assert.equal(L.lstat(`${d}/p1/f`).ino, dirIno);
  assert.equal(L.lstat(`${d}/p2/d`).ino, fileIno);
  assert.equal(dec.decode(await Deno.readFile(`${d}/p1/f/child`)), "child");
  assert.equal(dec.decode(await Deno.readFile(`${d}/p2/d`)), "file");
  assert.equal(L.lstat(`${d}/p1`).nlink, 3, "p1 gained a subdirectory");
  assert.equal(L.lstat(`${d}/p2`).nlink, 2, "p2 lost a subdirectory");
  assert.equal(L.stat(`${d}/p1/f/..`).ino, L.lstat(`${d}/p1`).ino, "`..` follows the exchange");

  L.mkdir(`${d}/p2/e`);
  await Deno.writeFile(`${d}/p2/e/m2`, enc.encode("m2"));
  L.renameat2(`${d}/p1/f`, `${d}/p2/e`, L.RENAME_EXCHANGE);
  assert.deepEqual(await names(`${d}/p1/f`), ["m2"]);
  assert.deepEqual(await names(`${d}/p2/e`), ["child"]);
  assert.equal(L.stat(`${d}/p1/f/..`).ino, L.lstat(`${d}/p1`).ino);
  assert.equal(L.stat(`${d}/p2/e/..`).ino, L.lstat(`${d}/p2`).ino);
  assert.equal(L.lstat(`${d}/p1`).nlink, 3);
  assert.equal(L.lstat(`${d}/p2`).nlink, 3);
  throwsErrno(
    () => L.renameat2(`${d}/p2`, `${d}/p2/e`, L.RENAME_EXCHANGE),
    "EINVAL",
    "exchange with a descendant",
  );
};

/** After moving a directory, its `..` is the new parent. */
cases.rename_updates_dotdot = async (d) => {
  L.mkdir(`${d}/a`);
  L.mkdir(`${d}/a/x`);
  L.mkdir(`${d}/b`);
  L.rename(`${d}/a/x`, `${d}/b/x`);
  assert.equal(L.stat(`${d}/b/x/..`).ino, L.lstat(`${d}/b`).ino);
  await Deno.writeFile(`${d}/b/x/../via-dotdot`, enc.encode("y"));
  assert.deepEqual(await names(`${d}/b`), ["via-dotdot", "x"]);
  assert.deepEqual(await names(`${d}/a`), []);
  Deno.chdir(`${d}/b/x`);
  try {
    assert.equal(L.stat("..").ino, L.lstat(`${d}/b`).ino);
  } finally {
    Deno.chdir("/");
  }
};

/** The namespace cases, in suite order. */
export const namespaceCases: CaseBodies = cases;
