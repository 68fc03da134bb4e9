/**
 * The POSIX permission rules of the filesystem, as Linux applies them: who may access an inode
 * ({@linkcode permits}) and who may change its mode, owner and times ({@linkcode applySetAttr}).
 * Pure functions of the caller's credentials and the inode's attributes, used by `Vfs`.
 *
 * @example
 * ```ts
 * import { permits } from "./permissions.ts";
 * import { type Attr, type Ctx, type Ino, S_IFREG } from "./types.ts";
 * import { equal } from "node:assert/strict";
 *
 * const t = { sec: 0, nsec: 0 };
 * const file: Attr = {
 *   ino: 2 as Ino, mode: S_IFREG | 0o640, nlink: 1, uid: 1000, gid: 100, rdev: 0, size: 0,
 *   atime: t, mtime: t, ctime: t, parent: 0 as Ino,
 * };
 * const member: Ctx = { uid: 2000, gid: 2000, pid: 1, umask: 0o022, groups: () => [100] };
 * equal(permits(member, file, 4), true); // read through the group bits
 * equal(permits(member, file, 2), false); // no group write bit
 * ```
 *
 * @module
 */

import { Errno, FsError } from "./errno.ts";
import { now } from "./meta/mod.ts";
import {
  type Attr,
  type Ctx,
  S_IFDIR,
  S_IFMT,
  S_ISGID,
  S_ISUID,
  type SetAttr,
  type Timespec,
} from "./types.ts";

const isDir = (a: Attr) => (a.mode & S_IFMT) === S_IFDIR;

function inGroup(ctx: Ctx, gid: number): boolean {
  return ctx.gid === gid || ctx.groups().includes(gid);
}

/** Whether `ctx` may access `a` for `mask` (R_OK 4, W_OK 2, X_OK 1). */
export function permits(ctx: Ctx, a: Attr, mask: number): boolean {
  if (mask === 0) return true;
  if (ctx.uid === 0) {
    // Root may do anything, but execute needs some x bit on non-directories.
    return !(mask & 1) || isDir(a) || (a.mode & 0o111) !== 0;
  }
  let bits: number;
  if (ctx.uid === a.uid) bits = (a.mode >> 6) & 7;
  else if (inGroup(ctx, a.gid)) bits = (a.mode >> 3) & 7;
  else bits = a.mode & 7;
  return (bits & mask) === mask;
}

function resolveTime(t: Timespec | "now", at: Timespec): Timespec {
  return t === "now" ? at : t;
}

/**
 * Applies a setattr to `a` (in place, and returns it) with the permission rules of Linux: only
 * the owner changes the mode (anyone may drop setuid/setgid), only root the owner, the owner the
 * group to one of its own; a chown of a non-directory clears setuid (and setgid if group-executable);
 * explicit times need the owner, "now" the owner or write access. Throws EPERM or EACCES.
 */
export function applySetAttr(ctx: Ctx, a: Attr, set: SetAttr): Attr {
  const t = now();
  const root = ctx.uid === 0;
  const owner = root || ctx.uid === a.uid;
  if (set.mode !== undefined) {
    // Anyone may drop setuid/setgid: the kernel does so for a writer that is not the owner.
    const onlyKillsPriv = (a.mode & 0o7777 & ~(S_ISUID | S_ISGID)) === (set.mode & 0o7777);
    if (!owner && !onlyKillsPriv) {
      throw new FsError(Errno.EPERM, "Only the owner may change the mode");
    }
    let mode = set.mode & 0o7777;
    if (!root && !inGroup(ctx, a.gid)) mode &= ~S_ISGID;
    a.mode = (a.mode & S_IFMT) | mode;
  }
  if (set.uid !== undefined || set.gid !== undefined) {
    const uid = set.uid ?? a.uid;
    const gid = set.gid ?? a.gid;
    if (!root) {
      if (uid !== a.uid) throw new FsError(Errno.EPERM, "Only root may change the owner");
      if (gid !== a.gid && (!owner || !inGroup(ctx, gid))) {
        throw new FsError(Errno.EPERM, "Not a member of the group");
      }
    }
    if ((uid !== a.uid || gid !== a.gid || !root) && !isDir(a) && set.mode === undefined) {
      a.mode &= ~S_ISUID;
      if (a.mode & 0o010) a.mode &= ~S_ISGID;
    }
    a.uid = uid;
    a.gid = gid;
  }
  for (const k of ["atime", "mtime"] as const) {
    const v = set[k];
    if (v === undefined) continue;
    if (v !== "now" && !owner) throw new FsError(Errno.EPERM, "Only the owner may set times");
    if (v === "now" && !owner && !permits(ctx, a, 2)) throw new FsError(Errno.EACCES);
    a[k] = resolveTime(v, t);
  }
  a.ctime = set.ctime ?? t;
  return a;
}
