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
