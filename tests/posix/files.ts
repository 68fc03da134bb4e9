/**
 * POSIX suite cases for files: create, read and write, `O_APPEND`, `O_EXCL`, `O_TRUNC`, sparse
 * writes, overwrites and truncation.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "../_libc.ts";
import {
  BLOCK,
  bytesEqual,
  type CaseBodies,
  dec,
  enc,
  isZero,
  MiB,
  modeBits,
  pseudoRandom,
  throwsErrno,
} from "./_helpers.ts";

const cases: CaseBodies = {};

/** Files: create, read, write and sizes. */
cases.create_read_write = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, enc.encode("hello world"));
  assert.equal(dec.decode(await Deno.readFile(f)), "hello world");
  assert.equal((await Deno.stat(f)).size, 11);
  assert.ok((await Deno.stat(f)).isFile);
  const fd = L.open(f, L.O.RDWR);
  try {
    L.pwriteFull(fd, enc.encode("WORLD"), 6);
    assert.equal(dec.decode(L.preadFull(fd, 100, 0)), "hello WORLD");
    assert.equal(L.preadFull(fd, 10, 11).length, 0, "read at EOF returns 0 bytes");
  } finally {
    L.close(fd);
  }
  const empty = `${d}/empty`;
  L.close(L.open(empty, L.O.WRONLY | L.O.CREAT, 0o600));
  assert.equal(L.lstat(empty).size, 0);
  assert.equal(modeBits(empty), 0o600);
  throwsErrno(() => L.open(`${d}/missing`, L.O.RDONLY), "ENOENT");
  throwsErrno(() => L.open(d, L.O.WRONLY), "EISDIR", "open a directory for writing");
  throwsErrno(() => L.open(f, L.O.RDONLY | L.O.DIRECTORY), "ENOTDIR");
  throwsErrno(() => L.open(`${f}/x`, L.O.RDONLY), "ENOTDIR", "a file as a path component");
  throwsErrno(() => L.open(`${d}/${"n".repeat(256)}`, L.O.CREAT | L.O.WRONLY), "ENAMETOOLONG");
  const longName = `${d}/${"n".repeat(255)}`;
  await Deno.writeFile(longName, enc.encode("x"));
  assert.equal(dec.decode(await Deno.readFile(longName)), "x");
};

/** O_APPEND writes always go to the end of the file. */
cases.append = async (d) => {
  const f = `${d}/log`;
  await Deno.writeFile(f, enc.encode("one\n"));
  const fd = L.open(f, L.O.WRONLY | L.O.APPEND);
  try {
    L.write(fd, enc.encode("two\n"));
    // pwrite on an O_APPEND fd appends on Linux, ignoring the offset.
    L.pwrite(fd, enc.encode("three\n"), 0);
  } finally {
    L.close(fd);
  }
  await Deno.writeFile(f, enc.encode("four\n"), { append: true });
  assert.equal(dec.decode(await Deno.readFile(f)), "one\ntwo\nthree\nfour\n");
};

/** O_CREAT|O_EXCL fails with EEXIST on an existing name, including a dangling symlink. */
cases.o_excl = (d) => {
  const f = `${d}/f`;
  L.close(L.open(f, L.O.WRONLY | L.O.CREAT | L.O.EXCL));
  throwsErrno(() => L.open(f, L.O.WRONLY | L.O.CREAT | L.O.EXCL), "EEXIST");
  L.mkdir(`${d}/dir`);
  throwsErrno(() => L.open(`${d}/dir`, L.O.WRONLY | L.O.CREAT | L.O.EXCL), "EEXIST");
  L.symlink("nowhere", `${d}/dangling`);
  throwsErrno(() => L.open(`${d}/dangling`, L.O.WRONLY | L.O.CREAT | L.O.EXCL), "EEXIST");
};

/** O_TRUNC empties an existing file. */
cases.o_trunc = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, pseudoRandom(3 * MiB, 1));
  const fd = L.open(f, L.O.RDWR | L.O.TRUNC);
  try {
    assert.equal(L.fstat(fd).size, 0);
    L.pwriteFull(fd, enc.encode("new"), 0);
  } finally {
    L.close(fd);
  }
  assert.equal(dec.decode(await Deno.readFile(f)), "new");
};

/** Sparse files: a write at 10 MiB leaves a hole that reads as zeros. */
cases.sparse_file = async (d) => {
  const f = `${d}/sparse`;
  const fd = L.open(f, L.O.RDWR | L.O.CREAT);
  const tail = pseudoRandom(4096, 2);
  try {
    L.pwriteFull(fd, tail, 10 * MiB);
    assert.equal(L.fstat(fd).size, 10 * MiB + 4096);
    assert.ok(isZero(L.preadFull(fd, MiB, 0)), "hole start reads zeros");
    assert.ok(isZero(L.preadFull(fd, MiB, 5 * MiB - 100)), "hole middle reads zeros");
    const last = L.preadFull(fd, 8192, 10 * MiB - 4096);
    assert.ok(isZero(last.subarray(0, 4096)), "hole end reads zeros");
    bytesEqual(last.subarray(4096), tail, "data after the hole");
  } finally {
    L.close(fd);
  }
  const all = await Deno.readFile(f);
  assert.equal(all.length, 10 * MiB + 4096);
  assert.ok(isZero(all.subarray(0, 10 * MiB)));
};

/** Overwriting the middle of a file changes only that range. */
cases.overwrite_middle = async (d) => {
  const f = `${d}/f`;
  const data = pseudoRandom(6 * MiB, 3);
  await Deno.writeFile(f, data);
  const patch = pseudoRandom(300_000, 4);
  const off = BLOCK - 150_000;
  const fd = L.open(f, L.O.RDWR);
  try {
    L.pwriteFull(fd, patch, off);
  } finally {
    L.close(fd);
  }
  data.set(patch, off);
  bytesEqual(await Deno.readFile(f), data, "file after the overwrite");
  assert.equal(L.lstat(f).size, 6 * MiB);
};

/** Truncate shrinks and extends; the extended range reads as zeros even after a shrink. */
cases.truncate = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, new Uint8Array(100).fill(0x61));
  L.truncate(f, 10);
  assert.equal(L.lstat(f).size, 10);
  L.truncate(f, 50);
  const small = await Deno.readFile(f);
  assert.equal(small.length, 50);
  assert.ok(small.subarray(0, 10).every((b) => b === 0x61));
  assert.ok(isZero(small.subarray(10)), "extended range is zero-filled");

  const big = `${d}/big`;
  await Deno.writeFile(big, pseudoRandom(5 * MiB, 5));
  const cut = BLOCK + 7;
  L.truncate(big, cut);
  L.truncate(big, 9 * MiB);
  const fd = L.open(big, L.O.RDWR);
  try {
    assert.equal(L.fstat(fd).size, 9 * MiB);
    const around = L.preadFull(fd, 2 * MiB, BLOCK - MiB);
    bytesEqual(
      around.subarray(0, MiB + 7),
      pseudoRandom(5 * MiB, 5).subarray(BLOCK - MiB, cut),
      "kept",
    );
    assert.ok(isZero(around.subarray(MiB + 7)), "zeros after shrink and extend");
    L.ftruncate(fd, 0);
    assert.equal(L.fstat(fd).size, 0);
  } finally {
    L.close(fd);
  }
  throwsErrno(() => L.truncate(`${d}/missing`, 0), "ENOENT");
  throwsErrno(() => L.truncate(d, 0), "EISDIR");
};

/** The file cases, in suite order. */
export const fileCases: CaseBodies = cases;
