/**
 * XXH3-64 hashing in Wasm.
 *
 * @module
 */

import { codec, STREAM_PIECE } from "./_engine.ts";

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
  if (data.length <= STREAM_PIECE) {
    const p = c.input(data, 0);
    return BigInt.asUintN(64, c.ex.xxh3(p, data.length));
  }
  // Long input: 1024-byte blocks in pieces; the last block (1..1024 bytes) and the 64 bytes
  // before it go to the finish call.
  const len = data.length;
  const blocks = Math.floor((len - 1) / 1024);
  const at = c.base + 64;
  c.reserve(at + STREAM_PIECE + 16);
  const mem = c.u8;
  c.ex.xxh3LongReset();
  const perPiece = STREAM_PIECE / 1024;
  for (let b = 0; b < blocks; b += perPiece) {
    const n = Math.min(perPiece, blocks - b);
    mem.set(data.subarray(b * 1024, (b + n) * 1024), at);
    c.ex.xxh3LongBlocks(at, n);
  }
  const tail = len - blocks * 1024;
  mem.set(data.subarray(len - tail - 64), at - 64);
  return BigInt.asUintN(64, c.ex.xxh3LongFinish(at, tail, len));
}
