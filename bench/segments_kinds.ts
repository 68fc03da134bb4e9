/**
 * The segmented block codec (`core/_block_segments.ts`) on one 4 MiB block per kind of data:
 * encode (the block's XXH3-64, the 64 KiB compress sample, each segment's XXH3-64 and LZ4, the
 * stored segments back to back) and decode of the whole block (each segment decompressed and
 * verified, into one new raw array), three ways:
 *
 * - "old": the code before the fused pass, through the one-call API (`xxh3_64`, `compressBlock`,
 *   `lz4DecompressInto`): each call copies its input into Wasm memory and its result out.
 * - "new": `encodeSegmented(raw, true, true)` / `decodeSegmentedBlock`, one pass in Wasm memory
 *   (the block copied in once, the result out once, into a new array); "new into" decodes into a
 *   reused buffer (`decodeSegmentedBlock(..., into)`), like the native decode.
 * - "native": the same work with liblz4 (`LZ4_compress_default` with a capacity one byte short of
 *   the segment, `LZ4_decompress_safe`) and libxxhash (`XXH3_64bits`) through FFI, into
 *   preallocated buffers (no copies, no allocation).
 *
 * Rates are per CPU second of this process (FFI calls run on the same thread), the best of several
 * interleaved rounds, so the ratios stay comparable on a loaded machine.
 *
 * Run: `deno run -A bench/segments_kinds.ts [--quick] [--kinds=zeros,logs]`
 *
 * @module
 */

import {
  compressBlock,
  decodeSegmentedBlock,
  encodeSegmented,
  lz4DecompressInto,
  xxh3_64,
} from "../wasm/mod.ts";
import { NativeLz4, NativeXxhash } from "../wasm/_native.ts";
import { DATA_KINDS, type DataKind, dataOfKind } from "../wasm/_test_util.ts";
import { rates as cpuRates } from "./_cpu_rates.ts";

const QUICK = Deno.args.includes("--quick");
const KINDS = (Deno.args.find((a) => a.startsWith("--kinds="))?.slice(8).split(",") ??
  DATA_KINDS) as DataKind[];
const SIZE = 4 << 20;
const SEG = 1 << 16;
const SAMPLE = 1 << 16;
const ROUNDS = QUICK ? 2 : 5;
const MIN_MS = QUICK ? 60 : 150;

/** Best rates of several functions measured in interleaved rounds. */
const rates = (bytes: number, fns: (() => void)[]) => cpuRates(bytes, fns, ROUNDS, MIN_MS);

interface Encoded {
  data: Uint8Array;
  table: Uint8Array;
  checksum: bigint;
}

/** The encode path before the fused pass (encodeBlock + encodeSegments of commit 80b7538). */
function oldEncode(raw: Uint8Array): Encoded {
  const checksum = xxh3_64(raw);
  const at = Math.floor((raw.byteLength - SAMPLE) / 2);
  const compress = compressBlock(raw.subarray(at, at + SAMPLE)).data.byteLength < SAMPLE * 0.9;
  const n = Math.ceil(raw.byteLength / SEG);
  const table = new Uint8Array(n * 10);
  const tv = new DataView(table.buffer);
  let out: Uint8Array | undefined;
  let o = 0;
  for (let i = 0; i < n; i++) {
    const seg = raw.subarray(i * SEG, (i + 1) * SEG);
    tv.setBigUint64(i * 10 + 2, xxh3_64(seg), true);
    let stored = seg;
    if (compress) {
      const c = compressBlock(seg);
      if (c.compressed) {
        stored = c.data;
        tv.setUint16(i * 10, stored.byteLength, true);
        if (!out) {
          out = new Uint8Array(raw.byteLength);
          out.set(raw.subarray(0, o));
        }
      }
    }
    out?.set(stored, o);
    o += stored.byteLength;
  }
  if (!out) return { data: raw, table, checksum };
  return { data: o === out.byteLength ? out : out.slice(0, o), table, checksum };
}

/** The decode path before the fused pass (decodeAllSegments of commit 80b7538). */
function oldDecode(stored: Uint8Array, table: Uint8Array, rawLen: number): Uint8Array {
  const tv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const n = Math.ceil(rawLen / SEG);
  const parts: Uint8Array[] = [];
  let o = 0;
  for (let i = 0; i < n; i++) {
    const code = tv.getUint16(i * 10, true);
    const segRaw = Math.min(SEG, rawLen - i * SEG);
    const len = code || segRaw;
    const seg = stored.subarray(o, o + len);
    o += len;
    let raw = seg;
    if (code !== 0) {
      raw = new Uint8Array(segRaw);
      lz4DecompressInto(seg, raw);
    }
    if (xxh3_64(raw) !== tv.getBigUint64(i * 10 + 2, true)) throw new Error("checksum");
    parts.push(raw);
  }
  if (stored.byteLength === rawLen) return stored;
  const raw = new Uint8Array(rawLen);
  parts.forEach((p, i) => raw.set(p, i * SEG));
  return raw;
}

const lz4 = new NativeLz4();
const xxh = new NativeXxhash();
const nativeOut = new Uint8Array(SIZE + 64);

/** The same encode with liblz4 and libxxhash, into a preallocated output. */
function nativeEncode(raw: Uint8Array): Encoded {
  const checksum = xxh.xxh3_64(raw);
  const at = Math.floor((raw.byteLength - SAMPLE) / 2);
  const s = lz4.compressInto(raw.subarray(at, at + SAMPLE), nativeOut.subarray(0, SAMPLE - 1));
  const compress = s > 0 && s < SAMPLE * 0.9;
  const n = Math.ceil(raw.byteLength / SEG);
  const table = new Uint8Array(n * 10);
  const tv = new DataView(table.buffer);
  let o = 0;
  let any = false;
  for (let i = 0; i < n; i++) {
    const seg = raw.subarray(i * SEG, (i + 1) * SEG);
    tv.setBigUint64(i * 10 + 2, xxh.xxh3_64(seg), true);
    if (!compress) continue;
    const c = lz4.compressInto(seg, nativeOut.subarray(o, o + seg.byteLength - 1));
    if (c > 0) {
      tv.setUint16(i * 10, c, true);
      any = true;
      o += c;
    } else {
      nativeOut.set(seg, o);
      o += seg.byteLength;
    }
  }
  return { data: any ? nativeOut.subarray(0, o) : raw, table, checksum };
}

const nativeRaw = new Uint8Array(SIZE);

/**
 * The same decode with liblz4 and libxxhash, into a preallocated raw buffer (the Wasm paths
 * return a new array: a fresh 4 MiB array costs page faults that a C caller reusing its buffer
 * does not pay).
 */
function nativeDecode(stored: Uint8Array, table: Uint8Array, rawLen: number): Uint8Array {
  const tv = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const n = Math.ceil(rawLen / SEG);
  if (stored.byteLength === rawLen) {
    for (let i = 0; i < n; i++) {
      const seg = stored.subarray(i * SEG, (i + 1) * SEG);
      if (xxh.xxh3_64(seg) !== tv.getBigUint64(i * 10 + 2, true)) throw new Error("checksum");
    }
    return stored;
  }
  const raw = nativeRaw.subarray(0, rawLen);
  let o = 0;
  for (let i = 0; i < n; i++) {
    const code = tv.getUint16(i * 10, true);
    const dst = raw.subarray(i * SEG, Math.min(rawLen, (i + 1) * SEG));
    const len = code || dst.byteLength;
    const seg = stored.subarray(o, o + len);
    o += len;
    if (code !== 0) {
      if (lz4.decompressInto(seg, dst) !== dst.byteLength) throw new Error("corrupt");
    } else dst.set(seg);
    if (xxh.xxh3_64(dst) !== tv.getBigUint64(i * 10 + 2, true)) throw new Error("checksum");
  }
  return raw;
}

const mbs = (x: number) => `${(x / 1e6).toFixed(0)}`;
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
const rows: string[][] = [[
  "data",
  "stored/raw",
  "encode MB/s: old / new / native",
  "old/native",
  "new/native",
  "decode MB/s: old / new / new into / native",
  "old/native",
  "new/native",
  "new into/native",
]];

for (const kind of KINDS) {
  const raw = dataOfKind(kind, SIZE);
  const enc = encodeSegmented(raw, true, true);
  const old = oldEncode(raw);
  const nat = nativeEncode(raw);
  const same = (a: Uint8Array, b: Uint8Array) =>
    a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
  if (!same(enc.data, old.data) || !same(enc.table, old.table) || enc.checksum !== old.checksum) {
    throw new Error(`${kind}: the fused encoder's block differs from the old one`);
  }
  if (nat.checksum !== enc.checksum || nat.data.byteLength !== enc.data.byteLength) {
    console.error(
      `${kind}: liblz4 stores ${nat.data.byteLength} bytes, ours ${enc.data.byteLength}`,
    );
  }
  for (const back of [oldDecode, decodeSegmentedBlock, nativeDecode]) {
    if (!same(back(enc.data, enc.table, SIZE), raw)) throw new Error(`${kind}: decode differs`);
  }
  if (!same(decodeSegmentedBlock(enc.data, enc.table, SIZE, new Uint8Array(SIZE)), raw)) {
    throw new Error(`${kind}: decode into a buffer differs`);
  }
  const [eOld, eNew, eNat] = rates(SIZE, [
    () => oldEncode(raw),
    () => encodeSegmented(raw, true, true),
    () => nativeEncode(raw),
  ]);
  const into = new Uint8Array(SIZE);
  const [dOld, dNew, dInto, dNat] = rates(SIZE, [
    () => oldDecode(enc.data, enc.table, SIZE),
    () => decodeSegmentedBlock(enc.data, enc.table, SIZE),
    () => decodeSegmentedBlock(enc.data, enc.table, SIZE, into),
    () => nativeDecode(enc.data, enc.table, SIZE),
  ]);
  rows.push([
    kind,
    (enc.data.byteLength / SIZE).toFixed(3),
    `${mbs(eOld!)} / ${mbs(eNew!)} / ${mbs(eNat!)}`,
    ratio(eOld!, eNat!),
    ratio(eNew!, eNat!),
    `${mbs(dOld!)} / ${mbs(dNew!)} / ${mbs(dInto!)} / ${mbs(dNat!)}`,
    ratio(dOld!, dNat!),
    ratio(dNew!, dNat!),
    ratio(dInto!, dNat!),
  ]);
}
lz4.close();
xxh.close();

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => "| " + r.map((x, i) => x.padEnd(widths[i]!)).join(" | ") + " |";
const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
console.log(`Segmented 4 MiB blocks, ${new Date().toISOString()}, load average ${load}`);
console.log(line(rows[0]!));
console.log("| " + widths.map((w) => "-".repeat(w)).join(" | ") + " |");
for (const r of rows.slice(1)) console.log(line(r));
