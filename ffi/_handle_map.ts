/**
 * The file handles the kernel holds, kept beside the filesystem so that they survive a change of
 * daemon: {@linkcode HandleMap.wrap} returns the same {@linkcode FsOps} with the kernel's handle
 * numbers mapped to the filesystem's. The kernel keeps using the numbers it was given at open;
 * after a smooth upgrade the new daemon opens each of them again on its filesystem
 * ({@linkcode HandleMap.restore}) under the same number, so reads, writes, `fsync` and `close`
 * through a descriptor held across the upgrade go on. A number the map does not know (a handle
 * of a daemon that crashed) fails with `EBADF`.
 *
 * @module
 */

import { Errno, FsError } from "../core/errno.ts";
import type { FsOps } from "../core/fs_ops.ts";
import { type Ctx, type Fh, type Ino, O_CREAT, O_EXCL, O_TRUNC } from "../core/types.ts";

/** One handle as handed over: the kernel's number, its inode, open flags and kind. */
export interface HandleRecord {
  /** The number the kernel uses. */
  fh: number;
  /** The inode it is open on. */
  ino: number;
  /** The open flags (0 for a directory). */
  flags: number;
  /** A directory handle. */
  dir: boolean;
}

interface Entry extends HandleRecord {
  inner: Fh;
}

/** Methods taking a handle, with the position of each handle argument. */
const FH_ARGS: Record<string, number[]> = {
  getattr: [2],
  setattr: [3],
  read: [2],
  write: [2],
  flush: [2],
  release: [2],
  fsync: [2],
  readdir: [2],
  releasedir: [2],
  fsyncdir: [2],
  getlk: [2],
  setlk: [2],
  flock: [2],
  fallocate: [2],
  copyFileRange: [2, 5],
  lseek: [2],
};

/** A context for the opens a restore makes (no caller: the kernel checked at the first open). */
const RESTORE_CTX: Ctx = { uid: 0, gid: 0, pid: 0, umask: 0, groups: () => [] };

/** The kernel's handle numbers of one mount, mapped to its filesystem's. */
export class HandleMap {
  readonly #map = new Map<number, Entry>();
  #next = 1;

  /** Handles open now. */
  get size(): number {
    return this.#map.size;
  }

  /** Every open handle, for a handover. */
  records(): HandleRecord[] {
    return [...this.#map.values()].map(({ fh, ino, flags, dir }) => ({ fh, ino, flags, dir }));
  }

  /**
   * Opens every handle of `records` again on `ops` under its old number (`O_TRUNC`, `O_CREAT`
   * and `O_EXCL` left out: they acted at the first open). A handle whose inode is gone is left
   * out (its next use fails with `EBADF`); returns how many were restored.
   */
  async restore(ops: FsOps, records: HandleRecord[]): Promise<number> {
    let restored = 0;
    for (const r of records) {
      try {
        const opened = r.dir
          ? await ops.opendir!(RESTORE_CTX, r.ino as Ino, r.flags)
          : await ops.open!(RESTORE_CTX, r.ino as Ino, r.flags & ~(O_TRUNC | O_CREAT | O_EXCL));
        this.#map.set(r.fh, { ...r, inner: opened.fh });
        restored++;
      } catch {
        // Gone: the kernel's next request on it gets EBADF.
      }
      this.#next = Math.max(this.#next, r.fh + 1);
    }
    return restored;
  }

  #add(ino: Ino, flags: number, dir: boolean, inner: Fh): Fh {
    const fh = this.#next++;
    this.#map.set(fh, { fh, ino, flags, dir, inner });
    return fh as Fh;
  }

  #inner(fh: unknown): Fh {
    const e = this.#map.get(Number(fh));
    if (!e) throw new FsError(Errno.EBADF, `No open handle ${fh} (its daemon was replaced)`);
    return e.inner;
  }

  /** `ops` with the kernel's handle numbers mapped through this table. */
  wrap(ops: FsOps): FsOps {
    // deno-lint-ignore no-explicit-any
    type Fn = (...args: any[]) => Promise<any>;
    const wrapped = new Map<PropertyKey, unknown>();
    const add = (ino: Ino, flags: number, dir: boolean, inner: Fh) =>
      this.#add(ino, flags, dir, inner);
    const innerOf = (fh: unknown) => this.#inner(fh);
    const map = this.#map;
    const make = (name: string, fn: Fn): Fn => {
      const bound = fn.bind(ops);
      if (name === "open" || name === "opendir") {
        return async (ctx: Ctx, ino: Ino, flags: number) => {
          const o = await bound(ctx, ino, flags);
          return {
            ...o,
            fh: add(ino, name === "open" ? flags : 0, name === "opendir", o.fh),
          };
        };
      }
      if (name === "create") {
        return async (ctx: Ctx, parent: Ino, n: unknown, mode: number, flags: number) => {
          const r = await bound(ctx, parent, n, mode, flags);
          const fh = add(r.attr.ino, flags, false, r.opened.fh);
          return { ...r, opened: { ...r.opened, fh } };
        };
      }
      const positions = FH_ARGS[name];
      if (!positions) return bound;
      const byIno = name === "getattr" || name === "setattr";
      const closes = name === "release" || name === "releasedir";
      return async (...args: unknown[]) => {
        const kernelFh = args[positions[0]!];
        for (const p of positions) {
          if (args[p] === undefined) continue;
          // getattr/setattr work by inode: an unknown handle (a crashed daemon's) is dropped.
          args[p] = byIno ? map.get(Number(args[p]))?.inner : innerOf(args[p]);
        }
        try {
          return await bound(...args);
        } finally {
          if (closes) map.delete(Number(kernelFh));
        }
      };
    };
    return new Proxy(ops, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (typeof value !== "function" || typeof prop !== "string") return value;
        if (!wrapped.has(prop)) wrapped.set(prop, make(prop, value as Fn));
        return wrapped.get(prop);
      },
    });
  }
}
