import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { BufferPool } from "./_buffer_pool.ts";
import { encodeForStore, encodePool } from "./_data_put.ts";
import { CodecPool, decodeBlock } from "./block_codec.ts";

/** Lets every pending promise callback run (a few turns of the event loop). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
}

Deno.test("BufferPool: take waits while max buffers are taken, and reuses given-back ones", async () => {
  const pool = new BufferPool(1024, 3);
  const bufs = [await pool.take(), await pool.take(), await pool.take()];
  equal(pool.live, 3);
  let fourth: Uint8Array | undefined;
  const waiting = pool.take().then((b) => fourth = b);
  await settle();
  equal(fourth, undefined, "a fourth take must wait: the pool holds at most 3");
  equal(pool.live, 3);
  bufs[1]![0] = 42;
  pool.give(bufs[1]!);
  await waiting;
  equal(fourth![0], 42, "the buffer given back is the one reused");
  equal(pool.made, 3, "no new buffer was made");
  equal(pool.taken, 3);
  ok(pool.live <= pool.max);
});

Deno.test("BufferPool: a dropped buffer frees its place; wrong buffers and extra gives throw", async () => {
  const pool = new BufferPool(1024, 2);
  const a = await pool.take();
  await pool.take();
  pool.drop();
  equal(pool.live, 1);
  await pool.take();
  equal(pool.made, 3);
  equal(pool.live, 2);
  throws(() => pool.give(new Uint8Array(512)), /Not a buffer of this pool/);
  pool.give(a.subarray(0, 100)); // a view: its whole buffer goes back
  pool.drop();
  throws(() => pool.give(a), /More buffers given back than taken/);
  throws(() => pool.drop(), /More buffers dropped than taken/);
});

Deno.test("encodeForStore: many concurrent block encodes on real workers stay within the pool", async () => {
  const size = 4 << 20;
  const codec = new CodecPool(2);
  const pool = encodePool(size, 4); // at most 6 buffers
  try {
    const blocks: Uint8Array[] = [];
    for (let i = 0; i < 24; i++) {
      const b = new Uint8Array(size);
      if (i % 2 === 1) {
        // Incompressible: the stored data is the pooled buffer itself, held until "stored".
        let x = i + 1;
        for (let j = 0; j < size; j += 4) {
          x = (x * 1103515245 + 12345) >>> 0;
          b[j] = x >>> 24;
          b[j + 1] = x >>> 16;
          b[j + 2] = x >>> 8;
          b[j + 3] = x;
        }
      } else b.fill(i);
      blocks.push(b);
    }
    let most = 0;
    await Promise.all(blocks.map(async (raw, i) => {
      const { enc, release } = await encodeForStore(codec, pool, raw, {
        compress: true,
        dedup: false,
        sums: false,
        segmented: true,
      });
      most = Math.max(most, pool.live);
      // What a store would write: it must decode back to the block.
      deepEqual(decodeBlock(enc.data.slice(), enc.record, size, `b${i}`), raw);
      await new Promise((r) => setTimeout(r, 1)); // a put
      release(i % 4 !== 3); // some puts fail: their buffers are dropped
    }));
    ok(most <= pool.max, `at most ${pool.max} buffers existed, saw ${most}`);
    ok(pool.live <= pool.max);
    equal(pool.taken, 0, "every buffer came back or was dropped");
    ok(pool.made < blocks.length, `buffers were reused (${pool.made} made for 24 blocks)`);
  } finally {
    codec.close();
  }
});
