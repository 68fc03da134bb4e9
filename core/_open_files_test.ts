import assert from "node:assert/strict";
import { type Handle, OpenFiles, readahead } from "./_open_files.ts";
import type { Fh, Ino } from "./types.ts";

const ino = 7 as Ino;

Deno.test("OpenFiles counts opens per inode and checks handles", () => {
  const t = new OpenFiles();
  const a = t.openFile(ino, 0, 100);
  const b = t.openFile(ino, 2, 999);
  assert.notEqual(a.fh, b.fh);
  assert.equal(a.keepCache, true);
  assert.equal(t.file(ino)?.opens, 2);
  assert.equal(t.file(ino)?.size, 100, "the size of the first open stays");
  assert.equal(t.isOpen(ino), true);
  assert.equal(t.handle(b.fh, ino).flags, 2);
  assert.throws(() => t.handle(b.fh, 8 as Ino), { code: "EBADF" });
  assert.throws(() => t.handle(12345 as Fh), { code: "EBADF" });
  t.closeHandle(a.fh);
  assert.throws(() => t.handle(a.fh), { code: "EBADF" });
  assert.deepEqual([t.fileCount, t.handleCount], [1, 1]);
  t.closeFile(ino);
  assert.equal(t.isOpen(ino), false);
  assert.deepEqual([...t.files()], []);
});

Deno.test("OpenFiles gives directory handles an empty snapshot", () => {
  const t = new OpenFiles();
  const { fh } = t.openDir(ino);
  assert.deepEqual(t.handle(fh, ino).dir, { entries: undefined });
  assert.equal(t.fileCount, 0);
});

Deno.test("readahead() doubles the window of sequential reads up to readaheadMax, resets on a jump", () => {
  const fetched: Array<[number, number]> = [];
  const data = {
    blockSize: 10,
    readaheadMax: 80,
    prefetch: (_: Ino, off: number, len: number) => fetched.push([off, len]),
  };
  const h: Handle = { ino, flags: 0 };
  readahead(data, h, ino, 0, 5, 1000);
  assert.deepEqual(fetched, [], "the first read earns no window");
  for (let off = 5; off < 100; off += 5) readahead(data, h, ino, off, off + 5, 1000);
  assert.equal(h.window, 80);
  assert.deepEqual(fetched.slice(0, 3), [[10, 10], [15, 20], [20, 40]]);
  readahead(data, h, ino, 900, 990, 1000);
  assert.equal(h.window, 80, "within 1 MiB counts as sequential");
  assert.deepEqual(fetched.at(-1), [990, 10], "clipped at the end of the file");
  readahead(data, h, ino, 5 << 20, (5 << 20) + 5, 10 << 20);
  assert.equal(h.window, 0);
});

Deno.test("readahead() with readaheadMax 0 or under a block: sequential reads still have a window", () => {
  const fetched: Array<[number, number]> = [];
  const off = { blockSize: 10, readaheadMax: 0, prefetch: () => fetched.push([0, 0]) };
  const h: Handle = { ino, flags: 0 };
  for (let o = 0; o < 100; o += 5) readahead(off, h, ino, o, o + 5, 1000);
  assert.equal(h.window, 10, "one block: the read is sequential (whole blocks)");
  assert.deepEqual(fetched, [], "nothing fetched ahead");
  const small: Array<[number, number]> = [];
  const data = {
    blockSize: 10,
    readaheadMax: 25,
    prefetch: (_: Ino, o: number, l: number) => small.push([o, l]),
  };
  const h2: Handle = { ino, flags: 0 };
  for (let o = 0; o < 100; o += 5) readahead(data, h2, ino, o, o + 5, 1000);
  assert.equal(h2.window, 25, "capped at readaheadMax, not a whole number of blocks");
  assert.deepEqual(small.at(-1), [100, 25]);
});
