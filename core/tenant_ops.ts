/**
 * Decorators of {@linkcode FsOps} for tenants: {@linkcode subdirOps} serves one directory of a
 * volume as the mount's root (`slayerfs mount --subdir`), {@linkcode readOnlyOps} refuses every
 * change with `EROFS` (`-o ro`). Both implement the same interface as what they wrap, so the FUSE
 * adapter (and any other driver) cannot tell.
 *
 * @module
 */

import { Errno, FsError } from "./errno.ts";
import type { FsOps } from "./fs_ops.ts";
import {
  type Attr,
  type DirEntry,
  type Ino,
  O_ACCMODE,
  O_RDONLY,
  O_TRUNC,
  ROOT_INO,
} from "./types.ts";

// deno-lint-ignore no-explicit-any
type AnyFn = (...args: any[]) => any;

/** The methods of `FsOps`, in the order of its declaration. */
const METHODS = [
  "forget",
  "lookup",
  "getattr",
  "setattr",
  "readlink",
  "mknod",
  "mkdir",
  "unlink",
  "rmdir",
  "symlink",
  "rename",
  "link",
  "open",
  "create",
  "read",
  "write",
  "flush",
  "release",
  "fsync",
  "opendir",
  "readdir",
  "releasedir",
  "fsyncdir",
  "statfs",
  "setxattr",
  "getxattr",
  "listxattr",
  "removexattr",
  "access",
  "getlk",
  "setlk",
  "flock",
  "fallocate",
  "copyFileRange",
  "lseek",
  "destroy",
] as const; // deno-fmt-ignore

/**
 * `inner`'s methods bound to it, each replaced by `wrap(name, method)` (a method `inner` lacks
 * stays absent: the adapter answers ENOSYS and leaves its capability off).
 */
function wrapOps(inner: FsOps, wrap: (name: string, fn: AnyFn) => AnyFn): FsOps {
  const out: Record<string, unknown> = { copiesWriteData: inner.copiesWriteData };
  for (const name of METHODS) {
    const fn = (inner as unknown as Record<string, AnyFn | undefined>)[name];
    if (typeof fn === "function") out[name] = wrap(name, fn.bind(inner));
  }
  return out as unknown as FsOps;
}

/** The methods that change something, refused by {@linkcode readOnlyOps}. */
const CHANGES = new Set([
  "setattr",
  "mknod",
  "mkdir",
  "unlink",
  "rmdir",
  "symlink",
  "rename",
  "link",
  "create",
  "write",
  "setxattr",
  "removexattr",
  "fallocate",
  "copyFileRange",
]);

/**
 * `inner` read-only: every change (and an `open` for writing or with `O_TRUNC`) fails with
 * `EROFS`. Reads, listings, xattr reads and locks work as before.
 */
export function readOnlyOps(inner: FsOps): FsOps {
  const rofs = () => Promise.reject(new FsError(Errno.EROFS, "Read-only mount"));
  return wrapOps(inner, (name, fn) => {
    if (CHANGES.has(name)) return rofs;
    if (name === "open") {
      return (ctx, ino, flags: number) =>
        (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) ? rofs() : fn(ctx, ino, flags);
    }
    return fn;
  });
}

/** Where each method takes inode numbers (after `ctx`, argument 1 unless listed). */
const INO_ARGS: Record<string, number[]> = {
  forget: [0],
  rename: [1, 3],
  link: [1, 2],
  copyFileRange: [1, 4],
  destroy: [],
};

/**
 * `inner` with directory `root` as the root: the kernel's root inode (1) is `root`, `..` of
 * `root` is `root` itself (in lookups and listings), and an inode this mount never handed out
 * (one outside the tree, or a forged number) fails with `ESTALE`. The inodes handed out are
 * remembered for the mount's life (inode numbers are never reused); one moved out of the tree by
 * another mount stays reachable here while the kernel knows it, as with a bind mount.
 */
export function subdirOps(inner: FsOps, root: Ino): FsOps {
  const known = new Set<Ino>([root]);
  const toInner = (ino: Ino): Ino => {
    if (ino === ROOT_INO) return root;
    if (!known.has(ino)) throw new FsError(Errno.ESTALE, `Inode ${ino} is outside the mount`);
    return ino;
  };
  const outAttr = (a: Attr): Attr => {
    if (a.ino === root) return { ...a, ino: ROOT_INO };
    known.add(a.ino);
    return a;
  };
  const rootAttr = async (ctx: unknown) => outAttr(await inner.getattr(ctx as never, root));
  const outEntries = async (ctx: unknown, dir: Ino, list: DirEntry[]) => {
    const out: DirEntry[] = [];
    for (const e of list) {
      if (e.ino === root || (dir === root && e.name === "..")) {
        const attr = e.attr ? await rootAttr(ctx) : undefined;
        out.push({ ...e, ino: ROOT_INO, ...(attr ? { attr } : {}) });
      } else {
        if (e.attr) outAttr(e.attr);
        known.add(e.ino);
        out.push(e);
      }
    }
    return out;
  };
  return wrapOps(inner, (name, fn) => {
    const at = INO_ARGS[name] ?? [1];
    return (...args: unknown[]) => {
      try {
        for (const i of at) args[i] = toInner(args[i] as Ino);
      } catch (err) {
        if (name === "forget") return undefined;
        return Promise.reject(err);
      }
      if (name === "lookup" && args[1] === root && args[2] === "..") return rootAttr(args[0]);
      const r = fn(...args);
      if (!(r instanceof Promise)) return r;
      return r.then(async (v: unknown) => {
        if (name === "readdir") return await outEntries(args[0], args[1] as Ino, v as DirEntry[]);
        if (name === "create") {
          const c = v as { attr: Attr };
          return { ...c, attr: outAttr(c.attr) };
        }
        if (v && typeof v === "object" && "ino" in v && "mode" in v) return outAttr(v as Attr);
        return v;
      });
    };
  });
}
