/**
 * POSIX suite cases for I/O beyond read and write: fallocate, copy_file_range, SEEK_DATA and
 * SEEK_HOLE, fsync, a file over 64 MiB, and writes across block boundaries.
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
  pseudoRandom,
  sha256,
  throwsErrno,
} from "./_helpers.ts";

const cases: CaseBodies = {};

/** fallocate: mode 0 extends, KEEP_SIZE does not, PUNCH_HOLE zeroes and keeps the size. */
cases.fallocate = (d) => {
  const f = `${d}/f`;
  const fd = L.open(f, L.O.RDWR | L.O.CREAT);
  try {
    L.fallocate(fd, 0, 0, MiB);
    assert.equal(L.fstat(fd).size, MiB);
    assert.ok(isZero(L.preadFull(fd, MiB, 0)));
    L.fallocate(fd, L.FALLOC_FL_KEEP_SIZE, MiB, MiB);
    assert.equal(L.fstat(fd).size, MiB, "KEEP_SIZE keeps the size");
    L.fallocate(fd, 0, 0, 1000);
    assert.equal(L.fstat(fd).size, MiB, "allocating inside the file keeps the size");
    const data = pseudoRandom(6 * MiB, 9);
    L.pwriteFull(fd, data, 0);
    const holeStart = BLOCK - 8192, holeLen = 3 * 8192;
    L.fallocate(fd, L.FALLOC_FL_PUNCH_HOLE | L.FALLOC_FL_KEEP_SIZE, holeStart, holeLen);
    assert.equal(L.fstat(fd).size, 6 * MiB, "PUNCH_HOLE keeps the size");
    data.fill(0, holeStart, holeStart + holeLen);
    bytesEqual(L.preadFull(fd, 6 * MiB, 0), data, "file after PUNCH_HOLE");
    L.fallocate(fd, L.FALLOC_FL_PUNCH_HOLE | L.FALLOC_FL_KEEP_SIZE, 6 * MiB - 100, 10_000);
    assert.equal(L.fstat(fd).size, 6 * MiB, "punching past EOF keeps the size");
    data.fill(0, 6 * MiB - 100);
    bytesEqual(L.preadFull(fd, 200, 6 * MiB - 200), data.subarray(6 * MiB - 200), "tail");
    L.fallocate(fd, 0, 6 * MiB, 12345);
    assert.equal(L.fstat(fd).size, 6 * MiB + 12345, "mode 0 extends past EOF");
    throwsErrno(
      () => L.fallocate(fd, L.FALLOC_FL_PUNCH_HOLE, 0, 10),
      "EOPNOTSUPP",
      "PUNCH_HOLE without KEEP_SIZE",
    );
  } finally {
    L.close(fd);
  }
};

/** copy_file_range: whole files, across directories, partial ranges at offsets. */
cases.copy_file_range = async (d) => {
  const data = pseudoRandom(3 * MiB + 123, 10);
  await Deno.writeFile(`${d}/src`, data);
  L.mkdir(`${d}/other`);
  const src = L.open(`${d}/src`, L.O.RDONLY);
  const dst = L.open(`${d}/other/dst`, L.O.WRONLY | L.O.CREAT);
  const part = L.open(`${d}/part`, L.O.WRONLY | L.O.CREAT);
  try {
    let done = 0;
    while (done < data.length) {
      const n = L.copyFileRange(src, done, dst, done, data.length - done);
      assert.ok(n > 0, "copy_file_range made progress");
      done += n;
    }
    let copied = 0;
    const len = 100_000;
    while (copied < len) {
      copied += L.copyFileRange(src, 1000 + copied, part, 5000 + copied, len - copied);
    }
    assert.equal(L.copyFileRange(src, data.length, part, 0, 100), 0, "copy at EOF copies nothing");
  } finally {
    L.close(src);
    L.close(dst);
    L.close(part);
  }
  bytesEqual(await Deno.readFile(`${d}/other/dst`), data, "full copy");
  const p = await Deno.readFile(`${d}/part`);
  assert.equal(p.length, 105_000);
  assert.ok(isZero(p.subarray(0, 5000)));
  bytesEqual(p.subarray(5000), data.subarray(1000, 101_000), "partial copy");
};

/** lseek SEEK_DATA / SEEK_HOLE on dense and sparse files. */
cases.lseek_data_hole = async (d) => {
  const dense = `${d}/dense`;
  await Deno.writeFile(dense, pseudoRandom(100_000, 11));
  let fd = L.open(dense, L.O.RDONLY);
  try {
    assert.equal(L.lseek(fd, 0, L.SEEK_DATA), 0);
    assert.equal(L.lseek(fd, 0, L.SEEK_HOLE), 100_000, "a dense file's only hole is at EOF");
    assert.equal(L.lseek(fd, 5000, L.SEEK_DATA), 5000);
    throwsErrno(() => L.lseek(fd, 100_000, L.SEEK_DATA), "ENXIO");
    throwsErrno(() => L.lseek(fd, 100_000, L.SEEK_HOLE), "ENXIO");
    throwsErrno(() => L.lseek(fd, 200_000, L.SEEK_DATA), "ENXIO");
    assert.equal(L.lseek(fd, 0, L.SEEK_END), 100_000);
  } finally {
    L.close(fd);
  }
  const sparse = `${d}/sparse`;
  const dataStart = 8 * MiB, dataLen = 64 * 1024, size = 16 * MiB;
  fd = L.open(sparse, L.O.RDWR | L.O.CREAT);
  try {
    L.pwriteFull(fd, pseudoRandom(dataLen, 12), dataStart);
    L.ftruncate(fd, size);
    for (const off of [0, 12345, dataStart - 1]) {
      const at = L.lseek(fd, off, L.SEEK_DATA);
      assert.ok(at >= off && at <= dataStart, `SEEK_DATA(${off}) = ${at}`);
    }
    assert.equal(L.lseek(fd, dataStart, L.SEEK_DATA), dataStart);
    const hole = L.lseek(fd, dataStart, L.SEEK_HOLE);
    assert.ok(hole >= dataStart + dataLen && hole <= size, `SEEK_HOLE(data) = ${hole}`);
    const h0 = L.lseek(fd, 0, L.SEEK_HOLE);
    assert.ok(h0 === 0 || h0 === size, `SEEK_HOLE(0) = ${h0}`);
    try {
      const t = L.lseek(fd, size - 10, L.SEEK_DATA);
      assert.ok(t >= size - 10 && t < size, `SEEK_DATA in the trailing hole = ${t}`);
    } catch (e) {
      assert.equal((e as L.LibcError).code, "ENXIO");
    }
    throwsErrno(() => L.lseek(fd, size, L.SEEK_DATA), "ENXIO");
    throwsErrno(() => L.lseek(fd, size + 1, L.SEEK_HOLE), "ENXIO");
  } finally {
    L.close(fd);
  }
};

/** fsync and fdatasync on files and directories. */
cases.fsync = async (d) => {
  const f = `${d}/f`;
  const fd = L.open(f, L.O.RDWR | L.O.CREAT);
  try {
    L.pwriteFull(fd, pseudoRandom(MiB, 13), 0);
    L.fsync(fd);
    L.pwriteFull(fd, enc.encode("tail"), MiB);
    L.fdatasync(fd);
    assert.equal(L.fstat(fd).size, MiB + 4);
  } finally {
    L.close(fd);
  }
  const dfd = L.open(d, L.O.RDONLY | L.O.DIRECTORY);
  try {
    L.fsync(dfd);
    L.fdatasync(dfd);
  } finally {
    L.close(dfd);
  }
  const file = await Deno.open(f, { write: true });
  try {
    await file.write(enc.encode("head"));
    await file.sync();
    await file.syncData();
  } finally {
    file.close();
  }
  const back = await Deno.readFile(f);
  assert.equal(dec.decode(back.subarray(0, 4)), "head");
  assert.equal(dec.decode(back.subarray(MiB)), "tail");
};

/** A file larger than 64 MiB is written in 1 MiB pieces and read back with the same checksum. */
cases.large_file = async (d) => {
  const size = 65 * MiB + 12_345;
  const data = pseudoRandom(size, 14);
  const want = await sha256(data);
  const f = `${d}/large`;
  const file = await Deno.open(f, { write: true, create: true });
  try {
    for (let off = 0; off < size; off += MiB) {
      const piece = data.subarray(off, Math.min(size, off + MiB));
      let w = 0;
      while (w < piece.length) w += await file.write(piece.subarray(w));
    }
  } finally {
    file.close();
  }
  assert.equal((await Deno.stat(f)).size, size);
  const back = await Deno.readFile(f);
  assert.equal(back.length, size);
  assert.equal(await sha256(back), want, "checksum of the data read back");
};

/** Writes at odd offsets across 4 MiB block boundaries, checked against an in-memory copy. */
cases.block_boundaries = async (d) => {
  const f = `${d}/f`;
  const model = new Uint8Array(13 * MiB);
  let size = 0;
  const writes: [number, number][] = [
    [BLOCK - 3, 7],
    [2 * BLOCK - 1001, 5000],
    [1, BLOCK + 10],
    [3 * BLOCK - 1, 2],
    [BLOCK, 1],
    [BLOCK - 1, 1],
    [2 * BLOCK + 4095, 4097],
    [12 * MiB + 77, MiB - 77],
  ];
  const fd = L.open(f, L.O.RDWR | L.O.CREAT);
  try {
    let seed = 100;
    for (const [off, len] of writes) {
      const piece = pseudoRandom(len, seed++);
      L.pwriteFull(fd, piece, off);
      model.set(piece, off);
      size = Math.max(size, off + len);
      assert.equal(L.fstat(fd).size, size);
    }
    for (const [off, len] of [[BLOCK - 10, 20], [2 * BLOCK - 5000, 10_000], [0, size]]) {
      bytesEqual(
        L.preadFull(fd, len!, off!),
        model.subarray(off!, off! + len!),
        `read ${off}+${len}`,
      );
    }
  } finally {
    L.close(fd);
  }
  bytesEqual(await Deno.readFile(f), model.subarray(0, size), "whole file");
};

/** The I/O cases, in suite order. */
/**
 * st_blocks counts the blocks that hold data (`du`): a sparse file little, a written one its data
 * once however often overwritten; growing adds nothing, punching a hole takes away, fallocate
 * allocates.
 */
cases.st_blocks = (d) => {
  const blocks = (fd: number) => L.fstat(fd).blocks * 512;
  const sparse = L.open(`${d}/sparse`, L.O.RDWR | L.O.CREAT);
  try {
    L.pwriteFull(sparse, pseudoRandom(4096, 1), 1 << 30);
    L.fsync(sparse);
    assert.equal(L.fstat(sparse).size, (1 << 30) + 4096);
    assert.ok(blocks(sparse) >= 4096, `the data counts: ${blocks(sparse)}`);
    assert.ok(blocks(sparse) < L.fstat(sparse).size / 10, `a sparse file: ${blocks(sparse)}`);
  } finally {
    L.close(sparse);
  }
  const full = L.open(`${d}/full`, L.O.RDWR | L.O.CREAT);
  try {
    L.pwriteFull(full, pseudoRandom(2 * MiB, 2), 0);
    L.fsync(full);
    assert.ok(blocks(full) >= 2 * MiB, `a written file: ${blocks(full)}`);
    L.pwriteFull(full, pseudoRandom(2 * MiB, 3), 0);
    L.fsync(full);
    assert.ok(blocks(full) <= 2 * MiB + 65536, `an overwrite counts once: ${blocks(full)}`);
    L.ftruncate(full, 64 * MiB);
    assert.ok(blocks(full) <= 2 * MiB + 65536, `growing adds a hole: ${blocks(full)}`);
    L.fallocate(full, L.FALLOC_FL_PUNCH_HOLE | L.FALLOC_FL_KEEP_SIZE, 0, MiB);
    assert.ok(blocks(full) <= MiB + 65536, `a punched hole: ${blocks(full)}`);
  } finally {
    L.close(full);
  }
  const alloc = L.open(`${d}/alloc`, L.O.RDWR | L.O.CREAT);
  try {
    L.fallocate(alloc, 0, 0, MiB);
    assert.ok(blocks(alloc) >= MiB, `fallocate allocates: ${blocks(alloc)}`);
  } finally {
    L.close(alloc);
  }
};

export const ioCases: CaseBodies = cases;
