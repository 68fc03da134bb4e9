import assert from "node:assert/strict";
import {
  blockKey,
  decodeRecords,
  encodeRecords,
  parseBlockKey,
  resolveSegments,
  sliceBlocks,
} from "./slice.ts";
import type { SliceId } from "./types.ts";

const id = (n: number) => n as SliceId;

Deno.test("resolveSegments() lets newer records shadow older ones", () => {
  const segs = resolveSegments([
    { pos: 0, id: id(1), size: 100, off: 0, len: 100 },
    { pos: 10, id: id(2), size: 20, off: 0, len: 20 },
    { pos: 90, id: id(3), size: 30, off: 0, len: 30 },
    { pos: 0, id: id(0), size: 0, off: 0, len: 5 },
  ]);
  assert.deepEqual(segs.map((s) => [s.pos, s.len, s.id, s.off]), [
    [0, 5, 0, 0],
    [5, 5, 1, 5],
    [10, 20, 2, 0],
    [30, 60, 1, 30],
    [90, 30, 3, 0],
  ]);
});

Deno.test("resolveSegments() matches a byte-by-byte model on random lists", () => {
  for (let round = 0; round < 300; round++) {
    const recs = Array.from({ length: 1 + Math.floor(Math.random() * 12) }, (_, i) => {
      const pos = Math.floor(Math.random() * 200);
      const len = 1 + Math.floor(Math.random() * 60);
      return { pos, id: id(i + 1), size: len + 7, off: 7, len };
    });
    const model = new Array<string>(300).fill("");
    for (const r of recs) {
      for (let b = 0; b < r.len; b++) model[r.pos + b] = `${r.id}:${r.off + b}`;
    }
    const got = new Array<string>(300).fill("");
    let last = -1;
    for (const s of resolveSegments(recs)) {
      assert.ok(s.pos >= last, "segments sorted and disjoint");
      last = s.pos + s.len;
      for (let b = 0; b < s.len; b++) got[s.pos + b] = `${s.id}:${s.off + b}`;
    }
    assert.deepEqual(got, model);
  }
});

Deno.test("encodeRecords() round-trips through decodeRecords()", () => {
  const recs = [{ pos: 1, id: id(2 ** 40 + 3), size: 4 << 20, off: 5, len: 6 }];
  assert.deepEqual(decodeRecords(encodeRecords(recs)), recs);
});

Deno.test("sliceBlocks() and blockKey() name every block of a slice", () => {
  assert.deepEqual(sliceBlocks(10, 4), [[0, 4], [1, 4], [2, 2]]);
  assert.equal(blockKey(id(1234567), 2, 99), "chunks/1/1234/1234567_2_99");
});

Deno.test("parseBlockKey() reads back what blockKey() writes and nothing else", () => {
  for (const [n, index, len] of [[1, 0, 4096], [1234567, 2, 99], [2 ** 40, 15, 1]] as const) {
    assert.deepEqual(parseBlockKey(blockKey(id(n), index, len)), { id: n, index, length: len });
  }
  for (
    const key of ["chunks/README", "chunks/0/0/1_2", "blobs/00/00/1_0_1", "chunks/0/0/1_0_1/x"]
  ) {
    assert.equal(parseBlockKey(key), undefined, key);
  }
});
