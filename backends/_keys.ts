/**
 * Helpers for "byte string" keys (one char per byte, codes 0..255).
 *
 * Decision: JS compares strings by UTF-16 code unit, so for chars 0..255 plain `<` is a bytewise
 * comparison; the memory engine relies on that and SQLite stores keys as BLOBs (memcmp order).
 *
 * @module
 */

/**
 * The smallest byte string greater than every string that starts with `prefix`, or `undefined`
 * when there is none (`prefix` is empty or all `"\xff"`).
 */
export function prefixUpperBound(prefix: string): string | undefined {
  let end = prefix.length;
  while (end > 0 && prefix.charCodeAt(end - 1) === 0xff) end--;
  if (end === 0) return undefined;
  return prefix.slice(0, end - 1) + String.fromCharCode(prefix.charCodeAt(end - 1) + 1);
}

/** Encodes a byte string as bytes; throws a `RangeError` for a char above 255. */
export function keyToBytes(key: string): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`Key "${key}" has a char above 255 at index ${i}`);
    out[i] = c;
  }
  return out;
}

/** Decodes bytes into a byte string. */
export function bytesToKey(bytes: Uint8Array): string {
  if (bytes.length <= 4096) return String.fromCharCode.apply(null, bytes as unknown as number[]);
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return out;
}

/** The lowest key a scan of `prefix` after `startAfter` may return (inclusive). */
export function scanLowerBound(prefix: string, startAfter: string | undefined): string {
  // The smallest string greater than `s` is `s + "\0"`.
  if (startAfter !== undefined && startAfter >= prefix) return startAfter + "\0";
  return prefix;
}
