/**
 * Whole trees, as functions over a {@linkcode KvTxn}: the steps of a clone (a metadata-only copy
 * that shares slices) and of removing a snapshot, for `core/clone.ts` to drive in batches.
 *
 * A tree being built or torn down is **detached**: no directory entry leads to it, and a
 * `T<root>` record ({@linkcode DetachedTree}) names its root and the session doing the work. A
 * clone writes its nodes into a detached tree in as many transactions as it needs, then
 * {@linkcode attach}es the root under its name in one transaction (which fails with `EEXIST` if the
 * name was taken meanwhile). A removal first {@linkcode detach}es the root in one transaction,
 * then empties it. If the session dies half-way, the record stays: the mount that cleans up the
 * dead session (or `slayerfs gc`) tears the tree down with {@linkcode removeEntries} and
 * {@linkcode finishRemoval}, dropping the slice references it took.
 *
 * Snapshot inodes are numbered from {@linkcode SNAPSHOT_INO_BASE} (their own counter), so that a
 * mount can tell that an inode is read-only from its number alone.
 *
 * @module
 */

import type { KvTxn } from "../kv.ts";
import { Errno, FsError } from "../errno.ts";
import { type Attr, type Ino, type Name, S_IFMT, S_IFREG } from "../types.ts";
import {
  decodeAttr,
  decodeEntry,
  decodeJson,
  decodeNum,
  encodeEntry,
  encodeJson,
  encodeNum,
} from "./_codec.ts";
import {
  attrKey as attrKeyOf,
  chunkPrefix,
  detachedKey,
  entryKey,
  entryPrefix,
  keyInodeCounter,
  keySnapshotInoCounter,
  keyUsedInodes,
  keyUsedSpace,
  symlinkKey,
  xattrPrefix,
} from "./keys.ts";
import { bump, dirAttr, getAttr, getEntry, isDir, now, putAttr, spaceOf } from "./_inode.ts";
import { decodeRecords, type SliceRecord } from "../slice.ts";
import { addRefs, type FreedSlice } from "./slices.ts";
import { dropInode, sustain } from "./reclaim.ts";
import { openedAnywhere } from "./sessions.ts";

/** Snapshot inodes are numbered from here on (below 2^53, so they stay exact numbers). */
export const SNAPSHOT_INO_BASE = 2 ** 52;

/** Whether `ino` belongs to a snapshot (read-only). */
export const isSnapshotIno = (ino: number): boolean => ino >= SNAPSHOT_INO_BASE;

/** The record of a detached tree (`T<root>`). */
export interface DetachedTree {
  /** What is being done: a clone being built, or a tree being removed. */
  what: "clone" | "remove";
  /** The session of the mount doing it (0: none, e.g. the `gc` command). */
  sid: number;
  /** When it started (ms since the epoch). */
  started: number;
  /** Where the tree goes or came from, for messages. */
  path?: string;
}

/** Takes `n` new inode numbers (snapshot ones with `snapshot`); returns the first. */
export async function allocInos(tx: KvTxn, n: number, snapshot: boolean): Promise<number> {
  const key = snapshot ? keySnapshotInoCounter : keyInodeCounter;
  let start = decodeNum(await tx.get(key));
  if (snapshot && start < SNAPSHOT_INO_BASE) start = SNAPSHOT_INO_BASE;
  tx.set(key, encodeNum(start + n));
  return start;
}

/** One step of a clone: a node to copy, or another name of a node already copied. */
export type CopyItem =
  | {
    /** Copy inode `src` as `ino`. */
    kind: "node";
    src: Ino;
    ino: Ino;
    /** The new directory it goes in (for the root: where it will be attached). */
    parent: Ino;
    /** Its name there; none for the root (attached at the end). */
    name?: Name;
    /** Its link count in the new tree (2 + subdirectories for a directory). */
    nlink: number;
  }
  | {
    /** Another name of `ino` (a hard link inside the tree). */
    kind: "link";
    ino: Ino;
    type: number;
    parent: Ino;
    name: Name;
  };

/**
 * Copies nodes into a detached tree: attributes (with the new number, link count and parent),
 * symlink target, extended attributes and chunk lists, one more reference per slice record, and
 * their entries. With `tree`, first records the detached tree rooted at the first item.
 * `ENOENT` if a source inode is gone (the source changed during the clone).
 */
export async function copyNodes(
  tx: KvTxn,
  items: readonly CopyItem[],
  tree?: DetachedTree,
): Promise<void> {
  if (tree && items[0]) tx.set(detachedKey(items[0].ino), encodeJson(tree));
  for (const it of items) {
    if (it.kind === "link") {
      tx.set(entryKey(it.parent, it.name), encodeEntry(it.type, it.ino));
      continue;
    }
    const a = await getAttr(tx, it.src).catch(() => {
      throw new FsError(Errno.ENOENT, `Inode ${it.src} went away during the clone`);
    });
    const b: Attr = { ...a, ino: it.ino, nlink: it.nlink, parent: isDir(a) ? it.parent : 0 as Ino };
    putAttr(tx, b);
    const target = await tx.get(symlinkKey(it.src));
    if (target) tx.set(symlinkKey(it.ino), target);
    const xp = xattrPrefix(it.src);
    for (const [k, v] of await tx.scan(xp)) tx.set(xattrPrefix(it.ino) + k.slice(xp.length), v);
    if ((a.mode & S_IFMT) === S_IFREG) {
      const cp = chunkPrefix(it.src);
      const recs: SliceRecord[] = [];
      for (const [k, v] of await tx.scan(cp)) {
        tx.set(chunkPrefix(it.ino) + k.slice(cp.length), v);
        recs.push(...decodeRecords(v));
      }
      await addRefs(tx, recs);
      await bump(tx, keyUsedSpace, spaceOf(a.size));
    }
    await bump(tx, keyUsedInodes, 1);
    if (it.name !== undefined) {
      tx.set(entryKey(it.parent, it.name), encodeEntry(a.mode & S_IFMT, it.ino));
    }
  }
}

/**
 * Gives the detached tree at `root` the name `name` in `parent` and forgets its record: the
 * clone appears whole. `EEXIST` if the name is taken, `ENOENT` if the parent was removed or the
 * tree was reclaimed meanwhile (its session taken for dead).
 */
export async function attach(tx: KvTxn, root: Ino, parent: Ino, name: Name): Promise<Attr> {
  if (!await tx.get(detachedKey(root))) {
    throw new FsError(Errno.ENOENT, "The clone was reclaimed before it finished");
  }
  const p = await dirAttr(tx, parent);
  if (p.nlink === 0) throw new FsError(Errno.ENOENT, "Directory was removed");
  if (await tx.get(entryKey(parent, name))) throw new FsError(Errno.EEXIST);
  const a = await getAttr(tx, root);
  tx.set(entryKey(parent, name), encodeEntry(a.mode & S_IFMT, root));
  const t = now();
  // Like a rename into place: the root's change time is the clone's (all else keeps its times).
  a.ctime = t;
  if (isDir(a)) {
    p.nlink++;
    a.parent = parent;
  }
  putAttr(tx, a);
  p.mtime = p.ctime = t;
  putAttr(tx, p);
  tx.delete(detachedKey(root));
  return a;
}

/**
 * Unlinks entry `name` of `parent` (a whole tree) and records it as detached with `tree`, for
 * {@linkcode removeEntries} to empty. `ENOENT` if absent. Returns the tree's root.
 */
export async function detach(
  tx: KvTxn,
  parent: Ino,
  name: Name,
  tree: DetachedTree,
): Promise<Ino> {
  const p = await dirAttr(tx, parent);
  const e = await getEntry(tx, parent, name);
  if (!e) throw new FsError(Errno.ENOENT, `No "${name}"`);
  const a = await getAttr(tx, e.ino);
  tx.delete(entryKey(parent, name));
  if (isDir(a)) p.nlink--;
  p.mtime = p.ctime = now();
  putAttr(tx, p);
  tx.set(detachedKey(e.ino), encodeJson(tree));
  return e.ino;
}

/** The record of the detached tree at `root`, if any. */
export async function detachedTree(tx: KvTxn, root: Ino): Promise<DetachedTree | undefined> {
  const raw = await tx.get(detachedKey(root));
  return raw ? decodeJson<DetachedTree>(raw) : undefined;
}

/** Drops a non-directory of a detached tree (kept until its last close if it is open). */
async function dropNode(tx: KvTxn, a: Attr, freed: FreedSlice[]): Promise<void> {
  if (a.nlink === 0) return; // already unlinked, kept open
  if (await openedAnywhere(tx, a.ino)) {
    a.nlink = 0;
    putAttr(tx, a);
    sustain(tx, a.ino);
  } else {
    await dropInode(tx, a, freed);
  }
}

/**
 * Removes up to `limit` entries of directory `dir` of a detached tree with their non-directory
 * inodes (a hard-linked one goes at its first name: every name of it is inside the tree). The
 * subdirectories must have been emptied and dropped first (deepest first). Returns how many
 * entries it removed (fewer than `limit`: the directory is empty).
 */
export async function removeEntries(
  tx: KvTxn,
  dir: Ino,
  limit: number,
  freed: FreedSlice[],
): Promise<number> {
  const pairs = await tx.scan(entryPrefix(dir), { limit });
  for (const [k, v] of pairs) {
    const e = decodeEntry(v);
    const raw = await tx.get(attrKeyOf(e.ino));
    if (raw) {
      const a = decodeAttr(e.ino, raw);
      if (isDir(a)) throw new FsError(Errno.ENOTEMPTY, `Directory ${e.ino} was not emptied first`);
      await dropNode(tx, a, freed);
    }
    tx.delete(k);
  }
  return pairs.length;
}

/** Drops directory `dir` of a detached tree, once empty (nothing if it is gone). */
export async function dropDir(tx: KvTxn, dir: Ino): Promise<void> {
  const raw = await tx.get(attrKeyOf(dir));
  if (raw) await dropInode(tx, decodeAttr(dir, raw), []);
}

/** Ends the removal of the detached tree at `root`: drops the root and forgets the record. */
export async function finishRemoval(tx: KvTxn, root: Ino, freed: FreedSlice[]): Promise<void> {
  const raw = await tx.get(attrKeyOf(root));
  if (raw) {
    const a = decodeAttr(root, raw);
    if (isDir(a)) await dropInode(tx, a, freed);
    else await dropNode(tx, a, freed);
  }
  tx.delete(detachedKey(root));
}
