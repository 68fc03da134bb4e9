/**
 * Applies image layers (tar streams) to a directory tree on the volume through the {@linkcode Vfs}
 * inode calls, as containerd and Docker do: whiteouts (`.wh.NAME`) remove a lower layer's entry,
 * an opaque marker (`.wh..wh..opq`) removes what lower layers put in its directory, and ownership,
 * modes (setuid too), mtimes, xattrs, hard links, symlinks, device nodes and FIFOs are kept.
 *
 * Paths are resolved one component at a time with lookups and never through a symlink: an entry
 * whose path goes through a symlink (which could point outside the image's root) or holds a `..`
 * is refused with an {@linkcode ArchiveError}, as is a hard link whose target does so.
 *
 * @module
 */

import { Errno, FsError } from "../errno.ts";
import {
  type Attr,
  type Ctx,
  type Ino,
  O_WRONLY,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
} from "../types.ts";
import type { Vfs } from "../vfs.ts";
import { ArchiveError, type ByteSource, tarEntries, type TarEntry } from "./tar.ts";
import { byteStringToBytes, decodeUtf8 } from "../_bytes.ts";

const WH = ".wh.";
const OPAQUE = ".wh..wh..opq";

/** `makedev` as glibc encodes a `dev_t` (what FUSE passes as `rdev`). */
export function makedev(major: number, minor: number): number {
  return (minor & 0xff) + (major & 0xfff) * 0x100 + Math.floor(minor / 0x100) * 0x100000 +
    Math.floor(major / 0x1000) * 0x100000000;
}

const isDir = (a: Attr) => (a.mode & S_IFMT) === S_IFDIR;
const shown = (name: string) => JSON.stringify(decodeUtf8(byteStringToBytes(name)));

function timespec(sec: number) {
  const s = Math.floor(sec);
  return { sec: s, nsec: Math.round((sec - s) * 1e9) };
}

/** What applying layers did. */
export interface ApplyStats {
  /** Entries applied (files, directories, links, nodes, whiteouts). */
  entries: number;
  /** Bytes of regular files written. */
  fileBytes: number;
}

/** Applies layers, one after another, to the tree rooted at `root`. */
export class LayerApplier {
  readonly #vfs: Vfs;
  readonly #root: Ino;
  readonly #ctx: Ctx;
  /** `parent/name` of the entries the current layer made (an opaque marker keeps them). */
  #made = new Set<string>();
  #dirTimes = new Map<Ino, number>();
  /** Totals over every layer applied. */
  readonly stats: ApplyStats = { entries: 0, fileBytes: 0 };

  /** Applies to the directory `root` of `vfs` with the credentials `ctx` (root). */
  constructor(vfs: Vfs, root: Ino, ctx: Ctx) {
    this.#vfs = vfs;
    this.#root = root;
    this.#ctx = { ...ctx, umask: 0 };
  }

  /** Applies one layer's tar from `src`. */
  async apply(src: ByteSource): Promise<void> {
    this.#made = new Set();
    this.#dirTimes = new Map();
    for await (const e of tarEntries(src)) {
      await this.#entry(e, src);
      this.stats.entries++;
    }
    const t = [...this.#dirTimes];
    for (let i = t.length - 1; i >= 0; i--) {
      const [ino, mtime] = t[i]!;
      await this.#vfs.setattr(this.#ctx, ino, { mtime: timespec(mtime), atime: timespec(mtime) });
    }
  }

  /** The components of an entry's path; `..` is refused, a leading `/` or `./` dropped. */
  #parts(name: string, what = "entry"): string[] {
    const parts = name.split("/").filter((p) => p !== "" && p !== ".");
    if (parts.includes("..")) {
      throw new ArchiveError(`Layer ${what} ${shown(name)} has a ".." component: refused`);
    }
    return parts;
  }

  async #lookup(dir: Ino, name: string): Promise<Attr | undefined> {
    try {
      return await this.#vfs.lookup(this.#ctx, dir, name);
    } catch (err) {
      if (err instanceof FsError && err.errno === Errno.ENOENT) return undefined;
      throw err;
    }
  }

  /** The directory holding `parts`' last component, creating missing parents (0755). */
  async #parentOf(parts: string[], name: string): Promise<Ino> {
    let dir = this.#root;
    for (let i = 0; i < parts.length - 1; i++) {
      const a = await this.#lookup(dir, parts[i]!);
      if (a === undefined) {
        this.#made.add(`${dir}/${parts[i]}`);
        dir = (await this.#vfs.mkdir(this.#ctx, dir, parts[i]!, 0o755)).ino;
        continue;
      }
      if ((a.mode & S_IFMT) === S_IFLNK) {
        throw new ArchiveError(
          `Layer entry ${shown(name)} goes through the symlink ${
            shown(parts.slice(0, i + 1).join("/"))
          }: refused (it could escape the image's root)`,
        );
      }
      if (!isDir(a)) {
        throw new ArchiveError(
          `Layer entry ${shown(name)}: ${shown(parts[i]!)} is not a directory`,
        );
      }
      dir = a.ino;
    }
    return dir;
  }

  /** Removes `name` in `dir`, a whole tree if it is a directory. */
  async removeTree(dir: Ino, name: string): Promise<void> {
    const a = await this.#lookup(dir, name);
    if (a === undefined) return;
    if (isDir(a)) {
      for (const child of await this.#children(a.ino)) await this.removeTree(a.ino, child);
      await this.#vfs.rmdir(this.#ctx, dir, name);
    } else {
      await this.#vfs.unlink(this.#ctx, dir, name);
    }
  }

  async #children(dir: Ino): Promise<string[]> {
    const { fh } = await this.#vfs.opendir(this.#ctx, dir, 0);
    const names: string[] = [];
    try {
      let off = 0;
      for (;;) {
        const page = await this.#vfs.readdir(this.#ctx, dir, fh, off, 1024, false);
        if (page.length === 0) break;
        for (const e of page) if (e.name !== "." && e.name !== "..") names.push(e.name);
        off = page[page.length - 1]!.next;
      }
    } finally {
      await this.#vfs.releasedir(this.#ctx, dir, fh);
    }
    return names;
  }

  async #entry(e: TarEntry, src: ByteSource): Promise<void> {
    const parts = this.#parts(e.name);
    if (parts.length === 0) { // the root itself
      if (e.type === "5") await this.#attrs(this.#root, e, true);
      return;
    }
    const parent = await this.#parentOf(parts, e.name);
    const base = parts[parts.length - 1]!;
    if (base === OPAQUE) {
      for (const child of await this.#children(parent)) {
        if (!this.#made.has(`${parent}/${child}`)) await this.removeTree(parent, child);
      }
      return;
    }
    if (base.startsWith(WH)) {
      if (!base.startsWith(WH + WH)) await this.removeTree(parent, base.slice(WH.length));
      return; // other .wh..wh. names are aufs bookkeeping
    }
    const existing = await this.#lookup(parent, base);
    if (existing && e.type === "5" && isDir(existing)) {
      await this.#attrs(existing.ino, e, true);
      this.#made.add(`${parent}/${base}`);
      return;
    }
    if (existing) await this.removeTree(parent, base);
    const vfs = this.#vfs;
    const ctx = this.#ctx;
    let attr: Attr;
    switch (e.type) {
      case "5":
        attr = await vfs.mkdir(ctx, parent, base, e.mode);
        break;
      case "0":
      case "7": {
        const { attr: a, opened } = await vfs.create(ctx, parent, base, e.mode, O_WRONLY);
        attr = a;
        try {
          let off = 0;
          while (off < e.size) {
            const chunk = await src.read(Math.min(e.size - off, 1 << 20));
            if (chunk.byteLength === 0) throw new ArchiveError("The layer is truncated");
            await vfs.write(ctx, a.ino, opened.fh, off, chunk);
            off += chunk.byteLength;
          }
          await vfs.flush(ctx, a.ino, opened.fh, 0n);
        } finally {
          await vfs.release(ctx, a.ino, opened.fh, 0n, false);
        }
        this.stats.fileBytes += e.size;
        break;
      }
      case "1": {
        const tparts = this.#parts(e.linkname, "hard link target");
        if (tparts.length === 0) throw new ArchiveError(`Hard link ${shown(e.name)} to the root`);
        const tdir = await this.#parentOf(tparts, e.linkname);
        const target = await this.#lookup(tdir, tparts[tparts.length - 1]!);
        if (!target || isDir(target)) {
          throw new ArchiveError(
            `Hard link ${shown(e.name)}: its target ${shown(e.linkname)} is missing`,
          );
        }
        await vfs.link(ctx, target.ino, parent, base);
        this.#made.add(`${parent}/${base}`);
        return; // the target's attributes are the link's
      }
      case "2":
        attr = await vfs.symlink(ctx, parent, base, e.linkname);
        break;
      case "3":
      case "4":
      case "6": {
        const type = e.type === "3" ? S_IFCHR : e.type === "4" ? S_IFBLK : S_IFIFO;
        const rdev = e.type === "6" ? 0 : makedev(e.devmajor, e.devminor);
        attr = await vfs.mknod(ctx, parent, base, type | e.mode, rdev);
        break;
      }
      default:
        throw new ArchiveError(`Layer entry ${shown(e.name)} has an unsupported type "${e.type}"`);
    }
    this.#made.add(`${parent}/${base}`);
    await this.#attrs(attr.ino, e, e.type === "5", e.type === "2");
  }

  async #attrs(ino: Ino, e: TarEntry, dir: boolean, symlink = false): Promise<void> {
    const ctx = this.#ctx;
    await this.#vfs.setattr(ctx, ino, {
      uid: e.uid,
      gid: e.gid,
      ...(symlink ? {} : { mode: e.mode }),
    });
    for (const [name, value] of e.xattrs) await this.#vfs.setxattr(ctx, ino, name, value, 0);
    if (dir) this.#dirTimes.set(ino, e.mtime);
    else {
      await this.#vfs.setattr(ctx, ino, { mtime: timespec(e.mtime), atime: timespec(e.mtime) });
    }
  }
}
