import assert from "node:assert/strict";
import { seekDataOrHole } from "./_seek.ts";
import type { SliceRecord } from "./slice.ts";
import { type Ino, SEEK_DATA, SEEK_HOLE, type SliceId } from "./types.ts";

const ino = 5 as Ino;
const run = (pos: number, len: number, id = 1): SliceRecord => ({
  pos,
  id: id as SliceId,
  size: len,
  off: 0,
  len,
});

/** Chunks of 100 bytes: data at 20..50 and 90..130, a zero slice at 130..150, nothing after. */
const data = {
  chunkSize: 100,
  segments: (_: Ino, chunk: number) =>
    Promise.resolve(
      [[run(0, 20, 0), run(20, 30), run(90, 10)], [run(0, 30), run(30, 20, 0)], []][chunk] ?? [],
    ),
};

Deno.test("seekDataOrHole() finds data across chunks and skips zero slices", async () => {
  assert.equal(await seekDataOrHole(data, ino, 250, 0, SEEK_DATA), 20);
  assert.equal(await seekDataOrHole(data, ino, 250, 30, SEEK_DATA), 30);
  assert.equal(await seekDataOrHole(data, ino, 250, 50, SEEK_DATA), 90);
  await assert.rejects(seekDataOrHole(data, ino, 250, 130, SEEK_DATA), { code: "ENXIO" });
});

Deno.test("seekDataOrHole() finds holes, data running over a chunk end, and the end of the file", async () => {
  assert.equal(await seekDataOrHole(data, ino, 250, 0, SEEK_HOLE), 0);
  assert.equal(await seekDataOrHole(data, ino, 250, 25, SEEK_HOLE), 50);
  assert.equal(await seekDataOrHole(data, ino, 250, 95, SEEK_HOLE), 130);
  assert.equal(await seekDataOrHole(data, ino, 120, 95, SEEK_HOLE), 120);
});
