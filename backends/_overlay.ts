/**
 * Read-your-writes for engines that buffer a transaction's writes until commit: a scan merges
 * the buffered sets and deletes over what the committed data holds.
 *
 * @module
 */

import type { KvPair, ScanOptions } from "../core/kv.ts";
import { scanLowerBound } from "./_keys.ts";

/** A transaction's buffered writes: a value, or `null` for a delete. */
export type PendingWrites = Map<string, Uint8Array | null>;

/**
 * Reads committed pairs with keys `>= lower` under the scan's prefix, ascending, at most `limit`
 * (all when `undefined`).
 */
export type BaseScan = (lower: string, limit: number | undefined) => KvPair[];

const EMPTY = new Uint8Array(0);

/**
 * Scans `prefix` over committed data (`base`) with `pending` laid over it: buffered values win,
 * buffered deletes hide keys. Returned values are copies.
 */
export function scanWithOverlay(
  pending: PendingWrites,
  prefix: string,
  options: ScanOptions | undefined,
  base: BaseScan,
): KvPair[] {
  const limit = options?.limit;
  if (limit !== undefined && limit <= 0) return [];
  const lower = scanLowerBound(prefix, options?.startAfter);
  const mine: string[] = [];
  for (const key of pending.keys()) {
    if (key >= lower && key.startsWith(prefix)) mine.push(key);
  }
  if (mine.length === 0) return base(lower, limit);
  mine.sort(compareKeys);
  // At most `mine.length` committed pairs are hidden or replaced, so this many suffice.
  const committed = base(lower, limit === undefined ? undefined : limit + mine.length);
  const keysOnly = options?.keysOnly === true;
  const out: KvPair[] = [];
  const max = limit ?? Infinity;
  let i = 0;
  let j = 0;
  while (out.length < max && (i < committed.length || j < mine.length)) {
    const c = committed[i];
    const m = mine[j];
    if (m === undefined || (c !== undefined && c[0] < m)) {
      out.push(c!);
      i++;
      continue;
    }
    if (c !== undefined && c[0] === m) i++;
    j++;
    const value = pending.get(m)!;
    if (value !== null) out.push([m, keysOnly ? EMPTY : value.slice()]);
  }
  return out;
}

/** Bytewise order for byte strings. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
