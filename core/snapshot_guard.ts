/**
 * Read-only snapshots at the mount: {@linkcode guardSnapshots} wraps an {@linkcode FsOps} so that
 * every change to a snapshot inode (numbered from `SNAPSHOT_INO_BASE`, see `core/clone.ts`) fails
 * with `EROFS`, and so that the `.snapshots` directory that holds a directory's snapshots is left
 * out of that directory's listing (it is reached by name, like ZFS's hidden `.zfs`).
 *
 * Checked: `setattr`, `setxattr`, `removexattr`, `fallocate`, `write`, an `open` for writing or
 * with `O_TRUNC`, creating or removing names in a snapshot directory, links to or from snapshot
 * inodes, the target of `copy_file_range`, and renames or removals of a `.snapshots` entry
 * itself (`slayerfs snapshot rm` removes snapshots). The check needs no metadata read except for
 * the name `.snapshots`.
 *
 * @module
 */

import { Errno, FsError } from "./errno.ts";
import type { FsOps } from "./fs_ops.ts";
import { isSnapshotIno, SNAPSHOT_DIR } from "./clone.ts";
import {
  type Ctx,
  type DirEntry,
  type Ino,
  type Name,
  O_ACCMODE,
  O_RDONLY,
  O_TRUNC,
} from "./types.ts";

const erofs = () => new FsError(Errno.EROFS, "Snapshots are read-only");

/** Throws `EROFS` if any of `inos` is a snapshot inode. */
function check(...inos: Ino[]): void {
  for (const ino of inos) if (isSnapshotIno(ino)) throw erofs();
}

/**
 * `ops` with snapshots read-only and `.snapshots` hidden from listings; `lookup(parent, name)`
 * finds an entry's inode without counting a kernel reference (the metadata's lookup).
 */
export function guardSnapshots(
  ops: FsOps,
  lookup: (parent: Ino, name: Name) => Promise<Ino>,
): FsOps {
  /** Throws `EROFS` if `name` in `parent` is a `.snapshots` directory (or inside a snapshot). */
  const checkName = async (parent: Ino, name: Name) => {
    check(parent);
    if (name !== SNAPSHOT_DIR) return;
    const ino = await lookup(parent, name).catch(() => undefined);
    if (ino !== undefined) check(ino);
  };
  const guarded: Partial<FsOps> = {
    setattr: (ctx, ino, set, fh) => (check(ino), ops.setattr(ctx, ino, set, fh)),
    mknod: (
      ctx,
      parent,
      name,
      mode,
      rdev,
    ) => (check(parent), ops.mknod(ctx, parent, name, mode, rdev)),
    mkdir: (ctx, parent, name, mode) => (check(parent), ops.mkdir(ctx, parent, name, mode)),
    symlink: (ctx, parent, name, target) => (check(parent), ops.symlink(ctx, parent, name, target)),
    create: (
      ctx,
      parent,
      name,
      mode,
      flags,
    ) => (check(parent), ops.create(ctx, parent, name, mode, flags)),
    unlink: async (ctx, parent, name) => {
      await checkName(parent, name);
      return await ops.unlink(ctx, parent, name);
    },
    rmdir: async (ctx, parent, name) => {
      await checkName(parent, name);
      return await ops.rmdir(ctx, parent, name);
    },
    rename: async (ctx, parent, name, newParent, newName, flags) => {
      await checkName(parent, name);
      await checkName(newParent, newName);
      return await ops.rename(ctx, parent, name, newParent, newName, flags);
    },
    link: (
      ctx,
      ino,
      newParent,
      newName,
    ) => (check(ino, newParent), ops.link(ctx, ino, newParent, newName)),
    open: (ctx, ino, flags) => {
      if ((flags & O_ACCMODE) !== O_RDONLY || flags & O_TRUNC) check(ino);
      return ops.open(ctx, ino, flags);
    },
    write: (ctx, ino, fh, offset, data) => (check(ino), ops.write(ctx, ino, fh, offset, data)),
    setxattr: (
      ctx,
      ino,
      name,
      value,
      flags,
    ) => (check(ino), ops.setxattr(ctx, ino, name, value, flags)),
    removexattr: (ctx, ino, name) => (check(ino), ops.removexattr(ctx, ino, name)),
    fallocate: (
      ctx,
      ino,
      fh,
      mode,
      offset,
      length,
    ) => (check(ino), ops.fallocate(ctx, ino, fh, mode, offset, length)),
    copyFileRange: (ctx, inoIn, fhIn, offIn, inoOut, fhOut, offOut, length, flags) => (
      check(inoOut),
        ops.copyFileRange(ctx, inoIn, fhIn, offIn, inoOut, fhOut, offOut, length, flags)
    ),
    readdir: (ctx, ino, fh, offset, limit, plus) =>
      isSnapshotIno(ino)
        ? ops.readdir(ctx, ino, fh, offset, limit, plus)
        : hideSnapshots(ops, ctx, ino, fh, offset, limit, plus),
  };
  return new Proxy(ops, {
    get(target, key) {
      const own = guarded[key as keyof FsOps];
      if (own !== undefined && key in target) return own;
      const v = Reflect.get(target, key, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/** `readdir` without `.snapshots` entries (read on past them if a page held nothing else). */
async function hideSnapshots(
  ops: FsOps,
  ctx: Ctx,
  ino: Ino,
  fh: Parameters<FsOps["readdir"]>[2],
  offset: number,
  limit: number,
  plus: boolean,
): Promise<DirEntry[]> {
  for (;;) {
    const page = await ops.readdir(ctx, ino, fh, offset, limit, plus);
    const kept = page.filter((e) => !(e.name === SNAPSHOT_DIR && isSnapshotIno(e.ino)));
    if (kept.length || !page.length) return kept;
    offset = page.at(-1)!.next;
  }
}
