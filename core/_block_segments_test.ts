import { deepEqual, equal, ok, throws } from "node:assert/strict";
import {
  decodeAllSegments,
  decodeSegments,
  encodeSegments,
  SEGMENT,
  SEGMENT_ENTRY,
  segmentCount,
  segmentSpan,
  tableSums,
} from "./_block_segments.ts";
import {
  BLOCK_LZ4,
  BLOCK_SEGMENTED,
  decodeBlock,
  decodeBlockRecords,
  encodeBlock,
  encodeBlockRecords,
  segmentSums,
} from "./block_codec.ts";
import { Errno, FsError } from "./errno.ts";

const isEio = (err: unknown) => err instanceof FsError && err.errno === Errno.EIO;

/** `size` bytes: text-like (compressible) in even 64 KiB segments, random in odd ones. */
function mixed(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = Math.floor(i / SEGMENT) % 2 === 0 ? 97 + ((x >>> 24) % 4) : x >>> 24;
  }
  return out;
}

Deno.test("encodeSegments() round-trips whole and by ranges, raw and compressed segments mixed", () => {
  for (const size of [1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 5 * SEGMENT + 300, 4 << 20]) {
    const raw = mixed(size, size);
    const enc = encodeSegments(raw, true);
    const n = segmentCount(size);
    equal(enc.table.byteLength, n * SEGMENT_ENTRY);
    equal(enc.compressed, size > 1, `size ${size}`); // one byte does not compress
    deepEqual(decodeAllSegments(enc.data, enc.table, size, "k"), raw, `size ${size}`);
    deepEqual(tableSums(enc.table), segmentSums(raw));
    for (let first = 0; first < n; first += 3) {
      const last = Math.min(n - 1, first + 1);
      const span = segmentSpan(enc.table, size, first, last);
      const part = enc.data.subarray(span.offset, span.offset + span.length);
      const segs = decodeSegments(part, enc.table, size, first, last, "k");
      equal(segs.length, last - first + 1);
      segs.forEach((s, i) => {
        const at = (first + i) * SEGMENT;
        deepEqual(s, raw.subarray(at, at + SEGMENT), `size ${size}, segment ${first + i}`);
      });
    }
  }
});

Deno.test("encodeSegments() stores incompressible data as the input itself, and compresses about as well as whole blocks", () => {
  const noise = new Uint8Array(4 << 20);
  for (let i = 0; i < noise.length; i += 65536) {
    crypto.getRandomValues(noise.subarray(i, i + 65536));
  }
  const enc = encodeSegments(noise, true);
  equal(enc.data, noise);
  equal(enc.compressed, false);
  const text = new TextEncoder().encode(
    Array.from({ length: 60_000 }, (_, i) => `line ${i} of a log, value=${(i * 7919) % 1000}\n`)
      .join(""),
  ).subarray(0, 4 << 20);
  const seg = encodeBlock(text, true, false, true);
  const whole = encodeBlock(text, true, false, false);
  equal(seg.record.flags, BLOCK_SEGMENTED | BLOCK_LZ4);
  ok(
    seg.data.byteLength <= whole.data.byteLength * 1.25, // 1.15 measured: each segment starts a new window
    `segmented ${seg.data.byteLength} vs whole ${whole.data.byteLength}`,
  );
  deepEqual(decodeBlock(seg.data, seg.record, text.byteLength, "k"), text);
});

Deno.test("a corrupt, short or long segmented block fails with EIO, never wrong bytes", () => {
  const raw = mixed(4 * SEGMENT, 3);
  const enc = encodeBlock(raw, true, false, true);
  const size = raw.byteLength;
  const table = enc.record.segments!;
  for (const seg of [0, 1, 3]) { // compressed and raw segments
    const bad = enc.data.slice();
    const span = segmentSpan(table, size, seg, seg);
    bad[span.offset + Math.floor(span.length / 2)]! ^= 0x40;
    throws(() => decodeBlock(bad, enc.record, size, "k"), isEio, `segment ${seg}`);
    throws(
      () =>
        decodeSegments(
          bad.subarray(span.offset, span.offset + span.length),
          table,
          size,
          seg,
          seg,
          "k",
        ),
      isEio,
    );
  }
  throws(() => decodeBlock(enc.data.subarray(1), enc.record, size, "k"), isEio);
  const span = segmentSpan(table, size, 1, 1);
  throws(
    () => decodeSegments(enc.data.subarray(span.offset, span.offset + 10), table, size, 1, 1, "k"),
    isEio,
  );
  throws(
    () =>
      decodeSegments(
        enc.data.subarray(span.offset, span.offset + span.length + 1),
        table,
        size,
        1,
        1,
        "k",
      ),
    isEio,
  );
});

Deno.test("block records carry the segment table through the metadata encoding; old records decode as before", () => {
  const a = encodeBlock(mixed(3 * SEGMENT + 5, 1), true, false, true).record;
  const b = encodeBlock(mixed(1000, 2), true, false).record; // the whole-block format
  const c = encodeBlock(mixed(2 * SEGMENT, 3), false, true).record; // dedup: never segmented
  equal(c.segments, undefined);
  const back = decodeBlockRecords(encodeBlockRecords([a, b, c]));
  deepEqual(back, [a, b, c]);
  deepEqual(decodeBlockRecords(encodeBlockRecords([b, c])), [b, c]);
});
