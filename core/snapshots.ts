/**
 * Clones and snapshots by path, as a mount's daemon runs them for `slayerfs clone` and
 * `slayerfs snapshot` (paths are relative to the volume root, `/`-separated UTF-8; the last
 * component is not followed if it is a symlink).
 *
 * A directory's snapshots live in its `.snapshots` directory (made by the first snapshot, removed
 * with the last): `PATH/.snapshots/NAME` is a clone of `PATH` (without its own `.snapshots`) whose
 * inodes are read-only (`core/snapshot_guard.ts`). `.snapshots` is hidden from the listing of
 * `PATH` but reachable by name.
 *
 * @module
 */

import type { KvEngine } from "./kv.ts";
import { Errno, FsError } from "./errno.ts";
import { type Ctx, type Ino, type Name, S_IFDIR, S_IFMT } from "./types.ts";
import {
  type CloneResult,
  cloneTree,
  isSnapshotIno,
  nameOf,
  removeTree,
  resolveParent,
  resolvePath,
  SNAPSHOT_DIR,
} from "./clone.ts";
import { allocInos } from "./meta/trees.ts";
import { getAttr } from "./meta/_inode.ts";
import { listDir, lookup, mknod, rmdir } from "./meta/namespace.ts";

/** A snapshot as `slayerfs snapshot ls` shows it. */
export interface SnapshotInfo {
  /** Its name. */
  name: string;
  /** When it was taken (ms since the epoch: the change time of its root). */
  created: number;
}

/** What a {@linkcode Snapshots} needs of its mount. */
export interface SnapshotsOptions {
  /** The mount's current session id. */
  sid: () => number;
  /** Writes what open files buffered, so that a clone sees it. */
  flush?: () => Promise<void>;
  /** Called for each entry made or removed (the mount makes the kernel forget its cache of it). */
  changed?: (parent: Ino, name: Name) => Promise<void>;
}

const utf8 = new TextDecoder();

/** Text of a byte-string name. */
function textOf(name: Name): string {
  return utf8.decode(Uint8Array.from(name, (c) => c.charCodeAt(0)));
}

/** Checks a snapshot's name: one path component. */
function snapshotName(name: string): Name {
  if (!name || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new FsError(Errno.EINVAL, `Invalid snapshot name "${name}"`);
  }
  return nameOf(name);
}

/** Clones and snapshots of one mounted volume, by path. */
export class Snapshots {
  readonly #kv: KvEngine;
  readonly #opts: SnapshotsOptions;

  /** Works on the volume whose metadata is `kv`. */
  constructor(kv: KvEngine, opts: SnapshotsOptions) {
    this.#kv = kv;
    this.#opts = opts;
  }

  /** Clones `src` as `dst` (`EEXIST` if it exists, `EROFS` inside a snapshot). */
  async clone(src: string, dst: string): Promise<CloneResult> {
    const srcIno = await resolvePath(this.#kv, src);
    const [parent, name] = await resolveParent(this.#kv, dst);
    if (isSnapshotIno(parent)) throw new FsError(Errno.EROFS, "Snapshots are read-only");
    await this.#opts.flush?.();
    const r = await cloneTree(this.#kv, srcIno, parent, name, { sid: this.#opts.sid(), path: dst });
    await this.#changed(parent, name);
    return r;
  }

  async #changed(parent: Ino, name: Name): Promise<void> {
    await this.#opts.changed?.(parent, name).catch(() => {});
  }

  /** The directory `path` (`ENOTDIR` for anything else). */
  async #dir(path: string): Promise<Ino> {
    const ino = await resolvePath(this.#kv, path);
    const a = await this.#kv.txn((tx) => getAttr(tx, ino), { readOnly: true });
    if ((a.mode & S_IFMT) !== S_IFDIR) {
      throw new FsError(Errno.ENOTDIR, `"${path}" is no directory`);
    }
    if (isSnapshotIno(ino)) throw new FsError(Errno.EROFS, "Snapshots are read-only");
    return ino;
  }

  /** The `.snapshots` directory of `dir`, if any. */
  async #snapDir(dir: Ino): Promise<Ino | undefined> {
    try {
      return (await this.#kv.txn((tx) => lookup(tx, dir, SNAPSHOT_DIR), { readOnly: true })).ino;
    } catch (err) {
      if (err instanceof FsError && err.errno === Errno.ENOENT) return undefined;
      throw err;
    }
  }

  /** Takes a read-only snapshot of directory `path` as `path/.snapshots/name`. */
  async create(path: string, name: string): Promise<CloneResult> {
    const n = snapshotName(name);
    const dir = await this.#dir(path);
    await this.#opts.flush?.();
    let snaps = await this.#snapDir(dir);
    if (snaps === undefined) {
      const owner = await this.#kv.txn((tx) => getAttr(tx, dir), { readOnly: true });
      const ctx: Ctx = {
        uid: owner.uid,
        gid: owner.gid,
        pid: 0,
        umask: 0,
        groups: () => [owner.gid],
      };
      const ino = await this.#kv.txn((tx) => allocInos(tx, 1, true)) as Ino;
      const node = { ino, ctx, parent: dir, name: SNAPSHOT_DIR, mode: S_IFDIR | 0o755, rdev: 0 };
      await this.#kv.txn((tx) => mknod(tx, node)).catch((err) => {
        if (!(err instanceof FsError && err.errno === Errno.EEXIST)) throw err;
      });
      snaps = (await this.#snapDir(dir))!;
      await this.#changed(dir, SNAPSHOT_DIR);
    }
    if (!isSnapshotIno(snaps)) {
      throw new FsError(
        Errno.EEXIST,
        `"${path}/${SNAPSHOT_DIR}" exists and is not a snapshot folder`,
      );
    }
    const r = await cloneTree(this.#kv, dir, snaps, n, {
      sid: this.#opts.sid(),
      snapshot: true,
      path: `${path}/${SNAPSHOT_DIR}/${name}`,
    });
    await this.#changed(snaps, n);
    return r;
  }

  /** The snapshots of directory `path`, by name. */
  async list(path: string): Promise<SnapshotInfo[]> {
    const snaps = await this.#snapDir(await this.#dir(path));
    if (snaps === undefined || !isSnapshotIno(snaps)) return [];
    return await this.#kv.txn(async (tx) => {
      const out: SnapshotInfo[] = [];
      for (const e of await listDir(tx, snaps)) {
        const a = await getAttr(tx, e.ino);
        out.push({ name: textOf(e.name), created: a.ctime.sec * 1000 + a.ctime.nsec / 1e6 });
      }
      return out.sort((a, b) => a.name < b.name ? -1 : 1);
    }, { readOnly: true });
  }

  /**
   * Removes snapshot `name` of directory `path` (and `.snapshots` with the last one); its slices
   * no one else references go to the garbage list. Returns how many slices were freed.
   */
  async remove(path: string, name: string): Promise<{ freedSlices: number }> {
    const n = snapshotName(name);
    const dir = await this.#dir(path);
    const snaps = await this.#snapDir(dir);
    if (snaps === undefined || !isSnapshotIno(snaps)) {
      throw new FsError(Errno.ENOENT, `No snapshot "${name}" of "${path}"`);
    }
    const freed = await removeTree(this.#kv, snaps, n, this.#opts.sid(), `${path}/${name}`)
      .catch((err) => {
        if (err instanceof FsError && err.errno === Errno.ENOENT) {
          throw new FsError(Errno.ENOENT, `No snapshot "${name}" of "${path}"`);
        }
        throw err;
      });
    // The last one takes the folder with it (an empty `.snapshots` would keep `rmdir` failing).
    await this.#changed(snaps, n);
    const gone = await this.#kv.txn((tx) => rmdir(tx, dir, SNAPSHOT_DIR)).then(
      () => true,
      () => false,
    );
    if (gone) await this.#changed(dir, SNAPSHOT_DIR);
    return { freedSlices: freed.length };
  }
}
