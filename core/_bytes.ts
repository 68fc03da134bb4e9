/**
 * Conversions between bytes and strings, in one place: "byte strings" (one char per byte, codes
 * 0..255: metadata keys, file names) and UTF-8 text.
 *
 * Decision: byte strings rather than `Uint8Array`s for keys and names, because JS compares
 * strings by UTF-16 code unit, so for chars 0..255 plain `<` is a bytewise (memcmp) comparison,
 * and because V8 keeps small strings far more cheaply than small typed arrays.
 *
 * @module
 */

/** `String.fromCharCode.apply` takes this many arguments at a time safely. */
const APPLY_CHUNK = 4096;

/**
 * Decodes bytes into a byte string (one char per byte).
 *
 * @example
 * ```ts
 * import { bytesToByteString } from "./_bytes.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(bytesToByteString(new Uint8Array([0x41, 0xff])), "A\xff");
 * ```
 */
export function bytesToByteString(bytes: Uint8Array): string {
  if (bytes.length <= APPLY_CHUNK) {
    return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  let out = "";
  for (let i = 0; i < bytes.length; i += APPLY_CHUNK) {
    out += String.fromCharCode.apply(
      null,
      bytes.subarray(i, i + APPLY_CHUNK) as unknown as number[],
    );
  }
  return out;
}

/**
 * Encodes a byte string as bytes; throws a `RangeError` for a char above 255.
 *
 * @example
 * ```ts
 * import { byteStringToBytes } from "./_bytes.ts";
 * import { deepEqual, throws } from "node:assert/strict";
 *
 * deepEqual(byteStringToBytes("A\xff"), new Uint8Array([0x41, 0xff]));
 * throws(() => byteStringToBytes("\u0100"), RangeError);
 * ```
 */
export function byteStringToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  let all = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    all |= c;
    out[i] = c;
  }
  if (all > 0xff) throw notByteString(s);
  return out;
}

/** The error for a string with a char above 255 (kept out of the loop above, a hot path). */
function notByteString(s: string): RangeError {
  let i = 0;
  while (s.charCodeAt(i) <= 0xff) i++;
  return new RangeError(`Byte string "${s}" has a char above 255 at index ${i}`);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes text as UTF-8. */
export function encodeUtf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes UTF-8 (invalid sequences become U+FFFD). */
export function decodeUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}
