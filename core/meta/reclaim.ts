/**
 * Reclamation, as functions over a {@linkcode KvTxn}: removing an inode whose last link went,
 * inodes kept while open after their last unlink ("sustained"), the garbage list of freed slices
 * whose objects await deletion, and the usage counters.
 *
 * An inode unlinked while open keeps its attributes and data, marked by an `O` key; the last close
 * (or the next mount, after a crash, unless a session still has it open) removes it with {@linkcode deleteSustained}. A freed slice
 * stays on the garbage list (`G`) until the block layer has deleted its objects and calls
 * {@linkcode clearGarbage}; a crash in between leaves the entry for the next mount to finish.
 *
 * @module
 */

import type { KvTxn } from "../kv.ts";
import { type Attr, type Ino, S_IFDIR, S_IFMT, S_IFREG, type SliceId } from "../types.ts";
import { decodeRecords, type SliceRecord } from "../slice.ts";
import { decodeAttr, decodeGarbage, decodeNum } from "./_codec.ts";
import {
  attrKey,
  chunkPrefix,
  garbageIdOf,
  garbageKey,
  garbagePrefix,
  keyUsedInodes,
  keyUsedSpace,
  openInoPrefix,
  patternKey,
  sustainedInoOf,
  sustainedKey,
  sustainedPrefix,
  symlinkKey,
  xattrPrefix,
} from "./keys.ts";
import { bump, spaceOf } from "./_inode.ts";
import { type FreedSlice, type Freeing, unref } from "./slices.ts";
import { charge, deleteQuota, usageOf } from "./quotas.ts";

/** Removes everything of an inode whose last link is gone; adds its freed slices to `freed`. */
export async function dropInode(tx: KvTxn, a: Attr, freed: FreedSlice[]): Promise<void> {
  const ino = a.ino;
  tx.delete(attrKey(ino));
  tx.delete(symlinkKey(ino));
  tx.delete(sustainedKey(ino));
  tx.delete(patternKey(ino));
  for (const [k] of await tx.scan(xattrPrefix(ino), { keysOnly: true })) tx.delete(k);
  if ((a.mode & S_IFMT) === S_IFREG) {
    const chunks = await tx.scan(chunkPrefix(ino));
    const recs: SliceRecord[] = [];
    for (const [k, v] of chunks) {
      tx.delete(k);
      recs.push(...decodeRecords(v));
    }
    await unref(tx, recs, freed);
    await bump(tx, keyUsedSpace, -spaceOf(a.size));
  }
  await bump(tx, keyUsedInodes, -1);
  const u = usageOf(a);
  await charge(tx, a.parent, -u.space, -u.inodes, false);
  if ((a.mode & S_IFMT) === S_IFDIR) await deleteQuota(tx, ino); // the quota goes with it
}

/** Marks `ino`, unlinked while open, to be deleted at its last close (or the next mount). */
export function sustain(tx: KvTxn, ino: Ino): void {
  tx.set(sustainedKey(ino), new Uint8Array(1));
}

/**
 * Deletes an unlinked inode whose last handle closed, unless a session still has it open
 * (`sessions.ts`): then the last close there deletes it.
 */
export async function deleteSustained(tx: KvTxn, ino: Ino): Promise<Freeing> {
  const freed: FreedSlice[] = [];
  const raw = await tx.get(attrKey(ino));
  if (!raw) return { freed };
  const a = decodeAttr(ino, raw);
  if (a.nlink > 0) tx.delete(sustainedKey(ino));
  else if (!(await tx.scan(openInoPrefix(ino), { limit: 1, keysOnly: true })).length) {
    await dropInode(tx, a, freed);
  }
  return { freed };
}

/** Inodes left unlinked-but-open by a previous run (to delete at mount). */
export async function listSustained(tx: KvTxn): Promise<Ino[]> {
  const pairs = await tx.scan(sustainedPrefix, { keysOnly: true });
  return pairs.map(([k]) => sustainedInoOf(k));
}

/** Slices whose blocks await deletion, at most `limit`. */
export async function listGarbage(tx: KvTxn, limit: number): Promise<FreedSlice[]> {
  const pairs = await tx.scan(garbagePrefix, { limit });
  return pairs.map(([k, v]) => {
    const g = decodeGarbage(v);
    const id = garbageIdOf(k);
    return g.blobs.length ? { id, size: g.size, blobs: g.blobs } : { id, size: g.size };
  });
}

/** Forgets garbage entries whose blocks are deleted. */
export function clearGarbage(tx: KvTxn, ids: readonly SliceId[]): void {
  for (const id of ids) tx.delete(garbageKey(id));
}

/** Used bytes and inodes. */
export async function usage(tx: KvTxn): Promise<{ space: number; inodes: number }> {
  const [s, i] = await tx.getMany([keyUsedSpace, keyUsedInodes]);
  return { space: decodeNum(s), inodes: decodeNum(i) };
}
