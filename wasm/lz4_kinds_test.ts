import { deepEqual, equal, ok, throws } from "node:assert/strict";
import {
  compressBlock,
  lz4Compress,
  lz4CompressBound,
  lz4CompressInto,
  lz4Decompress,
  lz4DecompressInto,
  Lz4Error,
} from "./lz4.ts";
import { NativeLz4 } from "./_native.ts";
import { DATA_KINDS, dataOfKind, Rng } from "./_test_util.ts";

const SIZES = [4 << 20, 65536 + 7, 1000, 13];

function same(a: Uint8Array, b: Uint8Array, what: string): void {
  equal(a.length, b.length, `${what}: length`);
  const i = a.findIndex((x, j) => x !== b[j]);
  equal(i, -1, `${what}: first difference at ${i}`);
}

Deno.test("every data kind round-trips and interoperates with liblz4 both ways", () => {
  const native = new NativeLz4();
  try {
    for (const kind of DATA_KINDS) {
      for (const size of SIZES) {
        const what = `${kind} ${size}`;
        const data = dataOfKind(kind, size, new Rng(size));
        const ours = lz4Compress(data);
        ok(ours.length <= native.bound(size), `${what}: over LZ4_compressBound`);
        const back = new Uint8Array(size);
        equal(native.decompressInto(ours, back), size, `${what}: liblz4 decodes ours`);
        same(back, data, `${what}: liblz4 decoded ours`);
        same(lz4Decompress(ours, size), data, `${what}: we decode ours`);
        const theirs = native.compress(data).slice();
        const into = new Uint8Array(size);
        lz4DecompressInto(theirs, into);
        same(into, data, `${what}: we decode liblz4's`);
        same(lz4Decompress(theirs, size), data, `${what}: we decode liblz4's (new array)`);
        // Same algorithm and table size as LZ4_compress_default: within 1% of its size.
        ok(ours.length <= theirs.length * 1.01 + 16, `${what}: ${ours.length} vs ${theirs.length}`);
        const block = compressBlock(data);
        if (block.compressed) same(lz4Decompress(block.data, size), data, `${what}: block`);
        else equal(block.data, data);
      }
    }
  } finally {
    native.close();
  }
});

Deno.test("4 MiB blocks: zeros and short periods compress ~250:1, random data stays raw", () => {
  const zeros = lz4Compress(dataOfKind("zeros", 4 << 20));
  ok(zeros.length < (4 << 20) / 250, `zeros: ${zeros.length}`);
  for (let period = 1; period <= 16; period++) {
    const data = new Uint8Array(4 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i % period) * 37 + 1;
    const packed = lz4Compress(data);
    ok(packed.length < (4 << 20) / 200, `period ${period}: ${packed.length}`);
    same(lz4Decompress(packed, data.length), data, `period ${period}`);
  }
  const noise = dataOfKind("random", 4 << 20);
  const raw = compressBlock(noise);
  equal(raw.compressed, false);
  equal(raw.data, noise);
});

/** Reference decoder, byte by byte, for hand-made blocks. */
function refDecode(block: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let ip = 0;
  let op = 0;
  while (true) {
    const token = block[ip++]!;
    let lit = token >> 4;
    if (lit === 15) { for (let b = 255; b === 255;) lit += b = block[ip++]!; }
    for (let i = 0; i < lit; i++) out[op++] = block[ip++]!;
    if (ip === block.length) return out;
    const offset = block[ip]! | block[ip + 1]! << 8;
    ip += 2;
    let ml = token & 15;
    if (ml === 15) { for (let b = 255; b === 255;) ml += b = block[ip++]!; }
    for (let i = 0; i < ml + 4; i++, op++) out[op] = out[op - offset]!;
  }
}

function lengthBytes(n: number): number[] {
  const out: number[] = [];
  for (; n >= 255; n -= 255) out.push(255);
  out.push(n);
  return out;
}

/** One sequence of `literals` then a match (`offset`, `ml` >= 4), then `tail` literals. */
function handBlock(literals: Uint8Array, offset: number, ml: number, tail: Uint8Array): Uint8Array {
  const bytes: number[] = [];
  const l = literals.length;
  const m = ml - 4;
  bytes.push((Math.min(l, 15) << 4) | Math.min(m, 15));
  if (l >= 15) bytes.push(...lengthBytes(l - 15));
  bytes.push(...literals, offset & 255, offset >> 8);
  if (m >= 15) bytes.push(...lengthBytes(m - 15));
  bytes.push(Math.min(tail.length, 15) << 4);
  if (tail.length >= 15) bytes.push(...lengthBytes(tail.length - 15));
  bytes.push(...tail);
  return new Uint8Array(bytes);
}

Deno.test("match copies: every offset 1..80, lengths across the copy paths, near the output end", () => {
  const native = new NativeLz4();
  const rng = new Rng(77);
  try {
    let cases = 0;
    for (let offset = 1; offset <= 80; offset++) {
      const literals = rng.bytes(offset + rng.int(3));
      for (
        const ml of [4, 5, 15, 18, 19, 31, 32, 33, 47, 64, 65, 100, 255, 256, 257, 1000, 70000]
      ) {
        for (const tailLen of [0, 1, 5, 12, 16, 31, 33, 70]) {
          const block = handBlock(literals, offset, ml, rng.bytes(tailLen));
          const size = literals.length + ml + tailLen;
          const want = refDecode(block, size);
          if (tailLen >= 5 && ml + tailLen >= 12) {
            // liblz4 wants the last 5 bytes literal and no literal run but the last in the last
            // 12 bytes; ours also decodes the blocks that break those rules.
            const back = new Uint8Array(size);
            equal(native.decompressInto(block, back), size, "liblz4 accepts the hand-made block");
            same(back, want, "reference decoder agrees with liblz4");
          }
          same(lz4Decompress(block, size), want, `offset ${offset} ml ${ml} tail ${tailLen}`);
          cases++;
        }
      }
    }
    equal(cases, 80 * 17 * 8);
  } finally {
    native.close();
  }
});

Deno.test("lz4CompressInto() fills the caller's buffer, or returns 0 when the block does not fit", () => {
  const data = dataOfKind("logs", 100_000);
  const buf = new Uint8Array(lz4CompressBound(data.length));
  const n = lz4CompressInto(data, buf);
  ok(n > 0 && n < data.length / 2, `${n}`);
  deepEqual(buf.subarray(0, n), lz4Compress(data));
  equal(lz4CompressInto(data, new Uint8Array(n - 1)), 0);
  const noise = dataOfKind("random", 5000);
  equal(lz4CompressInto(noise, new Uint8Array(5000)), 0);
  throws(() => lz4CompressBound(-1), RangeError);
  // Incompressible input becomes a literal-only block written from JS: liblz4 must read it.
  const native = new NativeLz4();
  try {
    for (const size of [0, 1, 14, 15, 16, 269, 270, 271, 524, 525, 526, 65536, 1 << 20]) {
      const data = dataOfKind("random", size, new Rng(size + 3));
      const out = new Uint8Array(lz4CompressBound(size));
      const m = lz4CompressInto(data, out);
      ok(m > size, `${size}: ${m}`);
      const back = new Uint8Array(size);
      equal(native.decompressInto(out.subarray(0, m), back), size, `liblz4 reads ${size}`);
      same(back, data, `random ${size}`);
      equal(lz4CompressInto(data, new Uint8Array(m - 1)), 0);
    }
  } finally {
    native.close();
  }
});

Deno.test("literal-only blocks (incompressible data) decode straight, and bad sizes still throw", () => {
  const native = new NativeLz4();
  try {
    for (const size of [0, 1, 14, 15, 16, 270, 65536, 1 << 20]) {
      const noise = dataOfKind("random", size, new Rng(size + 1));
      const block = native.compress(noise).slice();
      same(lz4Decompress(block, size), noise, `${size}`);
      const into = new Uint8Array(size);
      lz4DecompressInto(block, into);
      same(into, noise, `${size} into`);
      throws(() => lz4Decompress(block, size + 1), Lz4Error);
      if (size > 0) {
        throws(() => lz4Decompress(block.subarray(0, block.length - 1), size), Lz4Error);
      }
    }
  } finally {
    native.close();
  }
});
