/**
 * BLAKE3 hashing in Wasm (SIMD: four chunks in parallel).
 *
 * @module
 */

import { align16, codec } from "./_engine.ts";

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
  const p = c.input(data, 64);
  const out = align16(p + data.length);
  c.ex.blake3Hash(p, data.length, out);
  return c.u8.slice(out, out + 32);
}
