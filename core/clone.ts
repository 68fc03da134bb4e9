/**
 * Clones and snapshots: metadata-only copies of a file or a whole tree that share the source's
 * slices (reference-counted, as `copy_file_range` does), and their removal.
 *
 * {@linkcode cloneTree} lists the source breadth first, takes the new inode numbers in one
 * transaction, writes the copy as a **detached** tree (no entry leads to it; a `T<root>` record
 * names it and the session building it, see `meta/trees.ts`) in batches of transactions, and
 * attaches its root under the destination name in one last transaction: the destination appears
 * whole or not at all (`EEXIST` if the name was taken, and then the detached tree is torn down).
 * Modes, owners, times, extended attributes, symlinks and hard links inside the tree (two names of
 * one source inode become two names of one new inode) are kept. If the mount dies half-way, the
 * record stays, and {@linkcode reclaimDetached} (run by the mount that cleans up the dead session,
 * and by `slayerfs gc`) removes the tree and drops its slice references.
 *
 * A snapshot is a clone whose inodes are numbered from `SNAPSHOT_INO_BASE`: the mount refuses every
 * change to them (`EROFS`, `core/snapshot_guard.ts`). {@linkcode removeTree} detaches a tree in
 * one transaction, then empties it deepest first; slices no one else references go to the garbage
 * list (`slayerfs gc --delete` or the next mount deletes their objects).
 *
 * Each file is copied in one transaction, so a file written during the clone is copied as it was
 * before or after a commit, never half; a tree that changes during the clone is copied as the
 * listing found it, file by file (like `cp -a`).
 *
 * @module
 */

import type { KvEngine } from "./kv.ts";
import { Errno, FsError } from "./errno.ts";
import { type Ino, type Name, ROOT_INO, S_IFDIR, S_IFMT } from "./types.ts";
import { bytesToByteString } from "./_bytes.ts";
import * as trees from "./meta/trees.ts";
import type { CopyItem, DetachedTree } from "./meta/trees.ts";
import { detachedInoOf, detachedPrefix } from "./meta/keys.ts";
import { getAttr } from "./meta/_inode.ts";
import { listDir, lookup } from "./meta/namespace.ts";
import { decodeJson } from "./meta/_codec.ts";
import type { FreedSlice } from "./meta/slices.ts";
import { DEFAULT_SESSION_TIMEOUT_MS, isStale, Session } from "./session.ts";

export { isSnapshotIno, SNAPSHOT_INO_BASE } from "./meta/trees.ts";

/** The name of the hidden directory that holds a directory's snapshots. */
export const SNAPSHOT_DIR = ".snapshots";

/** Nodes (or entries) per transaction. */
const BATCH = 64;

/**
 * Nodes per transaction on `kv`: fewer on etcd, whose server refuses a transaction of more than
 * `--max-txn-ops` (default 128) operations; a file of many chunks may still need it raised.
 */
function batchOf(kv: KvEngine): number {
  return kv.scheme === "etcd" ? 8 : BATCH;
}

/** What {@linkcode cloneTree} made. */
export interface CloneResult {
  /** The new root inode. */
  ino: Ino;
  /** Inodes created. */
  inodes: number;
  /** Bytes of regular files cloned (shared, not copied). */
  bytes: number;
}

/** Options of {@linkcode cloneTree}. */
export interface CloneOptions {
  /** The session of the mount doing the work (its death lets others reclaim a half clone). */
  sid: number;
  /** Make a snapshot: inodes in the read-only range. */
  snapshot?: boolean;
  /** For messages: the destination path. */
  path?: string;
}

/** A UTF-8 path component as a name (names are byte strings). */
export function nameOf(component: string): Name {
  return bytesToByteString(new TextEncoder().encode(component));
}

/** Resolves `path` (relative to the volume root, `/`-separated, no symlinks followed) to an inode. */
export async function resolvePath(kv: KvEngine, path: string): Promise<Ino> {
  let ino = ROOT_INO;
  for (const part of path.split("/").filter((p) => p !== "" && p !== ".")) {
    const at = ino;
    ino = (await kv.txn((tx) => lookup(tx, at, nameOf(part)), { readOnly: true })).ino;
  }
  return ino;
}

/** `path` as its parent directory's inode and its last name. */
export async function resolveParent(kv: KvEngine, path: string): Promise<[Ino, Name]> {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  const last = parts.pop();
  if (last === undefined || last === "..") {
    throw new FsError(Errno.EINVAL, `"${path}" names no entry`);
  }
  return [await resolvePath(kv, parts.join("/")), nameOf(last)];
}

interface Listed {
  src: Ino;
  type: number;
  /** Index of the parent in the list (-1 for the root). */
  parent: number;
  name?: Name;
  subdirs: number;
}

/**
 * Clones the file or tree `src` as `name` in directory `parent`; see the module documentation.
 * `EEXIST` if the name is taken (checked first, and again when attaching).
 */
export async function cloneTree(
  kv: KvEngine,
  src: Ino,
  parent: Ino,
  name: Name,
  opts: CloneOptions,
): Promise<CloneResult> {
  const ro = { readOnly: true };
  await kv.txn(async (tx) => {
    await lookup(tx, parent, name).then(
      () => {
        throw new FsError(Errno.EEXIST, `"${opts.path ?? name}" exists`);
      },
      (e) => {
        if (!(e instanceof FsError && e.errno === Errno.ENOENT)) throw e;
      },
    );
  }, ro);
  const root = await kv.txn((tx) => getAttr(tx, src), ro);
  // List the source, breadth first (a directory before what it holds).
  const list: Listed[] = [{ src, type: root.mode & S_IFMT, parent: -1, subdirs: 0 }];
  for (let i = 0; i < list.length; i++) {
    const d = list[i]!;
    if (d.type !== S_IFDIR) continue;
    const entries = await kv.txn((tx) => listDir(tx, d.src), ro);
    for (const e of entries) {
      // A directory's snapshots are not part of it.
      if (trees.isSnapshotIno(e.ino) && !trees.isSnapshotIno(d.src)) continue;
      list.push({ src: e.ino, type: e.type, parent: i, name: e.name, subdirs: 0 });
      if (e.type === S_IFDIR) d.subdirs++;
    }
  }
  // Names per inode inside the tree: hard links stay hard links.
  const names = new Map<Ino, number>();
  for (const l of list) if (l.type !== S_IFDIR) names.set(l.src, (names.get(l.src) ?? 0) + 1);
  const count = list.filter((l) => l.type === S_IFDIR).length + names.size;
  const first = await kv.txn((tx) => trees.allocInos(tx, count, opts.snapshot ?? false));
  const newIno = new Map<Ino, Ino>();
  const dirIno: Ino[] = [];
  let next = first;
  const items: CopyItem[] = list.map((l, idx) => {
    const parentIno = l.parent < 0 ? parent : dirIno[l.parent]!;
    const seen = l.type === S_IFDIR ? undefined : newIno.get(l.src);
    if (seen !== undefined) {
      return { kind: "link", ino: seen, type: l.type, parent: parentIno, name: l.name! };
    }
    const ino = next++ as Ino;
    if (l.type === S_IFDIR) dirIno[idx] = ino;
    else newIno.set(l.src, ino);
    const nlink = l.type === S_IFDIR ? 2 + l.subdirs : names.get(l.src)!;
    return {
      kind: "node",
      src: l.src,
      ino,
      parent: parentIno,
      nlink,
      ...(l.name !== undefined ? { name: l.name } : {}),
    };
  });
  const rootIno = first as Ino;
  const tree: DetachedTree = {
    what: "clone",
    sid: opts.sid,
    started: Date.now(),
    ...(opts.path ? { path: opts.path } : {}),
  };
  let started = false;
  try {
    const per = batchOf(kv);
    for (let i = 0; i < items.length; i += per) {
      const batch = items.slice(i, i + per);
      await kv.txn((tx) => trees.copyNodes(tx, batch, i === 0 ? tree : undefined));
      started = true;
    }
    await kv.txn((tx) => trees.attach(tx, rootIno, parent, name));
  } catch (err) {
    if (started) await removeDetached(kv, rootIno).catch(() => {});
    throw err;
  }
  return { ino: rootIno, inodes: count, bytes: await sizeOf(kv, items) };
}

/** Bytes of the regular files among the copied nodes. */
async function sizeOf(kv: KvEngine, items: readonly CopyItem[]): Promise<number> {
  let bytes = 0;
  const inos = items.flatMap((it) => it.kind === "node" ? [it.ino] : []);
  for (let i = 0; i < inos.length; i += 1000) {
    const attrs = await kv.txn(
      (tx) =>
        Promise.all(inos.slice(i, i + 1000).map((n) => getAttr(tx, n).catch(() => undefined))),
      { readOnly: true },
    );
    for (const a of attrs) if (a && (a.mode & S_IFMT) !== S_IFDIR) bytes += a.size;
  }
  return bytes;
}

/**
 * Removes entry `name` of `parent` with everything below it: detaches it in one transaction
 * (recording the detached tree for `sid`), then empties it. Returns the slices freed.
 */
export async function removeTree(
  kv: KvEngine,
  parent: Ino,
  name: Name,
  sid: number,
  path?: string,
): Promise<FreedSlice[]> {
  const tree: DetachedTree = {
    what: "remove",
    sid,
    started: Date.now(),
    ...(path ? { path } : {}),
  };
  const root = await kv.txn((tx) => trees.detach(tx, parent, name, tree));
  return await removeDetached(kv, root);
}

/** Empties and drops the detached tree at `root`, deepest directories first. */
async function removeDetached(kv: KvEngine, root: Ino): Promise<FreedSlice[]> {
  const freed: FreedSlice[] = [];
  const dirs: Ino[] = [];
  const a = await kv.txn((tx) => getAttr(tx, root), { readOnly: true }).catch(() => undefined);
  if (a && (a.mode & S_IFMT) === S_IFDIR) {
    dirs.push(root);
    for (let i = 0; i < dirs.length; i++) {
      const d = dirs[i]!;
      for (const e of await kv.txn((tx) => listDir(tx, d), { readOnly: true })) {
        if (e.type === S_IFDIR) dirs.push(e.ino);
      }
    }
  }
  const per = batchOf(kv);
  for (let i = dirs.length - 1; i >= 0; i--) {
    const d = dirs[i]!;
    for (;;) {
      const part: FreedSlice[] = [];
      const n = await kv.txn((tx) => {
        part.length = 0;
        return trees.removeEntries(tx, d, per, part);
      });
      freed.push(...part);
      if (n < per) break;
    }
    if (i > 0) await kv.txn((tx) => trees.dropDir(tx, d));
  }
  const part: FreedSlice[] = [];
  await kv.txn((tx) => {
    part.length = 0;
    return trees.finishRemoval(tx, root, part);
  });
  freed.push(...part);
  return freed;
}

/** Every detached tree: its root and record. */
export async function listDetached(
  kv: KvEngine,
): Promise<Array<{ root: Ino } & DetachedTree>> {
  const pairs = await kv.txn((tx) => tx.scan(detachedPrefix), { readOnly: true });
  return pairs.map(([k, v]) => ({ root: detachedInoOf(k), ...decodeJson<DetachedTree>(v) }));
}

/**
 * Tears down the detached trees (half-built clones, half-removed snapshots) whose session `dead`
 * says is gone. Returns how many it removed.
 */
export async function reclaimDetached(
  kv: KvEngine,
  dead: (sid: number) => boolean,
): Promise<number> {
  let n = 0;
  for (const t of await listDetached(kv)) {
    if (!dead(t.sid)) continue;
    await removeDetached(kv, t.root);
    n++;
  }
  return n;
}

/**
 * Whether session `sid` is gone: no record, or one past its timeout (for detached trees whose
 * builder went away without its session being cleaned up, e.g. a clean unmount mid-clone).
 */
export async function deadSessions(kv: KvEngine): Promise<(sid: number) => boolean> {
  const now = Date.now();
  const live = new Set(
    (await Session.list(kv)).filter((r) => !isStale(r, now, DEFAULT_SESSION_TIMEOUT_MS))
      .map((r) => r.id),
  );
  return (sid) => !live.has(sid);
}
