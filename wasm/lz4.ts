/**
 * LZ4 block format (not the frame format) compression in Wasm.
 *
 * @module
 */

import { align16, codec } from "./_engine.ts";

/** Largest input the LZ4 block format accepts (`LZ4_MAX_INPUT_SIZE`). */
export const LZ4_MAX_INPUT_SIZE = 0x7e000000;

/**
 * Thrown when an LZ4 block is corrupt, truncated, or does not decode to the expected size.
 *
 * @example
 * ```ts
 * import { Lz4Error, lz4Decompress } from "./mod.ts";
 * import { throws } from "node:assert/strict";
 *
 * throws(() => lz4Decompress(new Uint8Array([0xf0]), 20), Lz4Error);
 * ```
 */
export class Lz4Error extends Error {
  /** The decoder's reason code (negative), or 0 for a size mismatch. */
  readonly code: number;

  /** Creates an error with a message and the decoder's reason code. */
  constructor(message: string, code: number) {
    super(message);
    this.name = "Lz4Error";
    this.code = code;
  }
}

function checkSize(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > LZ4_MAX_INPUT_SIZE) {
    throw new RangeError(`${what} must be an integer in 0..${LZ4_MAX_INPUT_SIZE}, got "${n}"`);
  }
}

/** Compresses in Wasm memory; returns the output offset and length (valid until the next call). */
function compressRaw(src: Uint8Array): [number, number] {
  checkSize(src.length, "LZ4 input size");
  const c = codec();
  const bound = c.ex.lz4Bound(src.length) >>> 0;
  const s = c.input(src, bound + 32);
  const d = align16(s + src.length + 16);
  const n = c.ex.lz4Compress(s, src.length, d, bound) >>> 0;
  if (n === 0) throw new Lz4Error(`LZ4 output exceeded its bound for ${src.length} bytes`, 0);
  return [d, n];
}

/**
 * Compresses `src` into one LZ4 block (the raw block format, no frame header or checksum).
 * Any LZ4 decoder (`LZ4_decompress_safe`) reads the result; the original size must be stored
 * by the caller.
 *
 * @example
 * ```ts
 * import { lz4Compress, lz4Decompress } from "./mod.ts";
 * import { deepEqual, ok } from "node:assert/strict";
 *
 * const text = new TextEncoder().encode("abcabcabcabcabcabcabcabcabcabcabcabc");
 * const packed = lz4Compress(text);
 * ok(packed.length < text.length);
 * deepEqual(lz4Decompress(packed, text.length), text);
 * ```
 */
export function lz4Compress(src: Uint8Array): Uint8Array {
  const [d, n] = compressRaw(src);
  return codec().u8.slice(d, d + n);
}

/**
 * Decompresses one LZ4 block that must decode to exactly `originalSize` bytes.
 *
 * @throws {Lz4Error} if the block is corrupt or truncated or decodes to another size. Decoding
 * never reads or writes outside the input and output buffers.
 *
 * @example
 * ```ts
 * import { lz4Compress, lz4Decompress } from "./mod.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * const data = new Uint8Array(1000).fill(7);
 * deepEqual(lz4Decompress(lz4Compress(data), 1000), data);
 * ```
 */
export function lz4Decompress(src: Uint8Array, originalSize: number): Uint8Array {
  const d = decompressRaw(src, originalSize);
  return codec().u8.slice(d, d + originalSize);
}

/**
 * Decompresses one LZ4 block into `dst`, which it must fill exactly (`dst.length` is the original
 * size). Saves the allocation of {@linkcode lz4Decompress} when the caller has a buffer.
 *
 * @throws {Lz4Error} like {@linkcode lz4Decompress}; `dst` may then hold partial output.
 *
 * @example
 * ```ts
 * import { lz4Compress, lz4DecompressInto } from "./mod.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * const data = new TextEncoder().encode("to be or not to be, to be or not to be");
 * const out = new Uint8Array(data.length);
 * lz4DecompressInto(lz4Compress(data), out);
 * deepEqual(out, data);
 * ```
 */
export function lz4DecompressInto(src: Uint8Array, dst: Uint8Array): void {
  const d = decompressRaw(src, dst.length);
  dst.set(codec().u8.subarray(d, d + dst.length));
}

/** Decompresses in Wasm memory; returns the output offset (valid until the next call). */
function decompressRaw(src: Uint8Array, originalSize: number): number {
  checkSize(originalSize, "LZ4 original size");
  const c = codec();
  const s = c.input(src, originalSize + 32);
  const d = align16(s + src.length + 16);
  const n = c.ex.lz4Decompress(s, src.length, d, originalSize);
  if (n < 0) {
    throw new Lz4Error(`Corrupt or truncated LZ4 block (reason ${n}, ${src.length} bytes)`, n);
  }
  if (n !== originalSize) {
    throw new Lz4Error(`LZ4 block decoded to ${n} bytes, expected "${originalSize}"`, 0);
  }
  return d;
}

/** The result of {@linkcode compressBlock}. */
export interface CompressedBlock {
  /** LZ4 block when `compressed`, else the input itself (not copied). */
  data: Uint8Array;
  /** Whether `data` is LZ4-compressed. */
  compressed: boolean;
}

/**
 * Compresses `src` with LZ4 when that makes it smaller, else returns it as stored raw.
 *
 * @example
 * ```ts
 * import { compressBlock, lz4Decompress } from "./mod.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const zeros = new Uint8Array(4096);
 * const packed = compressBlock(zeros);
 * equal(packed.compressed, true);
 * deepEqual(lz4Decompress(packed.data, zeros.length), zeros);
 *
 * const noise = crypto.getRandomValues(new Uint8Array(4096));
 * equal(compressBlock(noise).compressed, false);
 * equal(compressBlock(noise).data, noise);
 * ```
 */
export function compressBlock(src: Uint8Array): CompressedBlock {
  const [d, n] = compressRaw(src);
  if (n >= src.length) return { data: src, compressed: false };
  return { data: codec().u8.slice(d, d + n), compressed: true };
}
