import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { compressBlock } from "./lz4.ts";
import { xxh3_64 } from "./xxh3.ts";
import {
  decodeSegmented,
  decodeSegmentedBlock,
  decodeSegmentedInto,
  encodeSegmented,
  SEGMENT_ENTRY_SIZE,
  SEGMENT_SIZE,
  SegmentError,
} from "./segments.ts";
import { NativeLz4, NativeXxhash } from "./_native.ts";
import { DATA_KINDS, dataOfKind, Rng } from "./_test_util.ts";

/** The format built from the one-call API (hash and compress each segment apart). */
function reference(raw: Uint8Array, compress: boolean): { data: Uint8Array; table: Uint8Array } {
  const n = Math.ceil(raw.length / SEGMENT_SIZE);
  const table = new Uint8Array(n * SEGMENT_ENTRY_SIZE);
  const tv = new DataView(table.buffer);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const seg = raw.subarray(i * SEGMENT_SIZE, (i + 1) * SEGMENT_SIZE);
    tv.setBigUint64(i * SEGMENT_ENTRY_SIZE + 2, xxh3_64(seg), true);
    const c = compress ? compressBlock(seg) : { data: seg, compressed: false };
    if (c.compressed) tv.setUint16(i * SEGMENT_ENTRY_SIZE, c.data.length, true);
    parts.push(c.data);
  }
  const data = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) data.set(p, (o += p.length) - p.length);
  return { data, table };
}

/** Text in even segments, random bytes in odd ones. */
function mixed(size: number): Uint8Array {
  const out = dataOfKind("logs", size);
  const rng = new Rng(size);
  for (let at = SEGMENT_SIZE; at < size; at += 2 * SEGMENT_SIZE) {
    out.set(rng.bytes(Math.min(SEGMENT_SIZE, size - at)), at);
  }
  return out;
}

const SIZES = [0, 1, 13, 240, 241, 1024, 1025, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1];

Deno.test("encodeSegmented() writes the bytes and table of per-segment compressBlock and xxh3_64, and the block's XXH3-64 (libxxhash)", () => {
  const xxh = new NativeXxhash();
  const lz4 = new NativeLz4();
  try {
    const cases: [string, Uint8Array][] = [];
    for (const kind of DATA_KINDS) {
      for (const size of [...SIZES, 3 * SEGMENT_SIZE + 1000, 4 << 20]) {
        cases.push([`${kind} ${size}`, dataOfKind(kind, size, new Rng(size + 1))]);
      }
    }
    for (const size of [2 * SEGMENT_SIZE, 5 * SEGMENT_SIZE + 300, 4 << 20]) {
      cases.push([`mixed ${size}`, mixed(size)]);
    }
    for (const [what, raw] of cases) {
      for (const compress of [false, true]) {
        const enc = encodeSegmented(raw, compress);
        const ref = reference(raw, compress);
        deepEqual(enc.table, ref.table, `${what} ${compress}: table`);
        equal(enc.checksum, xxh.xxh3_64(raw), `${what}: block checksum`);
        equal(enc.compressed, ref.data.length !== raw.length, `${what}: compressed`);
        if (!enc.compressed) equal(enc.data, raw, `${what}: the input itself`);
        else ok(enc.data.every((b, i) => b === ref.data[i]), `${what}: stored bytes`);
        equal(enc.data.length, ref.data.length, `${what}: stored length`);
        // liblz4 decodes every compressed segment.
        const tv = new DataView(enc.table.buffer);
        for (let i = 0, o = 0; i < enc.table.length / SEGMENT_ENTRY_SIZE; i++) {
          const code = tv.getUint16(i * SEGMENT_ENTRY_SIZE, true);
          const segLen = Math.min(SEGMENT_SIZE, raw.length - i * SEGMENT_SIZE);
          if (code !== 0) {
            const back = new Uint8Array(segLen);
            equal(lz4.decompressInto(enc.data.subarray(o, o + code), back), segLen);
            ok(back.every((b, j) => b === raw[i * SEGMENT_SIZE + j]), `${what}: segment ${i}`);
          }
          o += code || segLen;
        }
        deepEqual(decodeSegmentedBlock(enc.data, enc.table, raw.length), raw, what);
        const into = new Uint8Array(raw.length).fill(0xa5);
        equal(decodeSegmentedBlock(enc.data, enc.table, raw.length, into), into);
        deepEqual(into, raw, `${what}: into a buffer`);
      }
    }
  } finally {
    xxh.close();
    lz4.close();
  }
});

Deno.test("encodeSegmented() with a sample compresses a large block only if its middle 64 KiB shrinks", () => {
  const noiseMiddle = dataOfKind("logs", 1 << 20);
  noiseMiddle.set(new Rng(3).bytes(SEGMENT_SIZE), (1 << 19) - SEGMENT_SIZE / 2);
  equal(encodeSegmented(noiseMiddle, true, true).compressed, false);
  equal(encodeSegmented(noiseMiddle, true, false).compressed, true);
  const small = dataOfKind("random", 4 * SEGMENT_SIZE - 1);
  small.fill(0, 0, 30_000);
  equal(encodeSegmented(small, true, true).compressed, true); // under 4 samples: no sample
});

Deno.test("decodeSegmented() returns any run of segments, each in its own buffer unless all raw", () => {
  const raw = mixed(7 * SEGMENT_SIZE + 123);
  const enc = encodeSegmented(raw, true);
  const n = 8;
  const stored = (i: number) =>
    (enc.table[i * 10]! | (enc.table[i * 10 + 1]! << 8)) ||
    Math.min(SEGMENT_SIZE, raw.length - i * SEGMENT_SIZE);
  for (let first = 0; first < n; first++) {
    for (let last = first; last < n; last++) {
      let from = 0;
      for (let i = 0; i < first; i++) from += stored(i);
      let to = from;
      for (let i = first; i <= last; i++) to += stored(i);
      const span = enc.data.slice(from, to);
      const segs = decodeSegmented(span, enc.table, raw.length, first, last);
      equal(segs.length, last - first + 1);
      segs.forEach((s, k) => {
        const at = (first + k) * SEGMENT_SIZE;
        deepEqual(s, raw.subarray(at, at + SEGMENT_SIZE), `${first}..${last}: ${first + k}`);
        if (first === last && first % 2 === 1) equal(s.buffer, span.buffer); // raw: a view
        else equal(s.byteLength, s.buffer.byteLength); // own buffer
      });
    }
  }
});

Deno.test("decodeSegmentedInto() puts any range of a run of segments into the buffer given", () => {
  const raw = mixed(7 * SEGMENT_SIZE + 123);
  const enc = encodeSegmented(raw, true);
  const stored = (i: number) =>
    (enc.table[i * 10]! | (enc.table[i * 10 + 1]! << 8)) ||
    Math.min(SEGMENT_SIZE, raw.length - i * SEGMENT_SIZE);
  const spanOf = (first: number, last: number) => {
    let from = 0;
    for (let i = 0; i < first; i++) from += stored(i);
    let to = from;
    for (let i = first; i <= last; i++) to += stored(i);
    return enc.data.slice(from, to);
  };
  for (
    const [first, last, from, len] of [
      [0, 7, 0, raw.length],
      [1, 3, 5, 100_000],
      [6, 7, 60_000, 5_600],
      [2, 2, 0, 10],
    ]
  ) {
    const into = new Uint8Array(len!).fill(0xee);
    decodeSegmentedInto(spanOf(first!, last!), enc.table, raw.length, first!, last!, into, from!);
    const at = first! * SEGMENT_SIZE + from!;
    deepEqual(into, raw.subarray(at, at + len!), `${first}..${last} ${from}+${len}`);
  }
  // Raw segments read straight into the destination: verified where they are.
  const span = spanOf(1, 1);
  const into = new Uint8Array(span);
  decodeSegmentedInto(into, enc.table, raw.length, 1, 1, into, 0);
  deepEqual(into, raw.subarray(SEGMENT_SIZE, 2 * SEGMENT_SIZE));
  into[5]! ^= 1;
  throws(() => decodeSegmentedInto(into, enc.table, raw.length, 1, 1, into, 0), SegmentError);
  throws(
    () =>
      decodeSegmentedInto(span, enc.table, raw.length, 1, 1, new Uint8Array(10), SEGMENT_SIZE - 5),
    RangeError,
  );
});

Deno.test("decodeSegmented() fails with the segment and reason on cut, corrupt, wrong or long input", () => {
  const raw = mixed(4 * SEGMENT_SIZE);
  const enc = encodeSegmented(raw, true);
  const fails = (stored: Uint8Array, table: Uint8Array, segment: number, reason: string) =>
    throws(
      () => decodeSegmentedBlock(stored, table, raw.length),
      (e) => e instanceof SegmentError && e.segment === segment && e.reason === reason,
      `${segment} ${reason}`,
    );
  fails(enc.data.subarray(0, enc.data.length - 1), enc.table, 3, "short");
  fails(new Uint8Array([...enc.data, 0]), enc.table, 3, "long");
  const seg1At = enc.table[0]! | (enc.table[1]! << 8);
  const flipRaw = enc.data.slice();
  flipRaw[seg1At + 100] = flipRaw[seg1At + 100]! ^ 1; // segment 1 is raw (random)
  fails(flipRaw, enc.table, 1, "checksum");
  const badSum = enc.table.slice();
  badSum[25] = badSum[25]! ^ 1;
  fails(enc.data, badSum, 2, "checksum");
  const cutLz4 = enc.table.slice();
  cutLz4[0] = cutLz4[0]! - 1; // segment 0 one byte shorter: its block is truncated
  throws(
    () => decodeSegmentedBlock(enc.data.subarray(1), cutLz4, raw.length),
    (e) => e instanceof SegmentError && e.segment === 0 && e.reason !== "checksum",
  );
  // A raw segment marked compressed does not decode to its size (or is corrupt).
  const wrongKind = enc.table.slice();
  wrongKind[10] = 0;
  wrongKind[11] = 0x80; // 32768 bytes of segment 1 read as LZ4
  throws(() => decodeSegmentedBlock(enc.data, wrongKind, raw.length), SegmentError);
  // All raw: verified in place, the input returned; a flipped bit still fails.
  const plain = encodeSegmented(raw, false);
  equal(decodeSegmentedBlock(plain.data, plain.table, raw.length), raw);
  const flipped = raw.slice();
  flipped[3 * SEGMENT_SIZE + 7] = flipped[3 * SEGMENT_SIZE + 7]! ^ 0x10;
  fails(flipped, plain.table, 3, "checksum");
  throws(() => decodeSegmented(enc.data, enc.table, raw.length, 2, 4), RangeError);
  throws(
    () => decodeSegmentedBlock(enc.data, enc.table, raw.length, new Uint8Array(5)),
    RangeError,
  );
  throws(() => decodeSegmentedBlock(flipped, plain.table, raw.length, new Uint8Array(raw.length)));
  throws(() => decodeSegmented(enc.data, enc.table.subarray(10), raw.length, 0, 0), RangeError);
});

Deno.test("encode and decode keep working across Wasm memory growth (views refreshed)", () => {
  const small = dataOfKind("json", 3 * SEGMENT_SIZE);
  const a = encodeSegmented(small, true);
  const big = dataOfKind("prose", 24 << 20); // grows the codec's memory
  const b = encodeSegmented(big, true);
  deepEqual(decodeSegmentedBlock(a.data, a.table, small.length), small);
  deepEqual(decodeSegmentedBlock(b.data, b.table, big.length), big);
  equal(b.checksum, xxh3_64(big));
});
