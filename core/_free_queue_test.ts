import assert from "node:assert/strict";
import { FreeQueue } from "./_free_queue.ts";
import type { FreedSlice } from "./meta/mod.ts";
import type { SliceId } from "./types.ts";

const slice = (id: number): FreedSlice => ({ id: id as SliceId, size: 1 });

Deno.test("FreeQueue deletes in batches of up to 1000 in the background", async () => {
  const batches: number[] = [];
  const q = new FreeQueue({
    deleteSlices: (freed) => Promise.resolve(void batches.push(freed.length)),
  }, (err) => assert.fail(String(err)));
  q.add([]);
  await q.idle();
  q.add(Array.from({ length: 1500 }, (_, i) => slice(i)));
  q.add([slice(2000)]);
  assert.deepEqual(batches, [], "nothing is deleted synchronously");
  await q.idle();
  assert.deepEqual(batches, [1000, 501]);
});

Deno.test("FreeQueue hands a failed batch to onError and goes on", async () => {
  const errors: unknown[] = [];
  let calls = 0;
  const q = new FreeQueue({
    deleteSlices: () => ++calls === 1 ? Promise.reject(new Error("store down")) : Promise.resolve(),
  }, (err) => errors.push(err));
  q.add(Array.from({ length: 1001 }, (_, i) => slice(i)));
  await q.idle();
  assert.equal(calls, 2);
  assert.equal(errors.length, 1);
});

Deno.test("FreeQueue drops slices that left nothing in the store", async () => {
  const deleted: FreedSlice[][] = [];
  const q = new FreeQueue({
    deleteSlices: (freed) => Promise.resolve(void deleted.push(freed)),
  }, (err) => assert.fail(String(err)));
  const inline = { id: 7 as SliceId, size: 0 };
  const orphanBlobs = { id: 8 as SliceId, size: 0, blobs: ["blobs/x"] };
  q.add([inline]);
  await q.idle();
  assert.deepEqual(deleted, [], "an all-inline slice needs no deletion");
  q.add([inline, slice(9), orphanBlobs]);
  await q.idle();
  assert.deepEqual(deleted, [[slice(9), orphanBlobs]]);
});
