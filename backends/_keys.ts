/**
 * Key ranges of "byte string" keys (one char per byte, codes 0..255; converted to and from
 * bytes by `core/_bytes.ts`).
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

/** The lowest key a scan of `prefix` after `startAfter` may return (inclusive). */
export function scanLowerBound(prefix: string, startAfter: string | undefined): string {
  // The smallest string greater than `s` is `s + "\0"`.
  if (startAfter !== undefined && startAfter >= prefix) return startAfter + "\0";
  return prefix;
}
