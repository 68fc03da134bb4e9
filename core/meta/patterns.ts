/**
 * Access patterns in the metadata, as functions over a {@linkcode KvTxn}: what `core/predict.ts`
 * recorded being read after a file was opened, kept so that it survives remounts and is shared
 * by every mount of the volume. An inode's pattern goes with the inode.
 *
 * @module
 */

import type { KvTxn } from "../kv.ts";
import type { Ino } from "../types.ts";
import { decodeJson, encodeJson } from "./_codec.ts";
import { patternKey } from "./keys.ts";

/** One file of a pattern and the blocks read from it (block = offset / block size). */
export interface PatternEntry {
  /** The file read. */
  ino: Ino;
  /** Its blocks, in first-read order. */
  blocks: number[];
}

/** The access pattern recorded after opening `ino`, if any. */
export async function getPattern(tx: KvTxn, ino: Ino): Promise<PatternEntry[] | undefined> {
  const raw = await tx.get(patternKey(ino));
  return raw ? decodeJson<PatternEntry[]>(raw) : undefined;
}

/** Saves the access pattern that follows an open of `ino`. */
export function setPattern(tx: KvTxn, ino: Ino, pattern: readonly PatternEntry[]): void {
  tx.set(patternKey(ino), encodeJson(pattern));
}
