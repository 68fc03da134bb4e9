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

/**
 * Compresses in Wasm memory into at most `cap` bytes (default: the worst case). Returns the output
 * offset and length (valid until the next call); the length is 0 when the block needs more.
 */
function compressRaw(src: Uint8Array, cap?: number): [number, number] {
  checkSize(src.length, "LZ4 input size");
  const c = codec();
  const bound = c.ex.lz4Bound(src.length) >>> 0;
  const limit = Math.min(cap ?? bound, bound);
  const s = c.input(src, limit + 32);
  const d = align16(s + src.length + 16);
  return [d, c.ex.lz4Compress(s, src.length, d, limit) >>> 0];
}

/** Compresses with a worst-case capacity, which never runs out. */
function compressFull(src: Uint8Array): [number, number] {
  const [d, n] = compressRaw(src);
  if (n === 0) throw new Lz4Error(`LZ4 output exceeded its bound for ${src.length} bytes`, 0);
  return [d, n];
}

/**
 * Where the literals start when `src` is a block of one literal run only (how LZ4 stores
 * incompressible data), else -1. Such a block is copied straight into the output.
 */
function literalsOnly(src: Uint8Array): number {
  const token = src[0];
  if (token === undefined || (token & 15) !== 0) return -1;
  let lit = token >> 4;
  let at = 1;
  if (lit === 15) {
    let b = 255;
    while (b === 255 && at < src.length) lit += b = src[at++]!;
    if (b === 255) return -1;
  }
  return at + lit === src.length ? at : -1;
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
  const [d, n] = compressFull(src);
  return codec().u8.slice(d, d + n);
}

/**
 * Compresses `src` into one LZ4 block written to the start of `dst`, like `LZ4_compress_default`:
 * returns the block's size, or 0 when it may not fit in `dst` (the check is conservative, like
 * liblz4's; a `dst` of {@linkcode lz4CompressBound} bytes always fits). Saves the allocation of
 * {@linkcode lz4Compress} when the caller reuses a buffer.
 *
 * @example
 * ```ts
 * import { lz4CompressBound, lz4CompressInto, lz4Decompress } from "./mod.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * const data = new TextEncoder().encode("abcabcabcabcabcabcabcabcabcabcabcabc");
 * const buf = new Uint8Array(lz4CompressBound(data.length));
 * const n = lz4CompressInto(data, buf);
 * deepEqual(lz4Decompress(buf.subarray(0, n), data.length), data);
 * equal(lz4CompressInto(data, new Uint8Array(4)), 0);
 * ```
 */
export function lz4CompressInto(src: Uint8Array, dst: Uint8Array): number {
  // One byte short of the input: incompressible data makes the encoder give up early, and its
  // literal-only block is written here straight from `src` (one copy instead of two).
  const [d, n] = compressRaw(src, Math.min(dst.length, Math.max(src.length - 1, 0)));
  if (n > 0) {
    dst.set(codec().u8.subarray(d, d + n));
    return n;
  }
  return literalBlockInto(src, dst);
}

/** Writes `src` as one literal-only LZ4 block to `dst`; its size, or 0 if `dst` is too small. */
function literalBlockInto(src: Uint8Array, dst: Uint8Array): number {
  const lit = src.length;
  const header = lit < 15 ? 1 : 2 + Math.floor((lit - 15) / 255);
  if (dst.length < header + lit) return 0;
  dst[0] = Math.min(lit, 15) << 4;
  if (lit >= 15) {
    let rest = lit - 15;
    for (let i = 1; i < header; i++, rest -= 255) dst[i] = Math.min(rest, 255);
  }
  dst.set(src, header);
  return header + lit;
}

/**
 * The largest LZ4 block {@linkcode lz4Compress} makes from `n` bytes (at least
 * `LZ4_compressBound(n)` of liblz4, so either library's output fits).
 *
 * @example
 * ```ts
 * import { lz4CompressBound } from "./mod.ts";
 * import { ok } from "node:assert/strict";
 *
 * ok(lz4CompressBound(65536) >= 65536 + Math.floor(65536 / 255) + 16);
 * ```
 */
export function lz4CompressBound(n: number): number {
  checkSize(n, "LZ4 input size");
  return codec().ex.lz4Bound(n) >>> 0;
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
  const at = literalsOnly(src);
  if (at >= 0 && src.length - at === originalSize) return src.slice(at);
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
  const at = literalsOnly(src);
  if (at >= 0 && src.length - at === dst.length) {
    dst.set(src.subarray(at));
    return;
  }
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
  // Capacity one byte short of the input: the encoder gives up (returns 0) as soon as the block
  // cannot be smaller, without writing out the literals of incompressible data.
  const [d, n] = src.length === 0 ? [0, 0] : compressRaw(src, src.length - 1);
  if (n === 0 || n >= src.length) return { data: src, compressed: false };
  return { data: codec().u8.slice(d, d + n), compressed: true };
}
