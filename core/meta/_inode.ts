/**
 * Inode attributes and entries inside a transaction: the helpers every part of the metadata
 * (namespace, slices, reclamation) builds on.
 *
 * @module
 */

import type { KvTxn } from "../kv.ts";
import { Errno, FsError } from "../errno.ts";
import { type Attr, type Ino, type Name, S_IFDIR, S_IFMT, type Timespec } from "../types.ts";
import { decodeAttr, decodeEntry, decodeNum, encodeAttr, encodeNum } from "./_codec.ts";
import { attrKey, entryKey } from "./keys.ts";

/** The current time. */
export function now(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

/** Whether `a` is a directory. */
export const isDir = (a: Attr): boolean => (a.mode & S_IFMT) === S_IFDIR;

/** The space a file of `size` bytes is counted for (whole 4 KiB units). */
export function spaceOf(size: number): number {
  return Math.ceil(size / 4096) * 4096;
}

/** The attributes of `ino`; `ENOENT` if it does not exist. */
export async function getAttr(tx: KvTxn, ino: Ino): Promise<Attr> {
  const raw = await tx.get(attrKey(ino));
  if (!raw) throw new FsError(Errno.ENOENT, `No inode ${ino}`);
  return decodeAttr(ino, raw);
}

/** The attributes of directory `ino`; `ENOTDIR` if it is something else. */
export async function dirAttr(tx: KvTxn, ino: Ino): Promise<Attr> {
  const a = await getAttr(tx, ino);
  if (!isDir(a)) throw new FsError(Errno.ENOTDIR, `Inode ${ino} is not a directory`);
  return a;
}

/** Stores the attributes `a`. */
export function putAttr(tx: KvTxn, a: Attr): void {
  tx.set(attrKey(a.ino), encodeAttr(a));
}

/** Entry `name` of directory `parent`, if any. */
export async function getEntry(
  tx: KvTxn,
  parent: Ino,
  name: Name,
): Promise<{ type: number; ino: Ino } | undefined> {
  const raw = await tx.get(entryKey(parent, name));
  return raw ? decodeEntry(raw) : undefined;
}

/** Adds `delta` to the counter at `key`. */
export async function bump(tx: KvTxn, key: string, delta: number): Promise<void> {
  if (delta === 0) return;
  tx.set(key, encodeNum(decodeNum(await tx.get(key)) + delta));
}

/**
 * Attribute changes a mount holds back until the file's pending writes commit (a `chmod`, `chown`
 * or `utimensat` of a file being written, as `tar -x` sends before each close): the resulting
 * values, applied over the committed attributes after the writes' own size and times.
 */
export interface AttrChanges {
  /** Permission bits (the type bits are the file's). */
  mode?: number;
  /** Owner. */
  uid?: number;
  /** Group. */
  gid?: number;
  /** Access time. */
  atime?: Timespec;
  /** Modification time (set explicitly; a later write's time wins). */
  mtime?: Timespec;
  /** Change time. */
  ctime?: Timespec;
}

/** Applies `c` to `a` (in place) and returns it. */
export function applyAttrChanges(a: Attr, c: AttrChanges): Attr {
  if (c.mode !== undefined) a.mode = (a.mode & S_IFMT) | (c.mode & 0o7777);
  if (c.uid !== undefined) a.uid = c.uid;
  if (c.gid !== undefined) a.gid = c.gid;
  if (c.atime !== undefined) a.atime = c.atime;
  if (c.mtime !== undefined) a.mtime = c.mtime;
  if (c.ctime !== undefined) a.ctime = c.ctime;
  return a;
}
