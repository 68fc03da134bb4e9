/**
 * BLAKE3 hashing in Wasm (SIMD: four chunks in parallel).
 *
 * @module
 */

import { align16, codec, STREAM_PIECE } from "./_engine.ts";

/**
 * The standard 32-byte BLAKE3 hash of `data` (default hash mode, no key), as printed by `b3sum`.
 *
 * @example
 * ```ts
 * import { blake3 } from "./mod.ts";
 * import { equal } from "node:assert/strict";
 *
 * const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
 * equal(
 *   hex(blake3(new Uint8Array(0))),
 *   "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
 * );
 * ```
 */
export function blake3(data: Uint8Array): Uint8Array {
  const c = codec();
  if (data.length <= STREAM_PIECE) {
    const p = c.input(data, 64);
    const out = align16(p + data.length);
    c.ex.blake3Hash(p, data.length, out);
    return c.u8.slice(out, out + 32);
  }
  // Long input: whole chunks in pieces, keeping at least one byte (the last chunk) for the end.
  const at = c.base;
  const out = at + STREAM_PIECE;
  c.reserve(out + 32);
  const mem = c.u8;
  c.ex.blake3Reset();
  let off = 0;
  while (data.length - off > STREAM_PIECE) {
    mem.set(data.subarray(off, off + STREAM_PIECE), at);
    c.ex.blake3Update(at, STREAM_PIECE / 1024);
    off += STREAM_PIECE;
  }
  mem.set(data.subarray(off), at);
  c.ex.blake3Finish(at, data.length - off, out);
  return mem.slice(out, out + 32);
}
