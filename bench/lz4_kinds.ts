/**
 * Wasm LZ4 against liblz4 (FFI) on 4 MiB blocks of several kinds of data, compress and
 * decompress, in one run. Rates are per CPU second of this process (FFI calls run on the same
 * thread), the best of several interleaved rounds, so the wasm/native ratios stay comparable on a
 * loaded machine.
 *
 * - `compressBlock(src)`, what SlayerFS calls: copy in, compress, copy the block out into a new
 *   array (or return `src` itself when LZ4 does not shrink it).
 * - "into": `lz4CompressInto(src, dst)` and `lz4DecompressInto(block, dst)`: copy in, run, copy
 *   out into the caller's buffer (what the liblz4 calls do, minus the copies).
 * - "kernel": the Wasm export alone, its input already in Wasm memory.
 * - liblz4: `LZ4_compress_default` / `LZ4_decompress_safe` into preallocated buffers; "liblz4 new
 *   buffer" compresses into a fresh bound-sized array (`NativeLz4.compress`), the allocating
 *   counterpart that `compressBlock` (which also returns a fresh array) is compared to.
 *
 * Both decoders decode the Wasm compressor's block (the one SlayerFS stores).
 *
 * Run: `deno run -A bench/lz4_kinds.ts [--quick] [--kinds=zeros,logs] [--size=MiB]`
 *
 * @module
 */

import { compressBlock, lz4Compress, lz4CompressInto, lz4DecompressInto } from "../wasm/mod.ts";
import { align16, codec } from "../wasm/_engine.ts";
import { NativeLz4 } from "../wasm/_native.ts";
import { DATA_KINDS, type DataKind, dataOfKind } from "../wasm/_test_util.ts";
import { rates as cpuRates } from "./_cpu_rates.ts";

const QUICK = Deno.args.includes("--quick");
const KINDS = (Deno.args.find((a) => a.startsWith("--kinds="))?.slice(8).split(",") ??
  DATA_KINDS) as DataKind[];
const SIZE = Number(Deno.args.find((a) => a.startsWith("--size="))?.slice(7) ?? 4) * 2 ** 20;
const ROUNDS = QUICK ? 2 : 4;
const MIN_MS = QUICK ? 60 : 150;

/** Best rates of several functions measured in interleaved rounds. */
const rates = (bytes: number, fns: (() => void)[]) => cpuRates(bytes, fns, ROUNDS, MIN_MS);

const native = new NativeLz4();
const mbs = (x: number) => `${(x / 1e6).toFixed(0)}`;
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
const rows: string[][] = [[
  "data",
  "size ratio (wasm / liblz4)",
  "compress MB/s: compressBlock / into / kernel / liblz4 / liblz4 new buffer",
  "compressBlock/liblz4 new buffer",
  "into/liblz4",
  "kernel/liblz4",
  "decompress MB/s: into / kernel / liblz4",
  "into/liblz4",
  "kernel/liblz4",
]];

for (const kind of KINDS) {
  const data = dataOfKind(kind, SIZE);
  const ours = lz4Compress(data);
  const theirs = native.compress(data).slice();
  const dst = new Uint8Array(native.bound(SIZE));
  const back = new Uint8Array(SIZE);
  if (native.decompressInto(ours, back) !== SIZE || !back.every((b, i) => b === data[i])) {
    throw new Error(`liblz4 does not decode the Wasm block of ${kind} data`);
  }
  // Kernel layout, above what the API calls use: input at s, compressed at d, decoded at o.
  const c = codec();
  const bound = c.ex.lz4Bound(SIZE) >>> 0;
  const s = align16(c.base + 2 * (SIZE + bound) + 1024);
  c.reserve(s + 3 * bound + 1024);
  c.u8.set(data, s);
  const d = align16(s + SIZE + 16);
  const o = align16(d + bound + 32);
  const n = c.ex.lz4Compress(s, SIZE, d, bound) >>> 0;
  const [cApi, cInto, cKernel, cNative, cNativeNew] = rates(SIZE, [
    () => compressBlock(data),
    () => lz4CompressInto(data, dst),
    () => c.ex.lz4Compress(s, SIZE, d, bound),
    () => native.compressInto(data, dst),
    () => native.compress(data),
  ]);
  c.ex.lz4Compress(s, SIZE, d, bound);
  const [dInto, dKernel, dNative] = rates(SIZE, [
    () => lz4DecompressInto(ours, back),
    () => c.ex.lz4Decompress(d, n, o, SIZE),
    () => native.decompressInto(ours, back),
  ]);
  rows.push([
    kind,
    `${(SIZE / ours.length).toFixed(2)} / ${(SIZE / theirs.length).toFixed(2)}`,
    `${mbs(cApi!)} / ${mbs(cInto!)} / ${mbs(cKernel!)} / ${mbs(cNative!)} / ${mbs(cNativeNew!)}`,
    ratio(cApi!, cNativeNew!),
    ratio(cInto!, cNative!),
    ratio(cKernel!, cNative!),
    `${mbs(dInto!)} / ${mbs(dKernel!)} / ${mbs(dNative!)}`,
    ratio(dInto!, dNative!),
    ratio(dKernel!, dNative!),
  ]);
}
native.close();

const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => "| " + r.map((x, i) => x.padEnd(widths[i]!)).join(" | ") + " |";
console.log(`LZ4, ${SIZE / 2 ** 20} MiB blocks, ${new Date().toISOString().slice(0, 10)}`);
console.log(line(rows[0]!));
console.log("| " + widths.map((w) => "-".repeat(w)).join(" | ") + " |");
for (const r of rows.slice(1)) console.log(line(r));
