import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { compressBlock, lz4Compress, lz4Decompress, Lz4Error } from "./lz4.ts";
import { align16, codec } from "./_engine.ts";
import { NativeLz4 } from "./_native.ts";
import { repetitive, Rng, textLike } from "./_test_util.ts";

/** Every small size, sizes around chunk and window boundaries, and random sizes up to 8 MiB. */
function testSizes(rng: Rng): number[] {
  const sizes = Array.from({ length: 301 }, (_, i) => i);
  for (const b of [1024, 2048, 4096, 8192, 65536, 65536 * 2]) {
    for (let d = -3; d <= 3; d++) sizes.push(b + d);
  }
  for (let i = 0; i < 12; i++) sizes.push(rng.int(8 << 20));
  sizes.push(8 << 20);
  return sizes;
}

function inputs(): Uint8Array[] {
  const rng = new Rng(1234);
  const out: Uint8Array[] = [];
  testSizes(rng).forEach((n, i) => {
    const kind = n <= 300 ? i % 3 : rng.int(3);
    out.push(kind === 0 ? rng.bytes(n) : kind === 1 ? repetitive(n, rng) : textLike(n, rng));
  });
  return out;
}

/** Walks the sequences of a block and checks the end-of-block rules of the format. */
function checkBlockRules(block: Uint8Array, size: number): void {
  let ip = 0;
  let op = 0;
  while (true) {
    const token = block[ip++]!;
    let lit = token >> 4;
    if (lit === 15) {
      let b = 255;
      while (b === 255) lit += b = block[ip++]!;
    }
    ip += lit;
    op += lit;
    if (ip === block.length) break;
    ip += 2;
    let ml = token & 15;
    if (ml === 15) {
      let b = 255;
      while (b === 255) ml += b = block[ip++]!;
    }
    ok(op <= size - 12, `match at ${op} starts in the last 12 bytes of ${size}`);
    op += ml + 4;
    ok(op <= size - 5, `match ends at ${op}, inside the last 5 bytes of ${size}`);
  }
  equal(op, size);
}

Deno.test("lz4Compress() output is decoded by liblz4 and follows the end-of-block rules", () => {
  const native = new NativeLz4();
  try {
    for (const data of inputs()) {
      const packed = lz4Compress(data);
      ok(packed.length <= native.bound(data.length));
      const out = new Uint8Array(data.length + 64);
      const n = native.decompressInto(packed, out);
      equal(n, data.length, `liblz4 decoded ${n} of ${data.length} bytes`);
      ok(out.subarray(0, n).every((b, i) => b === data[i]), `content differs for ${data.length}`);
      checkBlockRules(packed, data.length);
    }
  } finally {
    native.close();
  }
});

Deno.test("lz4Decompress() decodes liblz4's LZ4_compress_default output", () => {
  const native = new NativeLz4();
  try {
    for (const data of inputs()) {
      deepEqual(lz4Decompress(native.compress(data), data.length), data);
    }
  } finally {
    native.close();
  }
});

Deno.test("lz4Compress() ratio on text is within 5% of liblz4", () => {
  const native = new NativeLz4();
  try {
    const text = textLike(4 << 20);
    const ours = lz4Compress(text).length;
    const theirs = native.compress(text).length;
    ok(ours <= theirs * 1.05, `ours ${ours} vs liblz4 ${theirs}`);
  } finally {
    native.close();
  }
});

Deno.test("compressBlock() keeps incompressible data raw", () => {
  const rng = new Rng(5);
  const noise = rng.bytes(65536);
  const raw = compressBlock(noise);
  equal(raw.compressed, false);
  equal(raw.data, noise);
  const text = textLike(65536, rng);
  const packed = compressBlock(text);
  equal(packed.compressed, true);
  ok(packed.data.length < text.length);
  deepEqual(lz4Decompress(packed.data, text.length), text);
  equal(compressBlock(new Uint8Array(0)).compressed, false);
});

Deno.test("lz4Decompress() rejects malformed blocks with Lz4Error", () => {
  throws(() => lz4Decompress(new Uint8Array(0), 0), Lz4Error);
  throws(() => lz4Decompress(new Uint8Array([0x10]), 1), Lz4Error); // literal cut short
  throws(() => lz4Decompress(new Uint8Array([0x00]), 1), Lz4Error); // wrong size
  throws(() => lz4Decompress(new Uint8Array([0x14, 0x41, 0x00, 0x00]), 9), Lz4Error); // offset 0
  throws(() => lz4Decompress(new Uint8Array([0x14, 0x41, 0x02, 0x00]), 9), Lz4Error); // far offset
  throws(() => lz4Decompress(new Uint8Array([0x14, 0x41, 0x01, 0x00]), 9), Lz4Error); // no end
  deepEqual(
    lz4Decompress(new Uint8Array([0x14, 0x41, 0x01, 0x00, 0x00]), 9),
    new Uint8Array(9).fill(0x41),
  );
  throws(() => lz4Decompress(new Uint8Array([0x00]), -1), RangeError);
  throws(() => lz4Decompress(new Uint8Array([0xf0, 255, 255, 255]), 1000), Lz4Error);
});

Deno.test("lz4Decompress() fuzz: random and mutated blocks never escape their buffers", () => {
  const rng = new Rng(99);
  const c = codec();
  const CANARY = 64;
  const seeds = [textLike(3000, rng), repetitive(5000, rng), rng.bytes(700), new Uint8Array(2000)];
  const packedSeeds = seeds.map((d) => lz4Compress(d));
  let decoded = 0;
  let rejected = 0;
  for (let i = 0; i < 6000; i++) {
    let src: Uint8Array;
    let cap: number;
    let expect: number | undefined;
    if (i % 3 === 0) {
      src = rng.bytes(1 + rng.int(200));
      cap = rng.int(2000);
    } else {
      const k = rng.int(seeds.length);
      src = packedSeeds[k]!.slice();
      expect = seeds[k]!.length;
      cap = expect;
      const mutations = 1 + rng.int(4);
      for (let m = 0; m < mutations; m++) {
        const what = rng.int(4);
        if (what === 0) src[rng.int(src.length)] = rng.next() & 0xff;
        else if (what === 1) {
          const at = rng.int(src.length);
          src[at] = src[at]! ^ (1 << rng.int(8));
        } else if (what === 2) src = src.subarray(0, rng.int(src.length + 1));
        else cap = rng.int(expect + 100);
      }
    }
    // Through the raw ABI, with canaries around the output buffer.
    const s = c.input(src, cap + 4 * CANARY);
    const d = align16(s + src.length + CANARY);
    const mem = c.u8;
    const before = mem.slice(s, s + src.length);
    mem.fill(0xa5, d - CANARY, d);
    mem.fill(0x5a, d + cap, d + cap + CANARY);
    const n = c.ex.lz4Decompress(s, src.length, d, cap);
    ok(n <= cap, `wrote ${n} bytes into a ${cap}-byte buffer`);
    ok(mem.subarray(d - CANARY, d).every((b) => b === 0xa5), `case ${i}: canary before output`);
    ok(mem.subarray(d + cap, d + cap + CANARY).every((b) => b === 0x5a), `case ${i}: after output`);
    ok(
      mem.subarray(s, s + src.length).every((b, j) => b === before[j]),
      `case ${i}: input changed`,
    );
    // Through the public API: throws Lz4Error or returns exactly the requested size.
    try {
      equal(lz4Decompress(src, cap).length, cap);
      decoded++;
    } catch (e) {
      ok(e instanceof Lz4Error, `case ${i}: ${e}`);
      rejected++;
    }
  }
  ok(decoded > 100 && rejected > 100, `decoded ${decoded}, rejected ${rejected}`);
});
