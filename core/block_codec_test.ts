import { deepEqual, equal } from "node:assert/strict";
import { CACHE_SEGMENT, CodecPool, encodeBlock, segmentSums } from "./block_codec.ts";
import { xxh3_64 } from "../wasm/mod.ts";

function bytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = i % 7 === 0 ? x >>> 24 : i & 0x3f; // partly compressible
  }
  return out;
}

Deno.test("segmentSums() is the XXH3-64 of each 64 KiB segment, the last one short", () => {
  for (const size of [0, 1, CACHE_SEGMENT - 1, CACHE_SEGMENT, 3 * CACHE_SEGMENT + 17]) {
    const data = bytes(size, size);
    const sums = segmentSums(data);
    equal(sums.byteLength, 8 * Math.ceil(size / CACHE_SEGMENT), `size ${size}`);
    const v = new DataView(sums.buffer);
    for (let i = 0; i * CACHE_SEGMENT < size; i++) {
      const seg = data.subarray(i * CACHE_SEGMENT, (i + 1) * CACHE_SEGMENT);
      equal(v.getBigUint64(8 * i, true), xxh3_64(seg), `size ${size}, segment ${i}`);
    }
  }
});

Deno.test("CodecPool encode/decodeWithSums return segment sums from the workers and inline", async () => {
  const pool = new CodecPool(2);
  try {
    for (const size of [1000, 4 << 20]) { // inline below 128 KiB, in a worker above
      const raw = bytes(size, 7);
      const want = segmentSums(raw);
      const enc = await pool.encode(raw.slice(), true, false, true);
      deepEqual(enc.sums, want, `encode sums, ${size} bytes`);
      equal(enc.record.checksum, encodeBlock(raw, true, false).record.checksum);
      const noSums = await pool.encode(raw.slice(), true, false);
      equal(noSums.sums, undefined, "no sums unless asked");
      const dec = await pool.decodeWithSums(enc.data, enc.record, size, "k");
      deepEqual(dec.raw, raw, `decoded, ${size} bytes`);
      deepEqual(dec.sums, want, `decode sums, ${size} bytes`);
    }
  } finally {
    pool.close();
  }
});

Deno.test("CodecPool runs jobs submitted before its workers have started, in any number", async () => {
  const pool = new CodecPool(2);
  try {
    const blocks = Array.from({ length: 12 }, (_, i) => bytes(256 << 10, i + 1));
    const encoded = await Promise.all(blocks.map((b) => pool.encode(b.slice(), true, false)));
    const decoded = await Promise.all(
      encoded.map((e, i) => pool.decode(e.data, e.record, blocks[i]!.byteLength, `k${i}`)),
    );
    decoded.forEach((d, i) => deepEqual(d, blocks[i], `block ${i}`));
  } finally {
    pool.close();
  }
});
