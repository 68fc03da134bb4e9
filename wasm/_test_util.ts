/**
 * Deterministic test data for the engine's tests and benchmark.
 *
 * @module
 */

/** A small seeded PRNG (xorshift32) so failures can be replayed. */
export class Rng {
  #s: number;

  /** Starts the sequence at `seed` (non-zero). */
  constructor(seed = 0x9e3779b9) {
    this.#s = seed >>> 0 || 1;
  }

  /** The next 32-bit value. */
  next(): number {
    let s = this.#s;
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    this.#s = s >>> 0;
    return this.#s;
  }

  /** An integer in `[0, n)`. */
  int(n: number): number {
    return Math.floor((this.next() / 0x100000000) * n);
  }

  /** `n` random bytes (incompressible). */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    const words = new Uint32Array(out.buffer, 0, n >>> 2);
    for (let i = 0; i < words.length; i++) words[i] = this.next();
    for (let i = words.length * 4; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}

const WORDS = (
  "the of and to in is was for on that with as by at from his it an were are which this be " +
  "file block chunk slice inode cache tier read write object store metadata directory mount " +
  "compression hash index eviction frequency scan latency throughput bytes offset length"
).split(" ");

/** Text-like data: random words, punctuation and line breaks (compressible like prose or logs). */
export function textLike(n: number, rng: Rng = new Rng(42)): Uint8Array {
  const parts: string[] = [];
  let len = 0;
  while (len < n) {
    let w = WORDS[rng.int(WORDS.length)]!;
    const r = rng.int(20);
    if (r === 0) w += ".\n";
    else if (r === 1) w += ",";
    else if (r === 2) w = String(rng.int(100000));
    parts.push(w);
    len += w.length + 1;
  }
  return new TextEncoder().encode(parts.join(" ")).subarray(0, n);
}

/** Highly compressible data: a short pattern repeated with occasional changes. */
export function repetitive(n: number, rng: Rng = new Rng(7)): Uint8Array {
  const out = new Uint8Array(n);
  const period = 1 + rng.int(64);
  for (let i = 0; i < n; i++) out[i] = i < period ? rng.next() & 0xff : out[i - period]!;
  for (let i = 0; i < n / 1000; i++) out[rng.int(n)] = rng.next() & 0xff;
  return out;
}

/** The kinds of data the LZ4 tests and `bench/lz4_kinds.ts` cover. */
export const DATA_KINDS = ["zeros", "repetitive", "logs", "json", "prose", "random"] as const;

/** One of {@linkcode DATA_KINDS}. */
export type DataKind = typeof DATA_KINDS[number];

const LEVELS = ["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];
const PATHS = ["/api/v1/objects", "/api/v1/blocks", "/healthz", "/metrics", "/api/v1/inodes"];

/** Log lines: timestamps, levels, request ids, paths, latencies (compresses ~4-6:1). */
function logLines(n: number, rng: Rng): string {
  const lines: string[] = [];
  let len = 0;
  let t = Date.UTC(2026, 11, 1);
  while (len < n) {
    t += rng.int(50);
    const line = `${new Date(t).toISOString()} ${LEVELS[rng.int(LEVELS.length)]} ` +
      `[worker-${rng.int(8)}] req=${rng.next().toString(16).padStart(8, "0")} ` +
      `GET ${PATHS[rng.int(PATHS.length)]}/${rng.int(5000)} status=${
        rng.int(10) ? 200 : 404
      } bytes=${rng.int(1 << 20)} latency_ms=${(rng.int(100000) / 100).toFixed(2)}\n`;
    lines.push(line);
    len += line.length;
  }
  return lines.join("");
}

/** JSON records (an array of objects with repeated keys, like an API dump). */
function jsonRecords(n: number, rng: Rng): string {
  const parts: string[] = [];
  let len = 0;
  while (len < n) {
    const rec = JSON.stringify({
      id: rng.int(1e9),
      name: `object-${rng.int(100000)}`,
      tier: ["hot", "warm", "cold"][rng.int(3)],
      size: rng.int(1 << 24),
      tags: { owner: `user${rng.int(50)}`, replicated: rng.int(2) === 0 },
      blocks: [rng.int(1e6), rng.int(1e6)],
    });
    parts.push(rec);
    len += rec.length + 2;
  }
  return "[" + parts.join(",\n") + "]";
}

/**
 * `n` bytes of the given kind: zeros, a short pattern repeated (period 1..16, a changed byte every
 * ~4 KiB), log lines, JSON records, prose-like words ({@linkcode textLike}), or random bytes.
 */
export function dataOfKind(kind: DataKind, n: number, rng: Rng = new Rng(11)): Uint8Array {
  switch (kind) {
    case "zeros":
      return new Uint8Array(n);
    case "repetitive": {
      const out = new Uint8Array(n);
      const period = 1 + rng.int(16);
      for (let i = 0; i < n; i++) out[i] = i < period ? rng.next() & 0xff : out[i - period]!;
      for (let i = 0; i < n / 4096; i++) out[rng.int(n)] = rng.next() & 0xff;
      return out;
    }
    case "logs":
      return new TextEncoder().encode(logLines(n, rng)).subarray(0, n);
    case "json":
      return new TextEncoder().encode(jsonRecords(n, rng)).subarray(0, n);
    case "prose":
      return textLike(n + 16, rng).subarray(0, n); // textLike(n) can come out 1 byte short
    case "random":
      return rng.bytes(n);
  }
}
