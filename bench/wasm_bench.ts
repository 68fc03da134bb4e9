/**
 * Benchmarks the Wasm block engine against the native libraries on the same run:
 * liblz4 and libxxhash through FFI, and the `b3sum` CLI (single-threaded) for BLAKE3. The cache
 * index is compared with a JS Map-based LRU of the same capacity.
 *
 * Run: `deno run -A --v8-flags=--expose-gc bench/wasm_bench.ts [--quick] [--only=lz4,xxh3,blake3,cache]`
 *
 * @module
 */

import {
  blake3,
  CacheIndex,
  lz4Compress,
  lz4Decompress,
  lz4DecompressInto,
  type Slot,
  xxh3_64,
} from "../wasm/mod.ts";
import process from "node:process";
import { align16, codec } from "../wasm/_engine.ts";
import { NativeLz4, NativeXxhash } from "../wasm/_native.ts";
import { Rng, textLike } from "../wasm/_test_util.ts";

const QUICK = Deno.args.includes("--quick");
const ONLY = Deno.args.find((a) => a.startsWith("--only="))?.slice(7).split(",");
const section = (name: string) => ONLY === undefined || ONLY.includes(name);
const MIN_MS = QUICK ? 150 : 400;
const MB = 1e6;

/** CPU time of this process in ms (the machine is shared, so wall time would count waiting). */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * Best rate (bytes or ops per CPU second) of `fn` over 3 rounds of at least MIN_MS each. Everything
 * measured here runs on this thread (FFI calls included), so CPU time is the fair clock.
 */
function rate(units: number, fn: () => void): number {
  fn();
  let best = 0;
  for (let round = 0; round < 3; round++) {
    let n = 0;
    const t0 = cpuMs();
    let t = t0;
    while (t - t0 < MIN_MS) {
      fn();
      n++;
      t = cpuMs();
    }
    best = Math.max(best, (units * n) / ((t - t0) / 1000));
  }
  return best;
}

type Row = { what: string; wasm: string; native: string; ratio: string; target: string };
const rows: Row[] = [];
function row(what: string, wasm: number, native: number, unit: string, target: string): void {
  const fmt = (x: number) =>
    unit === "MB/s" ? `${(x / MB).toFixed(0)} MB/s` : `${(x / 1e6).toFixed(2)} M/s`;
  rows.push({
    what,
    wasm: fmt(wasm),
    native: fmt(native),
    ratio: `${(wasm / native * 100).toFixed(0)}%`,
    target,
  });
}

/** The 8 MiB text as 128 blocks of 64 KiB. */
function blocks64(): Uint8Array[] {
  return Array.from({ length: 128 }, (_, i) => text.subarray(i * 65536, (i + 1) * 65536));
}

const lz4 = new NativeLz4();
const xxh = new NativeXxhash();
const rng = new Rng(2024);
const text = textLike(8 << 20, rng);
const noise = rng.bytes(8 << 20);

// ---- LZ4 ----
if (section("lz4")) {
  const dst = new Uint8Array(lz4.bound(text.length));
  const ours = lz4Compress(text);
  const theirs = lz4.compress(text).slice();
  const back = new Uint8Array(text.length);
  row(
    "LZ4 compress, 8 MiB text (API, incl. copies)",
    rate(text.length, () => lz4Compress(text)),
    rate(text.length, () => lz4.compressInto(text, dst)),
    "MB/s",
    ">= 50%",
  );
  row(
    "LZ4 decompress, 8 MiB text (API, incl. copies)",
    rate(text.length, () => lz4Decompress(ours, text.length)),
    rate(text.length, () => lz4.decompressInto(theirs, back)),
    "MB/s",
    ">= 50%",
  );
  // The kernels alone, with the data already in Wasm memory.
  const c = codec();
  const s = c.input(text, lz4.bound(text.length) + text.length + 64);
  const d = align16(s + text.length + 16);
  const bound = c.ex.lz4Bound(text.length);
  const n = c.ex.lz4Compress(s, text.length, d, bound);
  const o = align16(d + bound + 16);
  row(
    "LZ4 compress kernel (no copies)",
    rate(text.length, () => c.ex.lz4Compress(s, text.length, d, bound)),
    rate(text.length, () => lz4.compressInto(text, dst)),
    "MB/s",
    "",
  );
  row(
    "LZ4 decompress kernel (no copies)",
    rate(text.length, () => c.ex.lz4Decompress(d, n, o, text.length)),
    rate(text.length, () => lz4.decompressInto(theirs, back)),
    "MB/s",
    "",
  );
  row(
    "LZ4 decompress into a buffer, 8 MiB text",
    rate(text.length, () => lz4DecompressInto(ours, back)),
    rate(text.length, () => lz4.decompressInto(theirs, back)),
    "MB/s",
    ">= 50%",
  );
  const packed64 = blocks64().map((b) => [lz4Compress(b), lz4.compress(b).slice()] as const);
  const out64 = new Uint8Array(65536);
  row(
    "LZ4 decompress, 64 KiB blocks (into a buffer)",
    rate(8 << 20, () => packed64.forEach(([p]) => lz4DecompressInto(p, out64))),
    rate(8 << 20, () => packed64.forEach(([, p]) => lz4.decompressInto(p, out64))),
    "MB/s",
    ">= 50%",
  );
  row(
    "LZ4 decompress, 64 KiB blocks (new array)",
    rate(8 << 20, () => packed64.forEach(([p]) => lz4Decompress(p, 65536))),
    rate(8 << 20, () => packed64.forEach(([, p]) => lz4.decompressInto(p, out64))),
    "MB/s",
    ">= 50%",
  );
  const blocks = blocks64();
  const dst64 = new Uint8Array(lz4.bound(65536));
  row(
    "LZ4 compress, 64 KiB blocks",
    rate(8 << 20, () => blocks.forEach((b) => lz4Compress(b))),
    rate(8 << 20, () => blocks.forEach((b) => lz4.compressInto(b, dst64))),
    "MB/s",
    ">= 50%",
  );
  rows.push({
    what: "LZ4 compressed size, 8 MiB text",
    wasm: `${ours.length} (${(text.length / ours.length).toFixed(3)}x)`,
    native: `${theirs.length} (${(text.length / theirs.length).toFixed(3)}x)`,
    ratio: `${(ours.length / theirs.length * 100).toFixed(1)}%`,
    target: "<= 105%",
  });
}

// ---- XXH3 ----
if (section("xxh3")) {
  row(
    "XXH3-64, 8 MiB",
    rate(noise.length, () => xxh3_64(noise)),
    rate(noise.length, () => xxh.xxh3_64(noise)),
    "MB/s",
    ">= 50%",
  );
  const c = codec();
  const p = c.input(noise, 0);
  row(
    "XXH3-64 kernel, 8 MiB (no copy)",
    rate(noise.length, () => c.ex.xxh3(p, noise.length)),
    rate(noise.length, () => xxh.xxh3_64(noise)),
    "MB/s",
    "",
  );
  const small = Array.from({ length: 1024 }, (_, i) => noise.subarray(i * 4096, i * 4096 + 4096));
  row(
    "XXH3-64, 4 KiB inputs",
    rate(4 << 20, () => small.forEach((b) => xxh3_64(b))),
    rate(4 << 20, () => small.forEach((b) => xxh.xxh3_64(b))),
    "MB/s",
    ">= 50%",
  );
  const tiny = Array.from({ length: 1024 }, (_, i) => noise.subarray(i * 64, i * 64 + 40));
  row(
    "XXH3-64, 40-byte inputs (calls/s)",
    rate(1024, () => tiny.forEach((b) => xxh3_64(b))),
    rate(1024, () => tiny.forEach((b) => xxh.xxh3_64(b))),
    "ops",
    "",
  );
}

// ---- BLAKE3 ----
if (section("blake3")) {
  const ours = rate(noise.length, () => blake3(noise));
  // b3sum single-threaded on a file in /dev/shm (or tmp), minus its start-up time on an empty file.
  const dir = await Deno.makeTempDir({ dir: (await exists("/dev/shm")) ? "/dev/shm" : undefined });
  let native = NaN;
  try {
    const big = `${dir}/big`;
    const size = QUICK ? 64 << 20 : 256 << 20;
    const f = await Deno.open(big, { write: true, create: true });
    for (let i = 0; i < size / noise.length; i++) await f.write(noise);
    f.close();
    await Deno.writeFile(`${dir}/empty`, new Uint8Array(0));
    const time = async (file: string) => {
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        const out = await new Deno.Command("b3sum", {
          args: ["--num-threads", "1", "--no-mmap", file],
          stdout: "null",
        }).output();
        if (!out.success) throw new Error("b3sum failed");
        best = Math.min(best, performance.now() - t0);
      }
      return best;
    };
    const startup = await time(`${dir}/empty`);
    native = size / ((await time(big) - startup) / 1000);
  } catch (e) {
    console.error(`b3sum unavailable: ${e}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  row("BLAKE3, 8 MiB (native: b3sum --num-threads 1)", ours, native, "MB/s", ">= 500 MB/s");
}

// ---- Cache index vs a Map-based LRU ----

/** The baseline: an LRU over a Map's insertion order (re-set on hit). */
class MapLru {
  readonly #map = new Map<bigint, Slot>();
  constructor(readonly capacity: number) {}
  get(key: bigint): Slot | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }
  insert(key: bigint, slot: Slot): bigint[] {
    this.#map.delete(key);
    this.#map.set(key, slot);
    const evicted: bigint[] = [];
    while (this.#map.size > this.capacity) {
      const oldest = this.#map.keys().next().value as bigint;
      this.#map.delete(oldest);
      evicted.push(oldest);
    }
    return evicted;
  }
  get size(): number {
    return this.#map.size;
  }
}

const gc = (globalThis as { gc?: () => void }).gc;
function heapUsed(): number {
  gc?.();
  gc?.();
  return Deno.memoryUsage().heapUsed;
}

if (section("cache")) {
  // Callers derive keys at access time (blockKey(name) returns a fresh BigInt), so each operation
  // makes its key from a block number, for both contenders.
  const cap = QUICK ? 200_000 : 1_000_000;
  const keyOf = (i: number) => BigInt.asUintN(64, BigInt(i + 1) * 0x9e3779b97f4a7c15n);
  // Skewed access over a key space twice the capacity: 80% of accesses go to 20% of the keys.
  const space = cap * 2;
  const ops = Int32Array.from(
    { length: 1 << 20 },
    () => rng.int(10) < 8 ? rng.int(space / 5) : rng.int(space),
  );
  const slot = { tier: 0, location: 0, size: 4096 };

  const before = heapUsed();
  const lru = new MapLru(cap);
  for (let i = 0; i < cap; i++) lru.insert(keyOf(i), { tier: 0, location: i * 4096, size: 4096 });
  const lruBytes = heapUsed() - before;
  const index = new CacheIndex({ maxEntries: cap, maxBytes: Number.MAX_SAFE_INTEGER });
  for (let i = 0; i < cap; i++) index.insert(keyOf(i), { tier: 0, location: i * 4096, size: 4096 });

  const ours = rate(ops.length, () => {
    for (const i of ops) {
      const k = keyOf(i);
      if (index.get(k) === undefined) index.insert(k, slot);
    }
  });
  const theirs = rate(ops.length, () => {
    for (const i of ops) {
      const k = keyOf(i);
      if (lru.get(k) === undefined) lru.insert(k, slot);
    }
  });
  row(`Cache get-or-insert, ${cap / 1e6}M entries, skewed`, ours, theirs, "ops", ">= 200%");
  const hits = ops.map((i) => i % cap);
  const full = new CacheIndex({ maxEntries: cap, maxBytes: Number.MAX_SAFE_INTEGER });
  const fullLru = new MapLru(cap);
  for (let i = 0; i < cap; i++) {
    full.insert(keyOf(i), slot);
    fullLru.insert(keyOf(i), slot);
  }
  row(
    `Cache get (all hits, random order), ${cap / 1e6}M entries`,
    rate(hits.length, () => hits.forEach((i) => full.get(keyOf(i)))),
    rate(hits.length, () => hits.forEach((i) => fullLru.get(keyOf(i)))),
    "ops",
    ">= 200%",
  );
  const perEntryOurs = index.memoryBytes / cap;
  const perEntryLru = lruBytes / lru.size;
  rows.push({
    what: `Cache memory per entry, ${cap / 1e6}M entries`,
    wasm: `${perEntryOurs.toFixed(1)} B`,
    native: gc ? `${perEntryLru.toFixed(1)} B (Map LRU heap)` : "(run with --v8-flags=--expose-gc)",
    ratio: gc ? `${(perEntryOurs / perEntryLru * 100).toFixed(0)}%` : "",
    target: "<= 33%",
  });
}

lz4.close();
xxh.close();

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

const cols = ["what", "wasm", "native", "ratio", "target"] as const;
const header: Row = {
  what: "benchmark",
  wasm: "wasm",
  native: "native / baseline",
  ratio: "wasm/native",
  target: "target",
};
const widths = cols.map((c) => Math.max(...[header, ...rows].map((r) => r[c].length)));
const line = (r: Row) => "| " + cols.map((c, i) => r[c].padEnd(widths[i]!)).join(" | ") + " |";
console.log(line(header));
console.log("| " + widths.map((w) => "-".repeat(w)).join(" | ") + " |");
for (const r of rows) console.log(line(r));
