/**
 * POSIX suite cases for links and special nodes: hard links, symlinks, and mknod (FIFOs,
 * sockets, devices).
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "../_libc.ts";
import { type CaseBodies, dec, enc, modeBits, names, throwsErrno } from "./_helpers.ts";

const cases: CaseBodies = {};

/** Hard links share data and count links; unlinking one name keeps the other. */
cases.hard_links = async (d) => {
  const f = `${d}/f`, g = `${d}/g`;
  await Deno.writeFile(f, enc.encode("shared"));
  assert.equal(L.lstat(f).nlink, 1);
  L.mkdir(`${d}/sub`);
  L.link(f, g);
  L.link(f, `${d}/sub/h`);
  assert.equal(L.lstat(f).nlink, 3);
  assert.equal(L.lstat(g).ino, L.lstat(f).ino);
  await Deno.writeFile(g, enc.encode(" data"), { append: true });
  assert.equal(dec.decode(await Deno.readFile(f)), "shared data");
  L.chmod(g, 0o600);
  assert.equal(modeBits(f), 0o600, "attributes are shared");
  throwsErrno(() => L.link(f, g), "EEXIST");
  throwsErrno(() => L.link(`${d}/missing`, `${d}/x`), "ENOENT");
  throwsErrno(() => L.link(`${d}/sub`, `${d}/dirlink`), "EPERM", "hard link to a directory");
  L.unlink(f);
  assert.equal(L.lstat(g).nlink, 2);
  assert.equal(dec.decode(await Deno.readFile(`${d}/sub/h`)), "shared data");
  L.unlink(`${d}/sub/h`);
  assert.equal(L.lstat(g).nlink, 1);
  assert.equal(dec.decode(await Deno.readFile(g)), "shared data");
};

/** Symlinks: readlink, long and dangling targets, following for reads and creates. */
cases.symlinks = async (d) => {
  await Deno.writeFile(`${d}/target`, enc.encode("target data"));
  L.symlink("target", `${d}/link`);
  assert.equal(L.readlink(`${d}/link`), "target");
  const st = L.lstat(`${d}/link`);
  assert.equal(st.mode & 0o170000, 0o120000, "lstat sees a symlink");
  assert.equal(st.size, "target".length, "a symlink's size is its target's length");
  assert.equal(dec.decode(await Deno.readFile(`${d}/link`)), "target data");
  assert.equal(L.stat(`${d}/link`).ino, L.lstat(`${d}/target`).ino);
  const long = "x/".repeat(1999) + "end";
  L.symlink(long, `${d}/long`);
  assert.equal(L.readlink(`${d}/long`), long);
  L.symlink("does/not/exist", `${d}/dangling`);
  throwsErrno(() => L.stat(`${d}/dangling`), "ENOENT");
  assert.equal(L.readlink(`${d}/dangling`), "does/not/exist");
  L.symlink("created", `${d}/creator`);
  await Deno.writeFile(`${d}/creator`, enc.encode("via link"));
  assert.equal(dec.decode(await Deno.readFile(`${d}/created`)), "via link");
  L.mkdir(`${d}/dir`);
  L.symlink("dir", `${d}/dirlink`);
  await Deno.writeFile(`${d}/dirlink/inside`, enc.encode("i"));
  assert.deepEqual(await names(`${d}/dir`), ["inside"]);
  throwsErrno(() => L.symlink("x", `${d}/link`), "EEXIST");
  throwsErrno(() => L.readlink(`${d}/target`), "EINVAL", "readlink of a regular file");
  L.symlink("loop", `${d}/loop`);
  throwsErrno(() => L.stat(`${d}/loop`), "ELOOP");
};

/** mknod creates FIFOs, sockets and character devices (as root). */
cases.mknod = async (d) => {
  L.mkfifo(`${d}/fifo`, 0o640);
  const fifo = L.lstat(`${d}/fifo`);
  assert.equal(fifo.mode & 0o170000, L.S_IFIFO);
  assert.equal(fifo.mode & 0o777, 0o640);
  assert.ok((await Deno.lstat(`${d}/fifo`)).isFifo);
  L.mknod(`${d}/sock`, L.S_IFSOCK | 0o600);
  assert.equal(L.lstat(`${d}/sock`).mode & 0o170000, L.S_IFSOCK);
  const dev = L.makedev(1, 3);
  L.mknod(`${d}/null`, L.S_IFCHR | 0o666, dev);
  const chr = L.lstat(`${d}/null`);
  assert.equal(chr.mode & 0o170000, L.S_IFCHR);
  assert.equal(chr.rdev, dev);
  const big = L.makedev(300, 70000);
  L.mknod(`${d}/bigdev`, L.S_IFCHR | 0o600, big);
  assert.equal(L.lstat(`${d}/bigdev`).rdev, big, "large major/minor numbers survive");
  L.mknod(`${d}/regular`, L.S_IFREG | 0o644);
  assert.equal(L.lstat(`${d}/regular`).size, 0);
  throwsErrno(() => L.mkfifo(`${d}/fifo`), "EEXIST");
  assert.deepEqual(await names(d), ["bigdev", "fifo", "null", "regular", "sock"]);
  L.unlink(`${d}/fifo`);
  L.unlink(`${d}/null`);
};

/** The link and node cases, in suite order. */
export const linkCases: CaseBodies = cases;
