/**
 * "Did you mean ...?": the known name closest to a mistyped command, option, value or scheme.
 *
 * @module
 */

/** The edit distance between `a` and `b` (insertions, deletions, substitutions, swaps). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate closest to `typed`, if it is close enough to be a typo: at most a third of its
 * letters differ, or one starts with the other (`sqlite` for `sqlite3`).
 */
export function closest(typed: string, candidates: readonly string[]): string | undefined {
  const t = typed.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(t, c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  if (best === undefined || bestDistance === 0) return best;
  const near = bestDistance <= Math.max(1, Math.floor(Math.max(t.length, best.length) / 3));
  const prefix = t.length >= 2 && (best.toLowerCase().startsWith(t) || t.startsWith(best));
  return near || prefix ? best : undefined;
}

/** `" (did you mean NAME?)"`, or `""` without a suggestion. */
export function didYouMean(suggestion: string | undefined): string {
  return suggestion === undefined ? "" : ` (did you mean ${suggestion}?)`;
}
