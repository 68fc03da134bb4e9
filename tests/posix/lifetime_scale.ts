/**
 * POSIX suite cases for lifetimes and scale: a file unlinked while open, readdir while entries
 * are unlinked, a directory of 10,000 entries, and statfs.
 *
 * @module
 */

import assert from "node:assert/strict";
import pLimit from "p-limit";
import * as L from "../_libc.ts";
import {
  bytesEqual,
  type CaseBodies,
  dec,
  enc,
  MiB,
  names,
  pseudoRandom,
  throwsErrno,
} from "./_helpers.ts";

const cases: CaseBodies = {};

/** An unlinked file stays readable and writable through open descriptors until closed. */
cases.unlinked_open_file = async (d) => {
  const f = `${d}/f`;
  const data = pseudoRandom(5 * MiB + 3, 7);
  await Deno.writeFile(f, data);
  const file = await Deno.open(f, { read: true, write: true });
  const fd = L.open(f, L.O.RDONLY);
  try {
    L.unlink(f);
    throwsErrno(() => L.lstat(f), "ENOENT");
    assert.deepEqual(await names(d), []);
    await file.seek(0, Deno.SeekMode.End);
    const extra = enc.encode("appended after unlink");
    assert.equal(await file.write(extra), extra.length);
    const expected = new Uint8Array(data.length + extra.length);
    expected.set(data);
    expected.set(extra, data.length);
    bytesEqual(L.preadFull(fd, expected.length + 10, 0), expected, "read after unlink");
    assert.equal(L.fstat(fd).nlink, 0);
    assert.equal(L.fstat(fd).size, expected.length);
    await Deno.writeFile(f, enc.encode("a new file"));
    bytesEqual(L.preadFull(fd, 10, 0), expected.subarray(0, 10), "the old inode is separate");
  } finally {
    file.close();
    L.close(fd);
  }
  assert.equal(dec.decode(await Deno.readFile(f)), "a new file");
};

/** readdir during concurrent unlinks: no entry twice, every surviving entry seen. */
cases.readdir_concurrent_unlink = async (d) => {
  const n = 600;
  const all: string[] = [];
  for (let i = 0; i < n; i++) all.push(`entry-${i.toString().padStart(4, "0")}`);
  await Promise.all(all.map((name) => Deno.writeFile(`${d}/${name}`, new Uint8Array(0))));
  const shuffled = [...all].sort(() => Math.random() - 0.5);
  const doomed = new Set(shuffled.slice(0, n / 2));
  const toDelete = [...doomed];
  const seen = new Map<string, number>();
  for await (const e of Deno.readDir(d)) {
    seen.set(e.name, (seen.get(e.name) ?? 0) + 1);
    for (let k = 0; k < 3 && toDelete.length > 0; k++) L.unlink(`${d}/${toDelete.pop()}`);
  }
  for (const [name, count] of seen) assert.equal(count, 1, `"${name}" listed ${count} times`);
  for (const name of all) {
    if (!doomed.has(name)) assert.ok(seen.has(name), `surviving "${name}" not listed`);
  }
  for (const name of seen.keys()) assert.ok(all.includes(name), `unknown entry "${name}"`);
  while (toDelete.length > 0) L.unlink(`${d}/${toDelete.pop()}`);
  assert.equal((await names(d)).length, n / 2);
};

/** A directory of 10,000 entries: create, list, stat all, delete. */
cases.large_directory = (d) => largeDirectory(d, 10_000);

/**
 * A directory of `n` entries: create, list, stat all, delete. The suites on networked metadata
 * engines run it with fewer entries (still several of their scan pages): 10,000 took 8-10
 * minutes of a loaded CI machine on etcd and PostgreSQL.
 */
export async function largeDirectory(d: string, n: number): Promise<void> {
  const name = (i: number) => `file-with-a-longer-name-${i}`;
  const indexes = Array.from({ length: n }, (_, i) => i);
  const limit = pLimit(64);
  await limit.map(indexes, (i) => Deno.writeFile(`${d}/${name(i)}`, enc.encode(String(i))));
  const listed = await names(d);
  assert.equal(listed.length, n);
  assert.equal(new Set(listed).size, n);
  const listedSet = new Set(listed);
  for (let i = 0; i < n; i++) assert.ok(listedSet.has(name(i)), `"${name(i)}" not listed`);
  await limit.map(indexes, async (i) => {
    assert.equal((await Deno.lstat(`${d}/${name(i)}`)).size, String(i).length);
  });
  await limit.map(indexes, (i) => Deno.remove(`${d}/${name(i)}`));
  assert.deepEqual(await names(d), []);
}

/** statfs/statvfs report sane numbers. */
cases.statfs = async (d) => {
  await Deno.writeFile(`${d}/f`, pseudoRandom(MiB, 8));
  const v = L.statvfs(d);
  assert.ok(v.bsize > 0, "bsize");
  assert.ok(v.frsize > 0, "frsize");
  assert.ok(v.blocks > 0, "blocks");
  assert.ok(v.bfree <= v.blocks, "bfree <= blocks");
  assert.ok(v.bavail <= v.bfree, "bavail <= bfree");
  assert.ok(v.files === 0 || v.ffree <= v.files, "ffree <= files");
  assert.ok(v.namemax >= 255, "namemax >= 255");
  const s = L.statfs(d);
  assert.equal(s.blocks, v.blocks);
  assert.ok(s.namelen >= 255);
};

/** The lifetime and scale cases, in suite order. */
export const lifetimeScaleCases: CaseBodies = cases;
