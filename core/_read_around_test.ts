import assert from "node:assert/strict";
import { ReadAround, settled } from "./_read_around.ts";
import type { OpenFile } from "./_open_files.ts";
import type { FileWriter } from "./writer.ts";
import type { Ino } from "./types.ts";

const K = 1024;

Deno.test("ReadAround.span: the aligned window, clamped to the size; none when it cannot help", () => {
  const around = new ReadAround();
  const of: OpenFile = { opens: 1, size: 1 << 20 };
  assert.equal(around.span(of, 200 * K, 204 * K, 1 << 20), undefined, "no page store yet");
  around.use(() => Promise.resolve());
  assert.deepEqual(around.span(of, 200 * K, 204 * K, 1 << 20), [192 * K, 256 * K]);
  assert.deepEqual(around.span(of, 1000 * K, 1004 * K, 1000 * K + 100), [960 * K, 1000 * K + 100]);
  assert.equal(around.span(of, 60 * K, 68 * K, 1 << 20), undefined, "across two windows");
  assert.equal(around.span(of, 64 * K, 128 * K, 1 << 20), undefined, "the window itself");
  assert.equal(around.span({ ...of, writers: 1 }, 200 * K, 204 * K, 1 << 20), undefined);
  const dirty = { dirty: true } as unknown as FileWriter;
  assert.equal(around.span({ ...of, writer: dirty }, 200 * K, 204 * K, 1 << 20), undefined);
  assert.equal(new ReadAround(0).span(of, 200 * K, 204 * K, 1 << 20), undefined, "off");
  assert.throws(() => new ReadAround(3000), RangeError);
});

Deno.test("ReadAround.offer: stores only what did not change; settled() waits for the stores", async () => {
  const stores: { ino: Ino; offset: number; bytes: number; done: () => void }[] = [];
  const around = new ReadAround(64 * K);
  around.use((ino, offset, bytes) =>
    new Promise<void>((done) => stores.push({ ino, offset, bytes: bytes.byteLength, done }))
  );
  const of: OpenFile = { opens: 1, size: 1 << 20, changes: 3 };
  const a = around.take();
  around.offer(7 as Ino, of, 2, 0, a, a); // read before the 3rd change: refused
  assert.equal(stores.length, 0);
  assert.equal(around.take(), a, "its buffer went back to the pool (_scratch.ts)");
  assert.equal(a.byteLength, 64 * K);
  around.offer(7 as Ino, of, 3, 128 * K, a.subarray(0, 100), a);
  assert.deepEqual(stores.map((s) => [s.ino, s.offset, s.bytes]), [[7, 128 * K, 100]]);
  assert.deepEqual([around.stored, around.storedBytes], [1, 100]);
  let waited = false;
  const wait = settled(of).then(() => waited = true);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(waited, false, "a store is in flight");
  stores[0]!.done();
  await wait;
  assert.equal(of.storing, undefined);
  assert.equal(around.take(), a, "back once the store landed");
});
