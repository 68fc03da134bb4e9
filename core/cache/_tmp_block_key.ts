/**
 * A temporary copy of `parseBlockKey` for `Vfs.stats()`, until the one the backends refactor adds
 * to `core/slice.ts` is merged.
 *
 * TODO(merge): the lead replaces this file with `parseBlockKey` from `core/slice.ts`: delete it
 * and import `parseBlockKey` from "./slice.ts" in `core/vfs.ts`.
 *
 * @module
 */

import type { SliceId } from "../types.ts";

/**
 * The slice id, block index and length of a block key made by `blockKey` in `core/slice.ts`
 * (`chunks/<id / 1e6>/<id / 1e3>/<id>_<index>_<length>`), or undefined for any other key.
 *
 * @example
 * ```ts
 * import { parseBlockKey } from "./_tmp_block_key.ts";
 * import { deepEqual, equal } from "node:assert/strict";
 *
 * deepEqual(parseBlockKey("chunks/0/1/1234_5_4096"), { id: 1234, index: 5, length: 4096 });
 * equal(parseBlockKey("blobs/ab/cd/abcd_1_0"), undefined);
 * ```
 */
export function parseBlockKey(
  key: string,
): { id: SliceId; index: number; length: number } | undefined {
  const m = /^chunks\/\d+\/\d+\/(\d+)_(\d+)_(\d+)$/.exec(key);
  if (m === null) return undefined;
  return { id: Number(m[1]) as SliceId, index: Number(m[2]), length: Number(m[3]) };
}
