/**
 * The namespace, as functions over a {@linkcode KvTxn}: the volume format and root, inodes,
 * directory entries, rename, hard links and extended attributes.
 *
 * Each function is the body of one transaction of `Meta`; the checks that need no reads
 * (`checkName`, `rmdirError`, `renameError`, `xattrError`) run before the transaction starts.
 * An inode whose last link goes is removed at once (`dropInode` of `reclaim.ts`), or kept while
 * open until its last close (`sustain`).
 *
 * @module
 */

import type { KvTxn } from "../kv.ts";
import { Errno, FsError } from "../errno.ts";
import {
  type Attr,
  bytesToName,
  type Ctx,
  type Ino,
  type Name,
  nameToBytes,
  ROOT_INO,
  S_IFCHR,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  S_ISGID,
  type Timespec,
  XATTR_CREATE,
  XATTR_REPLACE,
} from "../types.ts";
import type { VolumeFormat } from "../format.ts";
import {
  decodeAttr,
  decodeEntry,
  decodeJson,
  encodeEntry,
  encodeJson,
  encodeNum,
} from "./_codec.ts";
import {
  attrKey,
  entryKey,
  entryPrefix,
  keyFormat,
  keyInodeCounter,
  keySliceCounter,
  keyUsedInodes,
  symlinkKey,
  xattrKey,
  xattrPrefix,
} from "./keys.ts";
import { bump, dirAttr, getAttr, getEntry, isDir, now, putAttr } from "./_inode.ts";
import type { FreedSlice, Freeing, WithAttr } from "./slices.ts";
import { dropInode, sustain } from "./reclaim.ts";
import { charge, moveCharge, quotaChain, sameQuotas, usageOf } from "./quotas.ts";
import { openedAnywhere, recordOpen } from "./sessions.ts";

/** A directory listing entry. */
export interface MetaEntry {
  /** The entry's name. */
  name: Name;
  /** The inode it links to. */
  ino: Ino;
  /** The inode's type (`S_IF*` bits). */
  type: number;
}

const NAME_MAX = 255;
const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65536;
/** The settings a volume keeps for life: formatting again must not change them. */
const FIXED = [
  "name",
  "blockSize",
  "chunkSize",
  "compression",
  "storage",
  "dedup",
  "inlineMax",
] as const;

/** Throws unless `name` can be a new entry's name. */
export function checkName(name: Name): void {
  if (name.length === 0) throw new FsError(Errno.ENOENT, "Empty name");
  if (name.length > NAME_MAX) throw new FsError(Errno.ENAMETOOLONG, `Name too long`);
  if (name === "." || name === "..") throw new FsError(Errno.EEXIST, `Name "${name}" is reserved`);
}

/** The error `rmdir` of `name` gives without looking, if any. */
export function rmdirError(name: Name): FsError | undefined {
  if (name === ".") return new FsError(Errno.EINVAL);
  if (name === "..") return new FsError(Errno.ENOTEMPTY);
  return undefined;
}

/**
 * The error `rename` with `flags` gives without looking, if any: `RENAME_EXCHANGE` (2) goes with
 * neither `RENAME_NOREPLACE` (1) nor `RENAME_WHITEOUT` (4), as in Linux.
 */
export function renameError(flags: number): FsError | undefined {
  return flags & ~7 || (flags & 2 && flags !== 2) ? new FsError(Errno.EINVAL) : undefined;
}

/** The error setting xattr `name` to `value` gives without looking, if any. */
export function xattrError(name: Name, value: Uint8Array): FsError | undefined {
  if (name.length === 0 || name.length > XATTR_NAME_MAX) {
    return new FsError(name.length ? Errno.ERANGE : Errno.EINVAL);
  }
  if (value.byteLength > XATTR_SIZE_MAX) return new FsError(Errno.E2BIG);
  return undefined;
}

/** The format of the volume, or `undefined` if the engine holds none. */
export async function readFormat(tx: KvTxn): Promise<VolumeFormat | undefined> {
  const raw = await tx.get(keyFormat);
  return raw ? decodeJson<VolumeFormat>(raw) : undefined;
}

/**
 * Stores `format` and creates the root directory; on a formatted volume, checks that the fixed
 * settings match and returns the stored format.
 */
export async function format(tx: KvTxn, format: VolumeFormat): Promise<VolumeFormat> {
  const raw = await tx.get(keyFormat);
  if (raw) {
    const old = decodeJson<VolumeFormat>(raw);
    for (const k of FIXED) {
      if ((old[k] ?? false) !== (format[k] ?? false)) {
        throw new FsError(
          Errno.EEXIST,
          `Volume "${old.name}" is already formatted with ${k} ${JSON.stringify(old[k])}, ` +
            `not ${JSON.stringify(format[k])}`,
        );
      }
    }
    return old;
  }
  tx.set(keyFormat, encodeJson(format));
  const t = now();
  const root: Attr = {
    ino: ROOT_INO,
    mode: S_IFDIR | 0o777,
    nlink: 2,
    uid: 0,
    gid: 0,
    rdev: 0,
    size: 4096,
    atime: t,
    mtime: t,
    ctime: t,
    parent: ROOT_INO,
  };
  putAttr(tx, root);
  tx.set(keyInodeCounter, encodeNum(2));
  tx.set(keySliceCounter, encodeNum(1));
  tx.set(keyUsedInodes, encodeNum(1));
  return format;
}

/** Attributes of many inodes (missing ones are `undefined`). */
export async function getattrs(tx: KvTxn, inos: readonly Ino[]): Promise<(Attr | undefined)[]> {
  const raws = await tx.getMany(inos.map(attrKey));
  return raws.map((r, i) => r ? decodeAttr(inos[i]!, r) : undefined);
}

/** Looks `name` up in directory `parent` (`.` and `..` included). */
export async function lookup(tx: KvTxn, parent: Ino, name: Name): Promise<Attr> {
  // Like ext4 and tmpfs: a name no entry can have is ENAMETOOLONG, not ENOENT (so unlink,
  // chmod, ... of such a path fail as pjdfstest expects).
  if (name.length > NAME_MAX) throw new FsError(Errno.ENAMETOOLONG, "Name too long");
  if (name === ".") return await dirAttr(tx, parent);
  if (name === "..") return await getAttr(tx, (await dirAttr(tx, parent)).parent);
  const e = await getEntry(tx, parent, name);
  if (!e) {
    await dirAttr(tx, parent);
    throw new FsError(Errno.ENOENT);
  }
  return await getAttr(tx, e.ino);
}

/** Changes the attributes of `ino` with `change`, which returns the new attributes (or throws). */
export async function update(tx: KvTxn, ino: Ino, change: (a: Attr) => Attr): Promise<Attr> {
  const a = change(await getAttr(tx, ino));
  putAttr(tx, a);
  return a;
}

/** A node for {@linkcode mknod} to create. */
export interface NewNode {
  /** Its inode number, newly allocated. */
  ino: Ino;
  /** Who creates it (owner, group). */
  ctx: Ctx;
  /** The directory it goes in. */
  parent: Ino;
  /** Its name there. */
  name: Name;
  /** Type and permission bits. */
  mode: number;
  /** The device number of a device node. */
  rdev: number;
  /** A symlink's target. */
  target?: Name | undefined;
  /** The session that opens it as it is created (`sessions.ts`), if any. */
  openedBy?: number | undefined;
}

/**
 * Creates a node: a file, directory, device, FIFO, socket or (with `target`) a symlink (after
 * {@linkcode checkName}).
 */
export async function mknod(tx: KvTxn, node: NewNode): Promise<Attr> {
  const { ino, ctx, parent, name, mode, rdev, target } = node;
  const p = await dirAttr(tx, parent);
  if (p.nlink === 0) throw new FsError(Errno.ENOENT, "Directory was removed");
  if (await tx.get(entryKey(parent, name))) throw new FsError(Errno.EEXIST);
  await charge(tx, parent, 0, 1, true);
  const type = mode & S_IFMT;
  const t = now();
  let perm = mode & 0o7777;
  let gid = ctx.gid;
  if (p.mode & S_ISGID) {
    gid = p.gid;
    if (type === S_IFDIR) perm |= S_ISGID;
  }
  const a: Attr = {
    ino,
    mode: type | perm,
    nlink: type === S_IFDIR ? 2 : 1,
    uid: ctx.uid,
    gid,
    rdev,
    size: type === S_IFDIR ? 4096 : target !== undefined ? target.length : 0,
    atime: t,
    mtime: t,
    ctime: t,
    parent, // the directory holding it, for quotas (`quotas.ts`)
  };
  // A new file holds no data: counted at 0, so its first commit need not scan for its chunks.
  if (type === S_IFREG) a.allocated = 0;
  putAttr(tx, a);
  if (target !== undefined) {
    tx.set(symlinkKey(ino), nameToBytes(target));
  }
  tx.set(entryKey(parent, name), encodeEntry(type, ino));
  if (node.openedBy !== undefined) recordOpen(tx, ino, node.openedBy);
  p.mtime = p.ctime = t;
  if (type === S_IFDIR) p.nlink++;
  putAttr(tx, p);
  await bump(tx, keyUsedInodes, 1);
  return a;
}

/** A symlink's target. */
export async function readlink(tx: KvTxn, ino: Ino): Promise<Name> {
  const raw = await tx.get(symlinkKey(ino));
  if (!raw) {
    await getAttr(tx, ino);
    throw new FsError(Errno.EINVAL, `Inode ${ino} is not a symlink`);
  }
  return bytesToName(raw);
}

/**
 * Drops one link of `a`: the inode goes with its last link, unless it is open (`isOpen`, or in any
 * session).
 */
async function unlinkInode(
  tx: KvTxn,
  a: Attr,
  from: Ino,
  isOpen: (ino: Ino) => boolean,
  freed: FreedSlice[],
  t: Timespec,
): Promise<void> {
  a.nlink--;
  a.ctime = t;
  if (a.nlink > 0) {
    // Another link holds it, under the same quotas (`link`): the nearest quota stands for it.
    if (a.parent === from) a.parent = (await quotaChain(tx, from))[0] ?? 0 as Ino;
    putAttr(tx, a);
  } else if (isOpen(a.ino) || await openedAnywhere(tx, a.ino)) {
    // Out of every quota now; the volume counts it until its last close.
    const u = usageOf(a);
    await charge(tx, a.parent, -u.space, -u.inodes, false);
    a.parent = 0 as Ino;
    putAttr(tx, a);
    sustain(tx, a.ino);
  } else {
    await dropInode(tx, a, freed);
  }
}

/** Removes a non-directory entry. */
export async function unlink(
  tx: KvTxn,
  parent: Ino,
  name: Name,
  isOpen: (ino: Ino) => boolean,
): Promise<WithAttr> {
  const freed: FreedSlice[] = [];
  const p = await dirAttr(tx, parent);
  const e = await getEntry(tx, parent, name);
  if (!e) throw new FsError(Errno.ENOENT);
  const a = await getAttr(tx, e.ino);
  if (isDir(a)) throw new FsError(Errno.EISDIR, `"${name}" is a directory`);
  const t = now();
  tx.delete(entryKey(parent, name));
  await unlinkInode(tx, a, parent, isOpen, freed, t);
  p.mtime = p.ctime = t;
  putAttr(tx, p);
  return { attr: a, freed };
}

/** Removes an empty directory (after {@linkcode rmdirError}). */
export async function rmdir(tx: KvTxn, parent: Ino, name: Name): Promise<Attr> {
  const p = await dirAttr(tx, parent);
  const e = await getEntry(tx, parent, name);
  if (!e) throw new FsError(Errno.ENOENT);
  const a = await getAttr(tx, e.ino);
  if (!isDir(a)) throw new FsError(Errno.ENOTDIR, `"${name}" is not a directory`);
  if ((await tx.scan(entryPrefix(a.ino), { limit: 1, keysOnly: true })).length) {
    throw new FsError(Errno.ENOTEMPTY);
  }
  const t = now();
  tx.delete(entryKey(parent, name));
  await dropInode(tx, a, []);
  p.nlink--;
  p.mtime = p.ctime = t;
  putAttr(tx, p);
  return a;
}

/** Whether `ino` is `ancestor` or lies below it. */
async function isUnder(tx: KvTxn, ino: Ino, ancestor: Ino): Promise<boolean> {
  let cur = ino;
  for (let depth = 0; depth < 100_000; depth++) {
    if (cur === ancestor) return true;
    if (cur === ROOT_INO) return false;
    cur = (await getAttr(tx, cur)).parent;
  }
  throw new FsError(Errno.ELOOP, "Directory tree too deep");
}

/**
 * Moves the quota usage of `a`, renamed from directory `from` to `to`: a directory or a file with
 * other links may not change quotas (`EXDEV`: `mv` copies instead); a file's usage moves, or
 * `EDQUOT`.
 */
async function moveQuotas(tx: KvTxn, a: Attr, from: Ino, to: Ino): Promise<void> {
  if (isDir(a) || a.nlink > 1) {
    if (!await sameQuotas(tx, from, to)) {
      throw new FsError(Errno.EXDEV, "Cannot move a directory or hard link between quotas");
    }
    if (!isDir(a) && a.parent === from) a.parent = to;
    return;
  }
  await moveCharge(tx, a, a.parent === 0 ? 0 as Ino : from, to);
  a.parent = to;
}

/** What {@linkcode rename} is asked to do. */
export interface Move {
  /** The directory the entry is in. */
  parent: Ino;
  /** The entry's name. */
  name: Name;
  /** The directory it goes to. */
  newParent: Ino;
  /** Its name there. */
  newName: Name;
  /** `RENAME_NOREPLACE` (1), `RENAME_EXCHANGE` (2), `RENAME_WHITEOUT` (4, with 1 or alone), or 0. */
  flags: number;
  /** With `RENAME_WHITEOUT`: the new whiteout's inode number and owner. */
  whiteout?: { ino: Ino; uid: number; gid: number };
}

/**
 * Renames an entry, replacing or exchanging the target as `flags` say (after
 * {@linkcode renameError}). `isOpen` tells whether a replaced inode must be kept while open.
 */
export async function rename(
  tx: KvTxn,
  { parent, name, newParent, newName, flags, whiteout }: Move,
  isOpen: (ino: Ino) => boolean,
): Promise<Freeing & { replaced?: Ino }> {
  const freed: FreedSlice[] = [];
  if (name === "." || name === ".." || newName === "." || newName === "..") {
    throw new FsError(Errno.EBUSY, "Cannot rename . or ..");
  }
  if (newName.length > NAME_MAX) throw new FsError(Errno.ENAMETOOLONG);
  const sp = await dirAttr(tx, parent);
  const dp = parent === newParent ? sp : await dirAttr(tx, newParent);
  const se = await getEntry(tx, parent, name);
  if (!se) throw new FsError(Errno.ENOENT);
  const de = await getEntry(tx, newParent, newName);
  const exchange = (flags & 2) !== 0;
  if (flags & 1 && de) throw new FsError(Errno.EEXIST);
  if (exchange && !de) throw new FsError(Errno.ENOENT);
  if (parent === newParent && name === newName) return { freed };
  const src = await getAttr(tx, se.ino);
  const srcDir = isDir(src);
  if (srcDir && newParent !== parent && await isUnder(tx, newParent, src.ino)) {
    throw new FsError(Errno.EINVAL, "Cannot move a directory into itself");
  }
  const t = now();
  let dst: Attr | undefined;
  if (de) {
    dst = de.ino === src.ino ? src : await getAttr(tx, de.ino);
    const dstDir = isDir(dst);
    if (exchange) {
      if (dstDir && newParent !== parent && await isUnder(tx, parent, dst.ino)) {
        throw new FsError(Errno.EINVAL, "Cannot move a directory into itself");
      }
    } else {
      if (de.ino === src.ino) return { freed }; // two links to one inode: nothing to do
      if (srcDir && !dstDir) throw new FsError(Errno.ENOTDIR);
      if (!srcDir && dstDir) throw new FsError(Errno.EISDIR);
      if (dstDir) {
        if ((await tx.scan(entryPrefix(dst.ino), { limit: 1, keysOnly: true })).length) {
          throw new FsError(Errno.ENOTEMPTY);
        }
      }
    }
  }
  if (parent !== newParent) {
    await moveQuotas(tx, src, parent, newParent);
    if (exchange && dst && dst !== src) await moveQuotas(tx, dst, newParent, parent);
  }
  if (whiteout) await charge(tx, parent, 0, 1, true);
  let replaced: Ino | undefined;
  // Write the new entries.
  tx.set(entryKey(newParent, newName), encodeEntry(src.mode & S_IFMT, src.ino));
  if (exchange && dst) {
    tx.set(entryKey(parent, name), encodeEntry(dst.mode & S_IFMT, dst.ino));
  } else if (whiteout) {
    // overlayfs's whiteout: a character device 0/0 takes the old name in the same transaction.
    const wo: Attr = {
      ino: whiteout.ino,
      mode: S_IFCHR,
      nlink: 1,
      uid: whiteout.uid,
      gid: whiteout.gid,
      rdev: 0,
      size: 0,
      atime: t,
      mtime: t,
      ctime: t,
      parent,
    };
    putAttr(tx, wo);
    tx.set(entryKey(parent, name), encodeEntry(S_IFCHR, wo.ino));
    await bump(tx, keyUsedInodes, 1);
  } else {
    tx.delete(entryKey(parent, name));
  }
  src.ctime = t;
  if (srcDir && parent !== newParent) {
    src.parent = newParent;
    sp.nlink--;
    dp.nlink++;
  }
  if (dst && dst !== src) {
    dst.ctime = t;
    if (exchange) {
      if (isDir(dst) && parent !== newParent) {
        dst.parent = parent;
        dp.nlink--;
        sp.nlink++;
      }
      putAttr(tx, dst);
    } else if (isDir(dst)) {
      dp.nlink--;
      await dropInode(tx, dst, freed);
    } else {
      await unlinkInode(tx, dst, newParent, isOpen, freed, t);
      replaced = dst.ino;
    }
  }
  putAttr(tx, src);
  sp.mtime = sp.ctime = t;
  putAttr(tx, sp);
  if (dp !== sp) {
    dp.mtime = dp.ctime = t;
    putAttr(tx, dp);
  }
  return replaced === undefined ? { freed } : { freed, replaced };
}

/** Adds a hard link to `ino` as `newName` in `newParent` (after {@linkcode checkName}). */
export async function link(tx: KvTxn, ino: Ino, newParent: Ino, newName: Name): Promise<Attr> {
  const p = await dirAttr(tx, newParent);
  const a = await getAttr(tx, ino);
  if (isDir(a)) throw new FsError(Errno.EPERM, "Cannot hard-link a directory");
  if (a.nlink === 0) throw new FsError(Errno.ENOENT, "Inode was removed");
  if (a.nlink >= 0xffff_fff0) throw new FsError(Errno.EMLINK);
  if (await tx.get(entryKey(newParent, newName))) throw new FsError(Errno.EEXIST);
  if (!await sameQuotas(tx, a.parent, newParent)) {
    throw new FsError(Errno.EXDEV, "Cannot hard-link across quotas");
  }
  const t = now();
  tx.set(entryKey(newParent, newName), encodeEntry(a.mode & S_IFMT, ino));
  a.nlink++;
  a.ctime = t;
  putAttr(tx, a);
  p.mtime = p.ctime = t;
  putAttr(tx, p);
  return a;
}

/** All entries of a directory (without `.` and `..`). */
export async function listDir(tx: KvTxn, ino: Ino): Promise<MetaEntry[]> {
  await dirAttr(tx, ino);
  const prefix = entryPrefix(ino);
  const pairs = await tx.scan(prefix);
  return pairs.map(([k, v]) => {
    const e = decodeEntry(v);
    return { name: k.slice(prefix.length), ino: e.ino, type: e.type };
  });
}

/** Sets an extended attribute (after {@linkcode xattrError}). */
export async function setxattr(
  tx: KvTxn,
  ino: Ino,
  name: Name,
  value: Uint8Array,
  flags: number,
): Promise<void> {
  const a = await getAttr(tx, ino);
  const key = xattrKey(ino, name);
  const old = await tx.get(key);
  if (flags & XATTR_CREATE && old) throw new FsError(Errno.EEXIST);
  if (flags & XATTR_REPLACE && !old) throw new FsError(Errno.ENODATA);
  tx.set(key, value.slice());
  a.ctime = now();
  putAttr(tx, a);
}

/** Reads an extended attribute; `ENODATA` if absent. */
export async function getxattr(tx: KvTxn, ino: Ino, name: Name): Promise<Uint8Array> {
  const v = await tx.get(xattrKey(ino, name));
  if (v) return v;
  await getAttr(tx, ino);
  throw new FsError(Errno.ENODATA);
}

/** Names of the extended attributes of `ino`. */
export async function listxattr(tx: KvTxn, ino: Ino): Promise<Name[]> {
  await getAttr(tx, ino);
  const prefix = xattrPrefix(ino);
  return (await tx.scan(prefix, { keysOnly: true })).map(([k]) => k.slice(prefix.length));
}

/** Removes an extended attribute; `ENODATA` if absent. */
export async function removexattr(tx: KvTxn, ino: Ino, name: Name): Promise<void> {
  const a = await getAttr(tx, ino);
  const key = xattrKey(ino, name);
  if (!await tx.get(key)) throw new FsError(Errno.ENODATA);
  tx.delete(key);
  a.ctime = now();
  putAttr(tx, a);
}
