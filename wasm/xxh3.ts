/**
 * XXH3-64 hashing in Wasm.
 *
 * @module
 */

import { codec } from "./_engine.ts";

/**
 * The standard XXH3 64-bit hash of `data` with seed 0 and the default secret, as an unsigned
 * BigInt. Equal to libxxhash's `XXH3_64bits`.
 *
 * @example
 * ```ts
 * import { xxh3_64 } from "./mod.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(xxh3_64(new Uint8Array(0)), 0x2d06800538d394c2n);
 * ```
 */
export function xxh3_64(data: Uint8Array): bigint {
  const c = codec();
  const p = c.input(data, 0);
  return BigInt.asUintN(64, c.ex.xxh3(p, data.length));
}
