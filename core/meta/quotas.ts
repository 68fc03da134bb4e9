/**
 * Directory quotas, as functions over a {@linkcode KvTxn}: the limits and usage of quota
 * directories (`Q<ino>L`, `Q<ino>U` in `keys.ts`) and the charges every change makes to them.
 *
 * A quota counts what lies below its directory (not the directory itself): the inodes of every
 * kind, and the space of regular files (their lengths rounded up to 4 KiB, as the volume's `Nspace`
 * counter does). A change is charged to every quota on the path from the directory that holds the
 * inode up to the root, in the transaction that makes the change, so usage stays exact however
 * many mounts write. Regular files and symlinks record the directory that holds them in `parent`
 * (directories always did); a hard link elsewhere is refused with `EXDEV` when the two places
 * have different quotas above them, so one `parent` decides. Files written before quotas existed
 * (`parent` 0) are adopted by the walk of `quota set` and `quota check --repair`.
 *
 * Creates, truncates that grow, fallocate and copy_file_range fail with `EDQUOT` past a limit
 * (`charge` with `enforce`); commits of written data never fail on a quota (the writes were
 * acknowledged): `Vfs.write` checks the limit before it takes the data.
 *
 * @module
 */

import type { KvTxn } from "../kv.ts";
import { Errno, FsError } from "../errno.ts";
import { type Attr, type Ino, ROOT_INO, S_IFDIR, S_IFMT, S_IFREG } from "../types.ts";
import { decodeAttr, decodeEntry, decodeJson, encodeJson } from "./_codec.ts";
import {
  attrKey,
  entryPrefix,
  quotaInoOf,
  quotaLimitKey,
  quotaPrefix,
  quotaUsageKey,
} from "./keys.ts";
import { putAttr, spaceOf } from "./_inode.ts";

/** The limits of a quota; `null` is no limit. */
export interface QuotaLimits {
  /** Bytes. */
  capacity: number | null;
  /** Inodes. */
  inodes: number | null;
}

/** A quota with its usage. */
export interface QuotaInfo extends QuotaLimits {
  /** The quota's directory. */
  ino: Ino;
  /** Bytes used below it (file lengths in whole 4 KiB units). */
  usedSpace: number;
  /** Inodes below it. */
  usedInodes: number;
}

/** Bytes and inodes used. */
export interface QuotaUsage {
  /** Bytes (file lengths in whole 4 KiB units). */
  space: number;
  /** Inodes. */
  inodes: number;
}

/** What `checkQuota` found: the usage kept and the usage a walk of the tree counted. */
export interface QuotaCheck {
  /** The quota as kept. */
  kept: QuotaInfo;
  /** What the walk counted. */
  walked: QuotaUsage;
}

/**
 * Transactions that found no quota: a transaction that makes many files (an import) asks once,
 * not once per file. `setQuota` forgets its transaction's answer.
 */
const noQuotaIn = new WeakSet<KvTxn>();

/** Whether the volume has any quota. */
export async function anyQuota(tx: KvTxn): Promise<boolean> {
  if (noQuotaIn.has(tx)) return false;
  const any = (await tx.scan(quotaPrefix, { limit: 1, keysOnly: true })).length > 0;
  if (!any) noQuotaIn.add(tx);
  return any;
}

/** The quota directories on the path from `dir` up to the root, nearest first. */
export async function quotaChain(tx: KvTxn, dir: Ino): Promise<Ino[]> {
  if (dir === 0 || !await anyQuota(tx)) return [];
  const out: Ino[] = [];
  let cur = dir;
  for (let depth = 0; depth < 100_000; depth++) {
    const [lim, raw] = await tx.getMany([quotaLimitKey(cur), attrKey(cur)]);
    if (lim) out.push(cur);
    if (cur === ROOT_INO || !raw) break;
    const next = decodeAttr(cur, raw).parent;
    if (next === 0 || next === cur) break;
    cur = next;
  }
  return out;
}

async function readQuota(tx: KvTxn, ino: Ino): Promise<QuotaInfo | undefined> {
  const [lim, use] = await tx.getMany([quotaLimitKey(ino), quotaUsageKey(ino)]);
  if (!lim) return undefined;
  const l = decodeJson<QuotaLimits>(lim);
  const u = use ? decodeJson<QuotaUsage>(use) : { space: 0, inodes: 0 };
  return { ino, capacity: l.capacity, inodes: l.inodes, usedSpace: u.space, usedInodes: u.inodes };
}

function putUsage(tx: KvTxn, ino: Ino, u: QuotaUsage): void {
  tx.set(quotaUsageKey(ino), encodeJson(u));
}

/** The quotas above `dir` (its own included), nearest first. */
export async function quotasOf(tx: KvTxn, dir: Ino): Promise<QuotaInfo[]> {
  const out: QuotaInfo[] = [];
  for (const q of await quotaChain(tx, dir)) {
    const info = await readQuota(tx, q);
    if (info) out.push(info);
  }
  return out;
}

/** Whether `q` has no room for `space` more bytes and `inodes` more inodes. */
export function exceeds(q: QuotaInfo, space: number, inodes: number): boolean {
  return (space > 0 && q.capacity !== null && q.usedSpace + space > q.capacity) ||
    (inodes > 0 && q.inodes !== null && q.usedInodes + inodes > q.inodes);
}

/**
 * Charges `space` bytes and `inodes` inodes (either may be negative) to every quota above `dir`;
 * with `enforce`, `EDQUOT` if a quota has no room for a growth.
 */
export async function charge(
  tx: KvTxn,
  dir: Ino,
  space: number,
  inodes: number,
  enforce: boolean,
): Promise<void> {
  if (space === 0 && inodes === 0) return;
  const qs = await quotasOf(tx, dir);
  if (enforce && qs.some((q) => exceeds(q, space, inodes))) {
    throw new FsError(Errno.EDQUOT, "Quota exceeded");
  }
  for (const q of qs) {
    putUsage(tx, q.ino, { space: q.usedSpace + space, inodes: q.usedInodes + inodes });
  }
}

/** What an inode counts for in quotas: its space (regular files) and itself. */
export function usageOf(a: Attr): { space: number; inodes: number } {
  return { space: (a.mode & S_IFMT) === S_IFREG ? spaceOf(a.size) : 0, inodes: 1 };
}

/** Whether `a` and `b` have the same quotas above them. */
export async function sameQuotas(tx: KvTxn, a: Ino, b: Ino): Promise<boolean> {
  if (a === b) return true;
  const [qa, qb] = [await quotaChain(tx, a), await quotaChain(tx, b)];
  return qa.length === qb.length && qa.every((q, i) => q === qb[i]);
}

/**
 * Moves the usage of a non-directory `a` from the quotas above `from` to those above `to` (those
 * above both keep it); `EDQUOT` if one of the new ones has no room.
 */
export async function moveCharge(tx: KvTxn, a: Attr, from: Ino, to: Ino): Promise<void> {
  if (from === to) return;
  const [qf, qt] = [await quotaChain(tx, from), await quotaChain(tx, to)];
  const { space, inodes } = usageOf(a);
  const leave = qf.filter((q) => !qt.includes(q));
  const enter = qt.filter((q) => !qf.includes(q));
  const entering: QuotaInfo[] = [];
  for (const q of enter) {
    const info = (await readQuota(tx, q))!;
    if (exceeds(info, space, inodes)) throw new FsError(Errno.EDQUOT, "Quota exceeded");
    entering.push(info);
  }
  for (const q of entering) {
    putUsage(tx, q.ino, { space: q.usedSpace + space, inodes: q.usedInodes + inodes });
  }
  for (const q of leave) {
    const info = (await readQuota(tx, q))!;
    putUsage(tx, q, { space: info.usedSpace - space, inodes: info.usedInodes - inodes });
  }
}

/**
 * What the tree below `dir` uses, by a walk; with `adopt`, files without a recorded directory
 * (written before quotas) get the one they are in.
 */
export async function walkQuotaUsage(tx: KvTxn, dir: Ino, adopt: boolean): Promise<QuotaUsage> {
  const u = { space: 0, inodes: 0 };
  const seen = new Set<Ino>();
  const todo: Ino[] = [dir];
  while (todo.length) {
    const d = todo.pop()!;
    const entries = (await tx.scan(entryPrefix(d))).map(([, v]) => decodeEntry(v));
    const raws = await tx.getMany(entries.map((e) => attrKey(e.ino)));
    entries.forEach((e, i) => {
      const raw = raws[i];
      if (!raw || seen.has(e.ino)) return;
      seen.add(e.ino);
      const a = decodeAttr(e.ino, raw);
      const c = usageOf(a);
      u.space += c.space;
      u.inodes += c.inodes;
      if ((a.mode & S_IFMT) === S_IFDIR) todo.push(e.ino);
      else if (adopt && a.parent === 0) {
        a.parent = d;
        putAttr(tx, a);
      }
    });
  }
  return u;
}

/**
 * Sets the limits of the quota on directory `dir` (a field left out keeps its value; a new quota
 * has none until given); a new quota's usage comes from a walk of the tree.
 */
export async function setQuota(
  tx: KvTxn,
  dir: Ino,
  limits: Partial<QuotaLimits>,
): Promise<QuotaInfo> {
  const raw = await tx.get(attrKey(dir));
  if (!raw) throw new FsError(Errno.ENOENT, `No inode ${dir}`);
  if ((decodeAttr(dir, raw).mode & S_IFMT) !== S_IFDIR) {
    throw new FsError(Errno.ENOTDIR, "A quota needs a directory");
  }
  const old = await readQuota(tx, dir);
  const l: QuotaLimits = {
    capacity: limits.capacity !== undefined ? limits.capacity : old?.capacity ?? null,
    inodes: limits.inodes !== undefined ? limits.inodes : old?.inodes ?? null,
  };
  tx.set(quotaLimitKey(dir), encodeJson(l));
  noQuotaIn.delete(tx);
  const u = old
    ? { space: old.usedSpace, inodes: old.usedInodes }
    : await walkQuotaUsage(tx, dir, true);
  if (!old) putUsage(tx, dir, u);
  return { ino: dir, ...l, usedSpace: u.space, usedInodes: u.inodes };
}

/** The quota on `dir`, if any. */
export function getQuota(tx: KvTxn, dir: Ino): Promise<QuotaInfo | undefined> {
  return readQuota(tx, dir);
}

/** Deletes the quota on `dir`; false if it had none. */
export async function deleteQuota(tx: KvTxn, dir: Ino): Promise<boolean> {
  if (!await tx.get(quotaLimitKey(dir))) return false;
  tx.delete(quotaLimitKey(dir));
  tx.delete(quotaUsageKey(dir));
  return true;
}

/** Every quota. */
export async function listQuotas(tx: KvTxn): Promise<QuotaInfo[]> {
  const out: QuotaInfo[] = [];
  for (const [k] of await tx.scan(quotaPrefix, { keysOnly: true })) {
    if (!k.endsWith("L")) continue;
    const q = await readQuota(tx, quotaInoOf(k));
    if (q) out.push(q);
  }
  return out;
}

/**
 * Walks the tree of the quota on `dir` and compares with the usage kept; with `repair`, stores
 * what the walk found (and adopts files written before quotas).
 */
export async function checkQuota(
  tx: KvTxn,
  dir: Ino,
  repair: boolean,
): Promise<QuotaCheck | undefined> {
  const kept = await readQuota(tx, dir);
  if (!kept) return undefined;
  const walked = await walkQuotaUsage(tx, dir, repair);
  if (repair) putUsage(tx, dir, walked);
  return { kept, walked };
}
