/**
 * The FUSE adapter's test fixture: a small in-memory {@linkcode FsOps}.
 *
 * It exists to exercise `ffi/` (mounting, every reply shape, errors, concurrency) and to measure
 * the loop shapes; it is not the SlayerFS core, whose own tests live elsewhere. It keeps POSIX
 * semantics simple: no permission checks (the mount uses `default_permissions`), unlinked files
 * vanish at once, POSIX/flock locks are advisory and never wait.
 *
 * @module
 */

import { Errno, FsError } from "../../core/errno.ts";
import type { FsOps } from "../../core/fs_ops.ts";
import {
  type Attr,
  type Ctx,
  type DirEntry,
  F_UNLCK,
  type Fh,
  type Ino,
  LOCK_NB,
  LOCK_UN,
  type Name,
  O_TRUNC,
  type Opened,
  type PosixLock,
  RENAME_NOREPLACE,
  ROOT_INO,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  type SetAttr,
  type StatFs,
  type Timespec,
  XATTR_CREATE,
  XATTR_REPLACE,
} from "../../core/types.ts";

interface Node {
  attr: Attr;
  /** File data in {@linkcode CHUNK}-byte chunks; a missing chunk reads as zeros. */
  chunks: (Uint8Array | undefined)[];
  target: Name;
  /** Children of a directory: name → [ino, cookie]. */
  children: Map<Name, { ino: Ino; cookie: number }>;
  nextCookie: number;
  xattrs: Map<Name, Uint8Array>;
  /** flock holders: owner → exclusive. */
  flocks: Map<bigint, boolean>;
}

/** The chunk size of file data. */
export const CHUNK = 1 << 20;

function now(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1e6 };
}

/** A RAM-backed filesystem implementing every {@linkcode FsOps} method (test fixture). */
export class RamFs implements FsOps {
  /** Inodes by number. */
  nodes = new Map<number, Node>();
  /** The next inode number. */
  nextIno = 2;
  /** The next file handle. */
  nextFh = 1;
  /** Calls of `forget`, summed per inode. */
  forgotten = new Map<number, number>();
  /** Set when `destroy` ran. */
  destroyed = false;

  /** Creates an empty filesystem with a root directory owned by root. */
  constructor() {
    this.nodes.set(ROOT_INO, this.newNode(ROOT_INO, S_IFDIR | 0o777, 0, 0, ROOT_INO));
  }

  /** Builds an inode. */
  newNode(ino: Ino, mode: number, uid: number, gid: number, parent: Ino): Node {
    const t = now();
    return {
      attr: {
        ino,
        mode,
        nlink: (mode & S_IFMT) === S_IFDIR ? 2 : 1,
        uid,
        gid,
        rdev: 0,
        size: 0,
        atime: t,
        mtime: t,
        ctime: t,
        parent: (mode & S_IFMT) === S_IFDIR ? parent : (0 as Ino),
      },
      chunks: [],
      target: "",
      children: new Map(),
      nextCookie: 3,
      xattrs: new Map(),
      flocks: new Map(),
    };
  }

  /** The inode `ino`, or ENOENT. */
  get(ino: Ino): Node {
    const n = this.nodes.get(ino);
    if (n === undefined) throw new FsError(Errno.ENOENT, `No inode ${ino}`);
    return n;
  }

  /** The directory `ino`, or ENOTDIR. */
  dir(ino: Ino): Node {
    const n = this.get(ino);
    if ((n.attr.mode & S_IFMT) !== S_IFDIR) throw new FsError(Errno.ENOTDIR, `Not a dir ${ino}`);
    return n;
  }

  /** Adds a new child inode to `parent`. */
  add(ctx: Ctx, parent: Ino, name: Name, mode: number): Node {
    const dir = this.dir(parent);
    if (dir.children.has(name)) throw new FsError(Errno.EEXIST, `"${name}" exists`);
    const ino = this.nextIno++ as Ino;
    const node = this.newNode(ino, mode, ctx.uid, ctx.gid, parent);
    this.nodes.set(ino, node);
    dir.children.set(name, { ino, cookie: dir.nextCookie++ });
    if ((mode & S_IFMT) === S_IFDIR) dir.attr.nlink++;
    dir.attr.mtime = dir.attr.ctime = now();
    return node;
  }

  /** Removes `name` from `parent` and drops the inode when its last link goes. */
  drop(parent: Ino, name: Name): Node {
    const dir = this.dir(parent);
    const ent = dir.children.get(name);
    if (ent === undefined) throw new FsError(Errno.ENOENT, `No entry "${name}"`);
    const node = this.get(ent.ino);
    dir.children.delete(name);
    dir.attr.mtime = dir.attr.ctime = now();
    if ((node.attr.mode & S_IFMT) === S_IFDIR) {
      dir.attr.nlink--;
      this.nodes.delete(ent.ino);
    } else if (--node.attr.nlink === 0) {
      this.nodes.delete(ent.ino);
    }
    return node;
  }

  /** Sets a file's size, zeroing what is cut off so a later extension reads zeros. */
  truncate(node: Node, size: number): void {
    if (size < node.attr.size) {
      const keep = Math.ceil(size / CHUNK);
      node.chunks.length = Math.min(node.chunks.length, keep);
      const last = node.chunks[keep - 1];
      if (last !== undefined && size % CHUNK !== 0) last.fill(0, size % CHUNK);
    }
    node.attr.size = size;
    node.attr.mtime = node.attr.ctime = now();
  }

  forget(ino: Ino, nlookup: number): void {
    this.forgotten.set(ino, (this.forgotten.get(ino) ?? 0) + nlookup);
  }

  lookup(_ctx: Ctx, parent: Ino, name: Name): Promise<Attr> {
    const dir = this.dir(parent);
    const ent = dir.children.get(name);
    if (ent === undefined) throw new FsError(Errno.ENOENT, `No entry "${name}"`);
    return Promise.resolve(this.get(ent.ino).attr);
  }

  getattr(_ctx: Ctx, ino: Ino): Promise<Attr> {
    return Promise.resolve(this.get(ino).attr);
  }

  setattr(_ctx: Ctx, ino: Ino, set: SetAttr): Promise<Attr> {
    const node = this.get(ino);
    const a = node.attr;
    if (set.mode !== undefined) a.mode = (a.mode & S_IFMT) | (set.mode & 0o7777);
    if (set.uid !== undefined) a.uid = set.uid;
    if (set.gid !== undefined) a.gid = set.gid;
    if (set.size !== undefined) this.truncate(node, set.size);
    if (set.atime !== undefined) a.atime = set.atime === "now" ? now() : set.atime;
    if (set.mtime !== undefined) a.mtime = set.mtime === "now" ? now() : set.mtime;
    a.ctime = set.ctime ?? now();
    return Promise.resolve(a);
  }

  readlink(_ctx: Ctx, ino: Ino): Promise<Name> {
    const node = this.get(ino);
    if ((node.attr.mode & S_IFMT) !== S_IFLNK) throw new FsError(Errno.EINVAL, "Not a symlink");
    return Promise.resolve(node.target);
  }

  mknod(ctx: Ctx, parent: Ino, name: Name, mode: number, rdev: number): Promise<Attr> {
    const node = this.add(ctx, parent, name, mode);
    node.attr.rdev = rdev;
    return Promise.resolve(node.attr);
  }

  mkdir(ctx: Ctx, parent: Ino, name: Name, mode: number): Promise<Attr> {
    return Promise.resolve(this.add(ctx, parent, name, S_IFDIR | (mode & 0o7777)).attr);
  }

  unlink(_ctx: Ctx, parent: Ino, name: Name): Promise<void> {
    const ent = this.dir(parent).children.get(name);
    if (ent !== undefined && (this.get(ent.ino).attr.mode & S_IFMT) === S_IFDIR) {
      throw new FsError(Errno.EISDIR, `"${name}" is a directory`);
    }
    this.drop(parent, name);
    return Promise.resolve();
  }

  rmdir(_ctx: Ctx, parent: Ino, name: Name): Promise<void> {
    const ent = this.dir(parent).children.get(name);
    if (ent === undefined) throw new FsError(Errno.ENOENT, `No entry "${name}"`);
    if (this.dir(ent.ino).children.size > 0) {
      throw new FsError(Errno.ENOTEMPTY, `"${name}" is not empty`);
    }
    this.drop(parent, name);
    return Promise.resolve();
  }

  symlink(ctx: Ctx, parent: Ino, name: Name, target: Name): Promise<Attr> {
    const node = this.add(ctx, parent, name, S_IFLNK | 0o777);
    node.target = target;
    node.attr.size = target.length;
    return Promise.resolve(node.attr);
  }

  rename(
    _ctx: Ctx,
    parent: Ino,
    name: Name,
    newParent: Ino,
    newName: Name,
    flags: number,
  ): Promise<void> {
    const from = this.dir(parent);
    const to = this.dir(newParent);
    const ent = from.children.get(name);
    if (ent === undefined) throw new FsError(Errno.ENOENT, `No entry "${name}"`);
    if (flags & ~RENAME_NOREPLACE) throw new FsError(Errno.EINVAL, "Unsupported rename flags");
    const existing = to.children.get(newName);
    if (existing !== undefined) {
      if (flags & RENAME_NOREPLACE) throw new FsError(Errno.EEXIST, `"${newName}" exists`);
      if (existing.ino === ent.ino) return Promise.resolve();
      const victim = this.get(existing.ino);
      if ((victim.attr.mode & S_IFMT) === S_IFDIR && victim.children.size > 0) {
        throw new FsError(Errno.ENOTEMPTY, `"${newName}" is not empty`);
      }
      this.drop(newParent, newName);
    }
    from.children.delete(name);
    to.children.set(newName, { ino: ent.ino, cookie: to.nextCookie++ });
    const node = this.get(ent.ino);
    if ((node.attr.mode & S_IFMT) === S_IFDIR && parent !== newParent) {
      from.attr.nlink--;
      to.attr.nlink++;
      node.attr.parent = newParent;
    }
    from.attr.mtime = to.attr.mtime = node.attr.ctime = now();
    return Promise.resolve();
  }

  link(_ctx: Ctx, ino: Ino, newParent: Ino, newName: Name): Promise<Attr> {
    const node = this.get(ino);
    const dir = this.dir(newParent);
    if (dir.children.has(newName)) throw new FsError(Errno.EEXIST, `"${newName}" exists`);
    dir.children.set(newName, { ino, cookie: dir.nextCookie++ });
    node.attr.nlink++;
    node.attr.ctime = now();
    return Promise.resolve(node.attr);
  }

  open(_ctx: Ctx, ino: Ino, flags: number): Promise<Opened> {
    const node = this.get(ino);
    if (flags & O_TRUNC) this.truncate(node, 0);
    return Promise.resolve({ fh: this.nextFh++ as Fh });
  }

  create(
    ctx: Ctx,
    parent: Ino,
    name: Name,
    mode: number,
    _flags: number,
  ): Promise<{ attr: Attr; opened: Opened }> {
    const node = this.add(ctx, parent, name, S_IFREG | (mode & 0o7777));
    return Promise.resolve({ attr: node.attr, opened: { fh: this.nextFh++ as Fh } });
  }

  read(_ctx: Ctx, ino: Ino, _fh: Fh, offset: number, size: number): Promise<Uint8Array> {
    const node = this.get(ino);
    const end = Math.min(node.attr.size, offset + size);
    if (offset >= end) return Promise.resolve(new Uint8Array(0));
    const first = Math.floor(offset / CHUNK);
    if (Math.floor((end - 1) / CHUNK) === first) {
      const chunk = node.chunks[first];
      const from = offset - first * CHUNK;
      return Promise.resolve(
        chunk === undefined
          ? new Uint8Array(end - offset)
          : chunk.subarray(from, from + end - offset),
      );
    }
    const out = new Uint8Array(end - offset);
    for (let pos = offset; pos < end;) {
      const i = Math.floor(pos / CHUNK);
      const from = pos - i * CHUNK;
      const n = Math.min(CHUNK - from, end - pos);
      const chunk = node.chunks[i];
      if (chunk !== undefined) out.set(chunk.subarray(from, from + n), pos - offset);
      pos += n;
    }
    return Promise.resolve(out);
  }

  write(_ctx: Ctx, ino: Ino, _fh: Fh, offset: number, data: Uint8Array): Promise<number> {
    const node = this.get(ino);
    const end = offset + data.length;
    for (let pos = offset; pos < end;) {
      const i = Math.floor(pos / CHUNK);
      const from = pos - i * CHUNK;
      const n = Math.min(CHUNK - from, end - pos);
      const piece = data.subarray(pos - offset, pos - offset + n);
      if (n === CHUNK) {
        node.chunks[i] = piece; // `data` is ours once write is called: keep it without a copy
      } else {
        let chunk = node.chunks[i];
        if (chunk === undefined) node.chunks[i] = chunk = new Uint8Array(CHUNK);
        chunk.set(piece, from);
      }
      pos += n;
    }
    if (end > node.attr.size) node.attr.size = end;
    node.attr.mtime = node.attr.ctime = now();
    return Promise.resolve(data.length);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  release(_ctx: Ctx, ino: Ino, _fh: Fh, owner: bigint, flockRelease: boolean): Promise<void> {
    if (flockRelease) this.nodes.get(ino)?.flocks.delete(owner);
    return Promise.resolve();
  }

  fsync(): Promise<void> {
    return Promise.resolve();
  }

  opendir(_ctx: Ctx, ino: Ino): Promise<Opened> {
    this.dir(ino);
    return Promise.resolve({ fh: this.nextFh++ as Fh });
  }

  readdir(
    _ctx: Ctx,
    ino: Ino,
    _fh: Fh,
    offset: number,
    limit: number,
    plus: boolean,
  ): Promise<DirEntry[]> {
    const dir = this.dir(ino);
    const out: DirEntry[] = [];
    const push = (name: Name, node: Node, next: number) => {
      const e: DirEntry = { name, ino: node.attr.ino, type: node.attr.mode & S_IFMT, next };
      if (plus) e.attr = node.attr;
      out.push(e);
    };
    if (offset < 1) push(".", dir, 1);
    if (offset < 2) push("..", this.nodes.get(dir.attr.parent) ?? dir, 2);
    for (const [name, ent] of dir.children) {
      if (out.length >= limit) break;
      if (ent.cookie <= offset) continue;
      const node = this.nodes.get(ent.ino);
      if (node !== undefined) push(name, node, ent.cookie);
    }
    return Promise.resolve(out);
  }

  releasedir(): Promise<void> {
    return Promise.resolve();
  }

  fsyncdir(): Promise<void> {
    return Promise.resolve();
  }

  statfs(): Promise<StatFs> {
    return Promise.resolve({
      blockSize: 4096,
      totalBlocks: 1 << 20,
      freeBlocks: 1 << 19,
      availBlocks: 1 << 19,
      totalFiles: 1 << 20,
      freeFiles: (1 << 20) - this.nodes.size,
      nameMax: 255,
    });
  }

  setxattr(_ctx: Ctx, ino: Ino, name: Name, value: Uint8Array, flags: number): Promise<void> {
    const node = this.get(ino);
    const has = node.xattrs.has(name);
    if (flags & XATTR_CREATE && has) throw new FsError(Errno.EEXIST, `xattr "${name}" exists`);
    if (flags & XATTR_REPLACE && !has) throw new FsError(Errno.ENODATA, `No xattr "${name}"`);
    node.xattrs.set(name, value);
    return Promise.resolve();
  }

  getxattr(_ctx: Ctx, ino: Ino, name: Name): Promise<Uint8Array> {
    const value = this.get(ino).xattrs.get(name);
    if (value === undefined) throw new FsError(Errno.ENODATA, `No xattr "${name}"`);
    return Promise.resolve(value);
  }

  listxattr(_ctx: Ctx, ino: Ino): Promise<Name[]> {
    return Promise.resolve([...this.get(ino).xattrs.keys()]);
  }

  removexattr(_ctx: Ctx, ino: Ino, name: Name): Promise<void> {
    if (!this.get(ino).xattrs.delete(name)) {
      throw new FsError(Errno.ENODATA, `No xattr "${name}"`);
    }
    return Promise.resolve();
  }

  access(_ctx: Ctx, ino: Ino): Promise<void> {
    this.get(ino);
    return Promise.resolve();
  }

  getlk(_ctx: Ctx, _ino: Ino, _fh: Fh, _owner: bigint, lock: PosixLock): Promise<PosixLock> {
    return Promise.resolve({ ...lock, type: F_UNLCK });
  }

  setlk(): Promise<void> {
    return Promise.resolve();
  }

  flock(_ctx: Ctx, ino: Ino, _fh: Fh, owner: bigint, op: number): Promise<void> {
    const node = this.get(ino);
    if (op & LOCK_UN) {
      node.flocks.delete(owner);
      return Promise.resolve();
    }
    const exclusive = (op & 2) !== 0;
    for (const [o, ex] of node.flocks) {
      if (o !== owner && (ex || exclusive)) {
        if (op & LOCK_NB) throw new FsError(Errno.EAGAIN, "Locked");
        throw new FsError(Errno.EDEADLK, "Waiting locks are not supported by the fixture");
      }
    }
    node.flocks.set(owner, exclusive);
    return Promise.resolve();
  }

  fallocate(_ctx: Ctx, ino: Ino, _fh: Fh, mode: number, offset: number, length: number) {
    const node = this.get(ino);
    if (mode !== 0) throw new FsError(Errno.ENOTSUP, "Only plain fallocate is supported");
    if (offset + length > node.attr.size) this.truncate(node, offset + length);
    return Promise.resolve();
  }

  copyFileRange(
    _ctx: Ctx,
    inoIn: Ino,
    _fhIn: Fh,
    offIn: number,
    inoOut: Ino,
    fhOut: Fh,
    offOut: number,
    length: number,
  ): Promise<number> {
    return this.read(_ctx, inoIn, _fhIn, offIn, length).then((bytes) =>
      this.write(_ctx, inoOut, fhOut, offOut, bytes.slice())
    );
  }

  lseek(_ctx: Ctx, ino: Ino, _fh: Fh, offset: number, whence: number): Promise<number> {
    const node = this.get(ino);
    if (offset >= node.attr.size) throw new FsError(Errno.ENXIO, "Past the end");
    return Promise.resolve(whence === 3 ? offset : node.attr.size);
  }

  destroy(): Promise<void> {
    this.destroyed = true;
    return Promise.resolve();
  }
}
