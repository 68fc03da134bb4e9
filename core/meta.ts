/**
 * POSIX metadata over a transactional key-value engine.
 *
 * Every change is one {@linkcode KvEngine.txn}: directory entries, inode attributes, link counts,
 * chunk slice lists and slice reference counts move together or not at all. Nothing here assumes
 * SQLite: an engine with serializable transactions and ordered prefix scans is enough, so Redis and
 * PostgreSQL engines can follow. Ids (inodes, slices) come from counters in the engine, allocated
 * in batches so that concurrent clients rarely touch the same key.
 *
 * @module
 */

import type { KvEngine, KvTxn } from "./kv.ts";
import { Errno, FsError } from "./errno.ts";
import {
  type Attr,
  type Ctx,
  type Ino,
  type Name,
  ROOT_INO,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  S_ISGID,
  type SliceId,
  type Timespec,
  XATTR_CREATE,
  XATTR_REPLACE,
} from "./types.ts";
import * as C from "./_codec.ts";
import {
  concatBytes,
  decodeRecords,
  encodeRecords,
  resolveSegments,
  type SliceRecord,
} from "./slice.ts";
import type { VolumeFormat } from "./format.ts";
import type { PatternEntry } from "./predict.ts";
import {
  BLOCK_INLINE,
  type BlockRecord,
  decodeBlockRecords,
  encodeBlockRecords,
} from "./block_codec.ts";

/** A slice whose blocks may be deleted once the transaction that freed it has committed. */
export interface FreedSlice {
  id: SliceId;
  size: number;
  /** Keys of shared (dedup) blobs whose last reference went with it. */
  blobs?: string[];
}

/** A dedup block that a commit found no stored blob for: upload it and commit again. */
export class NeedUploadError extends Error {
  /** `[sliceId, blockIndex]` of each block to upload. */
  readonly blocks: Array<[SliceId, number]>;
  /** Creates the error. */
  constructor(blocks: Array<[SliceId, number]>) {
    super(`${blocks.length} deduplicated blocks need uploading`);
    this.name = "NeedUploadError";
    this.blocks = blocks;
  }
}

/** The stored blob of a dedup block. */
function encodeBlob(refs: number, key: string): Uint8Array {
  const k = new TextEncoder().encode(key);
  const b = new Uint8Array(4 + k.length);
  new DataView(b.buffer).setUint32(0, refs);
  b.set(k, 4);
  return b;
}

function decodeBlob(b: Uint8Array): { refs: number; key: string } {
  return {
    refs: new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0),
    key: new TextDecoder().decode(b.subarray(4)),
  };
}

/** The result of a change that may free slices. */
export interface Freeing {
  freed: FreedSlice[];
}

/** The result of a change to an inode that may free slices. */
export interface WithAttr extends Freeing {
  attr: Attr;
}

/** A directory listing entry. */
export interface MetaEntry {
  name: Name;
  ino: Ino;
  type: number;
}

/** A slice to add to a chunk's list. */
export interface NewSlice {
  chunk: number;
  record: SliceRecord;
  /** How each block of the slice is stored. */
  blocks: readonly BlockRecord[];
  /** For dedup blocks: the key this writer uploaded the blob under, if it did. */
  uploaded?: readonly (string | undefined)[];
}

const NAME_MAX = 255;
const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65536;
const COMPACT_AT = 64;
const ID_BATCH = 256;

/** The current time. */
export function now(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

function checkName(name: Name): void {
  if (name.length === 0) throw new FsError(Errno.ENOENT, "Empty name");
  if (name.length > NAME_MAX) throw new FsError(Errno.ENAMETOOLONG, `Name too long`);
  if (name === "." || name === "..") throw new FsError(Errno.EEXIST, `Name "${name}" is reserved`);
}

const isDir = (a: Attr) => (a.mode & S_IFMT) === S_IFDIR;

function sliceInfo(refs: number, size: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, refs);
  v.setUint32(4, size);
  return b;
}

function readSliceInfo(b: Uint8Array): { refs: number; size: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { refs: v.getUint32(0), size: v.getUint32(4) };
}

/** The metadata of one volume. */
export class Meta {
  readonly kv: KvEngine;
  readonly format: VolumeFormat;
  #ids = new Map<string, { next: number; end: number; pending?: Promise<void> }>();

  private constructor(kv: KvEngine, format: VolumeFormat) {
    this.kv = kv;
    this.format = format;
  }

  /** Reads the format of a volume, or `undefined` if the engine holds none. */
  static async readFormat(kv: KvEngine): Promise<VolumeFormat | undefined> {
    const raw = await kv.txn((tx) => tx.get(C.keyFormat), { readOnly: true });
    return raw ? C.decodeJson<VolumeFormat>(raw) : undefined;
  }

  /**
   * Formats a volume: stores `format` and creates the root directory. On an engine that holds a
   * volume already, succeeds only if the fixed settings match (then returns the stored format).
   */
  static async format(kv: KvEngine, format: VolumeFormat): Promise<VolumeFormat> {
    return await kv.txn(async (tx) => {
      const raw = await tx.get(C.keyFormat);
      if (raw) {
        const old = C.decodeJson<VolumeFormat>(raw);
        for (
          const k of [
            "name",
            "blockSize",
            "chunkSize",
            "compression",
            "storage",
            "dedup",
            "inlineMax",
          ] as const
        ) {
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
      tx.set(C.keyFormat, C.encodeJson(format));
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
      tx.set(C.attrKey(ROOT_INO), C.encodeAttr(root));
      tx.set(C.keyInodeCounter, C.encodeNum(2));
      tx.set(C.keySliceCounter, C.encodeNum(1));
      tx.set(C.keyUsedInodes, C.encodeNum(1));
      return format;
    });
  }

  /** Opens a formatted volume; throws if the engine holds none. */
  static async open(kv: KvEngine): Promise<Meta> {
    const format = await Meta.readFormat(kv);
    if (!format) {
      throw new Error("The metadata engine holds no volume: run `slayerfs format` first");
    }
    if (format.version !== 1) {
      throw new Error(`Unsupported volume format version ${format.version}`);
    }
    return new Meta(kv, format);
  }

  async #allocId(counter: string): Promise<number> {
    let st = this.#ids.get(counter);
    if (!st) this.#ids.set(counter, st = { next: 0, end: 0 });
    while (st.next >= st.end) {
      if (!st.pending) {
        const s = st;
        s.pending = this.kv.txn(async (tx) => {
          const start = C.decodeNum(await tx.get(counter));
          tx.set(counter, C.encodeNum(start + ID_BATCH));
          return start;
        }).then((start) => {
          s.next = start;
          s.end = start + ID_BATCH;
        }).finally(() => {
          s.pending = undefined;
        });
      }
      await st.pending;
    }
    return st.next++;
  }

  /** A new, never used inode number. */
  allocIno(): Promise<Ino> {
    return this.#allocId(C.keyInodeCounter) as Promise<Ino>;
  }

  /** A new, never used slice id. */
  allocSliceId(): Promise<SliceId> {
    return this.#allocId(C.keySliceCounter) as Promise<SliceId>;
  }

  async #attr(tx: KvTxn, ino: Ino): Promise<Attr> {
    const raw = await tx.get(C.attrKey(ino));
    if (!raw) throw new FsError(Errno.ENOENT, `No inode ${ino}`);
    return C.decodeAttr(ino, raw);
  }

  async #dirAttr(tx: KvTxn, ino: Ino): Promise<Attr> {
    const a = await this.#attr(tx, ino);
    if (!isDir(a)) throw new FsError(Errno.ENOTDIR, `Inode ${ino} is not a directory`);
    return a;
  }

  #put(tx: KvTxn, a: Attr): void {
    tx.set(C.attrKey(a.ino), C.encodeAttr(a));
  }

  async #entry(tx: KvTxn, parent: Ino, name: Name) {
    const raw = await tx.get(C.entryKey(parent, name));
    return raw ? C.decodeEntry(raw) : undefined;
  }

  async #bump(tx: KvTxn, key: string, delta: number): Promise<void> {
    if (delta === 0) return;
    tx.set(key, C.encodeNum(C.decodeNum(await tx.get(key)) + delta));
  }

  /** Attributes of `ino`. */
  getattr(ino: Ino): Promise<Attr> {
    return this.kv.txn((tx) => this.#attr(tx, ino), { readOnly: true });
  }

  /** Attributes of many inodes (missing ones are `undefined`). */
  getattrs(inos: readonly Ino[]): Promise<(Attr | undefined)[]> {
    return this.kv.txn(async (tx) => {
      const raws = await tx.getMany(inos.map(C.attrKey));
      return raws.map((r, i) => r ? C.decodeAttr(inos[i]!, r) : undefined);
    }, { readOnly: true });
  }

  /** Looks `name` up in directory `parent` (`.` and `..` included). */
  lookup(parent: Ino, name: Name): Promise<Attr> {
    return this.kv.txn(async (tx) => {
      if (name === ".") return await this.#dirAttr(tx, parent);
      if (name === "..") return await this.#attr(tx, (await this.#dirAttr(tx, parent)).parent);
      const e = await this.#entry(tx, parent, name);
      if (!e) {
        await this.#dirAttr(tx, parent);
        throw new FsError(Errno.ENOENT);
      }
      return await this.#attr(tx, e.ino);
    }, { readOnly: true });
  }

  /**
   * Changes the attributes of `ino` with `change`, which returns the new attributes (or throws).
   * `change` may run more than once.
   */
  update(ino: Ino, change: (a: Attr) => Attr): Promise<Attr> {
    return this.kv.txn(async (tx) => {
      const a = change(await this.#attr(tx, ino));
      this.#put(tx, a);
      return a;
    });
  }

  /**
   * Creates a node `name` in `parent`: a file, directory, device, FIFO, socket or (with `target`)
   * a symlink. `mode` carries the type bits.
   */
  async mknod(
    ctx: Ctx,
    parent: Ino,
    name: Name,
    mode: number,
    rdev: number,
    target?: Name,
  ): Promise<Attr> {
    checkName(name);
    const ino = await this.allocIno();
    return await this.kv.txn(async (tx) => {
      const p = await this.#dirAttr(tx, parent);
      if (p.nlink === 0) throw new FsError(Errno.ENOENT, "Directory was removed");
      if (await tx.get(C.entryKey(parent, name))) throw new FsError(Errno.EEXIST);
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
        parent: type === S_IFDIR ? parent : 0 as Ino,
      };
      this.#put(tx, a);
      if (target !== undefined) {
        const b = new Uint8Array(target.length);
        for (let i = 0; i < target.length; i++) b[i] = target.charCodeAt(i);
        tx.set(C.symlinkKey(ino), b);
      }
      tx.set(C.entryKey(parent, name), C.encodeEntry(type, ino));
      p.mtime = p.ctime = t;
      if (type === S_IFDIR) p.nlink++;
      this.#put(tx, p);
      await this.#bump(tx, C.keyUsedInodes, 1);
      return a;
    });
  }

  /** A symlink's target. */
  readlink(ino: Ino): Promise<Name> {
    return this.kv.txn(async (tx) => {
      const raw = await tx.get(C.symlinkKey(ino));
      if (!raw) {
        await this.#attr(tx, ino);
        throw new FsError(Errno.EINVAL, `Inode ${ino} is not a symlink`);
      }
      let s = "";
      for (const b of raw) s += String.fromCharCode(b);
      return s;
    }, { readOnly: true });
  }

  /** Removes everything of an inode whose last link is gone; returns freed slices. */
  async #dropInode(tx: KvTxn, a: Attr, freed: FreedSlice[]): Promise<void> {
    const ino = a.ino;
    tx.delete(C.attrKey(ino));
    tx.delete(C.symlinkKey(ino));
    tx.delete(C.sustainedKey(ino));
    tx.delete("P" + C.u64(ino));
    for (const [k] of await tx.scan(C.xattrPrefix(ino), { keysOnly: true })) tx.delete(k);
    if ((a.mode & S_IFMT) === S_IFREG) {
      const chunks = await tx.scan(C.chunkPrefix(ino));
      const recs: SliceRecord[] = [];
      for (const [k, v] of chunks) {
        tx.delete(k);
        recs.push(...decodeRecords(v));
      }
      await this.#unref(tx, recs, freed);
      await this.#bump(tx, C.keyUsedSpace, -spaceOf(a.size));
    }
    await this.#bump(tx, C.keyUsedInodes, -1);
  }

  /** Drops one reference per record; slices reaching zero go to the garbage list. */
  async #unref(tx: KvTxn, recs: readonly SliceRecord[], freed: FreedSlice[]): Promise<void> {
    await this.#ref(tx, recs, -1, freed);
  }

  async #ref(
    tx: KvTxn,
    recs: readonly SliceRecord[],
    delta: number,
    freed: FreedSlice[],
  ): Promise<void> {
    const counts = new Map<number, number>();
    for (const r of recs) if (r.id !== 0) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
    if (counts.size === 0) return;
    const ids = [...counts.keys()] as SliceId[];
    const raws = await tx.getMany(ids.map(C.sliceKey));
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const raw = raws[i];
      if (!raw) continue; // never committed or already freed: nothing to count
      const info = readSliceInfo(raw);
      const refs = info.refs + delta * counts.get(id)!;
      if (refs <= 0) {
        tx.delete(C.sliceKey(id));
        const blobs: string[] = [];
        const records = decodeBlockRecords(raw.subarray(8));
        for (let bi = 0; bi < records.length; bi++) {
          const b = records[bi]!;
          if (b.flags & BLOCK_INLINE) tx.delete(C.inlineKey(id, bi));
          if (b.hash) {
            const key = await this.#unrefBlob(tx, b.hash);
            if (key) blobs.push(key);
          }
        }
        // A slice whose blocks all lived in the metadata leaves nothing in the store.
        const size = records.length && records.every((b) => b.flags & BLOCK_INLINE) ? 0 : info.size;
        tx.set(C.garbageKey(id), encodeGarbage(size, blobs));
        freed.push(blobs.length ? { id, size, blobs } : { id, size });
      } else {
        tx.set(C.sliceKey(id), concatBytes(sliceInfo(refs, info.size), raw.subarray(8)));
      }
    }
  }

  /** Drops one reference to a dedup blob; returns its object key if that was the last. */
  async #unrefBlob(tx: KvTxn, hash: Uint8Array): Promise<string | undefined> {
    const k = C.blobKey(hash);
    const raw = await tx.get(k);
    if (!raw) return undefined;
    const b = decodeBlob(raw);
    if (b.refs <= 1) {
      tx.delete(k);
      return b.key;
    }
    tx.set(k, encodeBlob(b.refs - 1, b.key));
    return undefined;
  }

  /** The object key of the stored blob with content hash `hash`, if one is referenced. */
  async blob(hash: Uint8Array): Promise<string | undefined> {
    return (await this.blobs([hash]))[0];
  }

  /** {@linkcode blob} of each hash, in one read-only transaction. */
  blobs(hashes: readonly Uint8Array[]): Promise<(string | undefined)[]> {
    return this.kv.txn(async (tx) => {
      const raws = await tx.getMany(hashes.map(C.blobKey));
      return raws.map((raw) => raw ? decodeBlob(raw).key : undefined);
    }, { readOnly: true });
  }

  async #unlinkInode(
    tx: KvTxn,
    a: Attr,
    isOpen: (ino: Ino) => boolean,
    freed: FreedSlice[],
    t: Timespec,
  ): Promise<void> {
    a.nlink--;
    a.ctime = t;
    if (a.nlink > 0) {
      this.#put(tx, a);
    } else if (isOpen(a.ino)) {
      this.#put(tx, a);
      tx.set(C.sustainedKey(a.ino), new Uint8Array(1));
    } else {
      await this.#dropInode(tx, a, freed);
    }
  }

  /** Removes a non-directory entry. */
  unlink(parent: Ino, name: Name, isOpen: (ino: Ino) => boolean): Promise<WithAttr> {
    return this.kv.txn(async (tx) => {
      const freed: FreedSlice[] = [];
      const p = await this.#dirAttr(tx, parent);
      const e = await this.#entry(tx, parent, name);
      if (!e) throw new FsError(Errno.ENOENT);
      const a = await this.#attr(tx, e.ino);
      if (isDir(a)) throw new FsError(Errno.EISDIR, `"${name}" is a directory`);
      const t = now();
      tx.delete(C.entryKey(parent, name));
      await this.#unlinkInode(tx, a, isOpen, freed, t);
      p.mtime = p.ctime = t;
      this.#put(tx, p);
      return { attr: a, freed };
    });
  }

  /** Removes an empty directory. */
  rmdir(parent: Ino, name: Name): Promise<Attr> {
    if (name === ".") return Promise.reject(new FsError(Errno.EINVAL));
    if (name === "..") return Promise.reject(new FsError(Errno.ENOTEMPTY));
    return this.kv.txn(async (tx) => {
      const p = await this.#dirAttr(tx, parent);
      const e = await this.#entry(tx, parent, name);
      if (!e) throw new FsError(Errno.ENOENT);
      const a = await this.#attr(tx, e.ino);
      if (!isDir(a)) throw new FsError(Errno.ENOTDIR, `"${name}" is not a directory`);
      if ((await tx.scan(C.entryPrefix(a.ino), { limit: 1, keysOnly: true })).length) {
        throw new FsError(Errno.ENOTEMPTY);
      }
      const t = now();
      tx.delete(C.entryKey(parent, name));
      await this.#dropInode(tx, a, []);
      p.nlink--;
      p.mtime = p.ctime = t;
      this.#put(tx, p);
      return a;
    });
  }

  /** Whether `ino` is `ancestor` or lies below it. */
  async #isUnder(tx: KvTxn, ino: Ino, ancestor: Ino): Promise<boolean> {
    let cur = ino;
    for (let depth = 0; depth < 100_000; depth++) {
      if (cur === ancestor) return true;
      if (cur === ROOT_INO) return false;
      cur = (await this.#attr(tx, cur)).parent;
    }
    throw new FsError(Errno.ELOOP, "Directory tree too deep");
  }

  /**
   * Renames `name` in `parent` to `newName` in `newParent`, atomically, with `RENAME_NOREPLACE`
   * (1) and `RENAME_EXCHANGE` (2) semantics.
   */
  rename(
    parent: Ino,
    name: Name,
    newParent: Ino,
    newName: Name,
    flags: number,
    isOpen: (ino: Ino) => boolean,
  ): Promise<Freeing & { replaced?: Ino }> {
    if (flags & ~3 || flags === 3) return Promise.reject(new FsError(Errno.EINVAL));
    return this.kv.txn(async (tx) => {
      const freed: FreedSlice[] = [];
      if (name === "." || name === ".." || newName === "." || newName === "..") {
        throw new FsError(Errno.EBUSY, "Cannot rename . or ..");
      }
      if (newName.length > NAME_MAX) throw new FsError(Errno.ENAMETOOLONG);
      const sp = await this.#dirAttr(tx, parent);
      const dp = parent === newParent ? sp : await this.#dirAttr(tx, newParent);
      const se = await this.#entry(tx, parent, name);
      if (!se) throw new FsError(Errno.ENOENT);
      const de = await this.#entry(tx, newParent, newName);
      const exchange = (flags & 2) !== 0;
      if (flags & 1 && de) throw new FsError(Errno.EEXIST);
      if (exchange && !de) throw new FsError(Errno.ENOENT);
      if (parent === newParent && name === newName) return { freed };
      const src = await this.#attr(tx, se.ino);
      const srcDir = isDir(src);
      if (srcDir && newParent !== parent && await this.#isUnder(tx, newParent, src.ino)) {
        throw new FsError(Errno.EINVAL, "Cannot move a directory into itself");
      }
      const t = now();
      let dst: Attr | undefined;
      if (de) {
        dst = de.ino === src.ino ? src : await this.#attr(tx, de.ino);
        const dstDir = isDir(dst);
        if (exchange) {
          if (dstDir && newParent !== parent && await this.#isUnder(tx, parent, dst.ino)) {
            throw new FsError(Errno.EINVAL, "Cannot move a directory into itself");
          }
        } else {
          if (de.ino === src.ino) return { freed }; // two links to one inode: nothing to do
          if (srcDir && !dstDir) throw new FsError(Errno.ENOTDIR);
          if (!srcDir && dstDir) throw new FsError(Errno.EISDIR);
          if (dstDir) {
            if ((await tx.scan(C.entryPrefix(dst.ino), { limit: 1, keysOnly: true })).length) {
              throw new FsError(Errno.ENOTEMPTY);
            }
          }
        }
      }
      let replaced: Ino | undefined;
      // Write the new entries.
      tx.set(C.entryKey(newParent, newName), C.encodeEntry(src.mode & S_IFMT, src.ino));
      if (exchange && dst) {
        tx.set(C.entryKey(parent, name), C.encodeEntry(dst.mode & S_IFMT, dst.ino));
      } else {
        tx.delete(C.entryKey(parent, name));
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
          this.#put(tx, dst);
        } else if (isDir(dst)) {
          dp.nlink--;
          await this.#dropInode(tx, dst, freed);
        } else {
          await this.#unlinkInode(tx, dst, isOpen, freed, t);
          replaced = dst.ino;
        }
      }
      this.#put(tx, src);
      sp.mtime = sp.ctime = t;
      this.#put(tx, sp);
      if (dp !== sp) {
        dp.mtime = dp.ctime = t;
        this.#put(tx, dp);
      }
      return replaced === undefined ? { freed } : { freed, replaced };
    });
  }

  /** Adds a hard link to `ino` as `newName` in `newParent`. */
  link(ino: Ino, newParent: Ino, newName: Name): Promise<Attr> {
    checkName(newName);
    return this.kv.txn(async (tx) => {
      const p = await this.#dirAttr(tx, newParent);
      const a = await this.#attr(tx, ino);
      if (isDir(a)) throw new FsError(Errno.EPERM, "Cannot hard-link a directory");
      if (a.nlink === 0) throw new FsError(Errno.ENOENT, "Inode was removed");
      if (a.nlink >= 0xffff_fff0) throw new FsError(Errno.EMLINK);
      if (await tx.get(C.entryKey(newParent, newName))) throw new FsError(Errno.EEXIST);
      const t = now();
      tx.set(C.entryKey(newParent, newName), C.encodeEntry(a.mode & S_IFMT, ino));
      a.nlink++;
      a.ctime = t;
      this.#put(tx, a);
      p.mtime = p.ctime = t;
      this.#put(tx, p);
      return a;
    });
  }

  /** All entries of a directory (without `.` and `..`). */
  listDir(ino: Ino): Promise<MetaEntry[]> {
    return this.kv.txn(async (tx) => {
      await this.#dirAttr(tx, ino);
      const prefix = C.entryPrefix(ino);
      const pairs = await tx.scan(prefix);
      return pairs.map(([k, v]) => {
        const e = C.decodeEntry(v);
        return { name: k.slice(prefix.length), ino: e.ino, type: e.type };
      });
    }, { readOnly: true });
  }

  /** Sets an extended attribute. */
  setxattr(ino: Ino, name: Name, value: Uint8Array, flags: number): Promise<void> {
    if (name.length === 0 || name.length > XATTR_NAME_MAX) {
      return Promise.reject(new FsError(name.length ? Errno.ERANGE : Errno.EINVAL));
    }
    if (value.byteLength > XATTR_SIZE_MAX) return Promise.reject(new FsError(Errno.E2BIG));
    return this.kv.txn(async (tx) => {
      const a = await this.#attr(tx, ino);
      const key = C.xattrKey(ino, name);
      const old = await tx.get(key);
      if (flags & XATTR_CREATE && old) throw new FsError(Errno.EEXIST);
      if (flags & XATTR_REPLACE && !old) throw new FsError(Errno.ENODATA);
      tx.set(key, value.slice());
      a.ctime = now();
      this.#put(tx, a);
    });
  }

  /** Reads an extended attribute; `ENODATA` if absent. */
  getxattr(ino: Ino, name: Name): Promise<Uint8Array> {
    return this.kv.txn(async (tx) => {
      const v = await tx.get(C.xattrKey(ino, name));
      if (v) return v;
      await this.#attr(tx, ino);
      throw new FsError(Errno.ENODATA);
    }, { readOnly: true });
  }

  /** Names of the extended attributes of `ino`. */
  listxattr(ino: Ino): Promise<Name[]> {
    return this.kv.txn(async (tx) => {
      await this.#attr(tx, ino);
      const prefix = C.xattrPrefix(ino);
      return (await tx.scan(prefix, { keysOnly: true })).map(([k]) => k.slice(prefix.length));
    }, { readOnly: true });
  }

  /** Removes an extended attribute; `ENODATA` if absent. */
  removexattr(ino: Ino, name: Name): Promise<void> {
    return this.kv.txn(async (tx) => {
      const a = await this.#attr(tx, ino);
      const key = C.xattrKey(ino, name);
      if (!await tx.get(key)) throw new FsError(Errno.ENODATA);
      tx.delete(key);
      a.ctime = now();
      this.#put(tx, a);
    });
  }

  /** The slice list of one chunk, oldest first. */
  readChunk(ino: Ino, index: number): Promise<SliceRecord[]> {
    return this.kv.txn(async (tx) => decodeRecords(await tx.get(C.chunkKey(ino, index))), {
      readOnly: true,
    });
  }

  /**
   * One chunk's slice list together with the block records of the slices still visible in it
   * and the bytes of their inline blocks: everything a read of the chunk needs, in one
   * transaction.
   */
  readChunkFull(ino: Ino, index: number): Promise<{
    records: SliceRecord[];
    blocks: Map<SliceId, BlockRecord[]>;
    inline: Map<string, Uint8Array>;
  }> {
    return this.kv.txn(async (tx) => {
      const records = decodeRecords(await tx.get(C.chunkKey(ino, index)));
      const ids = [...new Set(resolveSegments(records).map((r) => r.id))]
        .filter((id) => id !== 0);
      const raws = await tx.getMany(ids.map(C.sliceKey));
      const blocks = new Map<SliceId, BlockRecord[]>();
      const wanted: string[] = [];
      ids.forEach((id, i) => {
        const raw = raws[i];
        if (!raw) return;
        const recs = decodeBlockRecords(raw.subarray(8));
        blocks.set(id, recs);
        recs.forEach((b, bi) => {
          if (b.flags & BLOCK_INLINE) wanted.push(C.inlineKey(id, bi));
        });
      });
      const inline = new Map<string, Uint8Array>();
      const values = await tx.getMany(wanted);
      wanted.forEach((k, i) => {
        const v = values[i];
        if (v) inline.set(k, v);
      });
      return { records, blocks, inline };
    }, { readOnly: true });
  }

  /** Appends records to a chunk, compacting the list when it grows long. */
  async #append(
    tx: KvTxn,
    ino: Ino,
    chunk: number,
    recs: SliceRecord[],
    freed: FreedSlice[],
  ): Promise<void> {
    const key = C.chunkKey(ino, chunk);
    const old = await tx.get(key);
    const had = (old?.byteLength ?? 0) / 24;
    const count = had + recs.length;
    // Compact from time to time (amortised): drop records no longer visible.
    if (count <= COMPACT_AT || Math.floor(count / 32) === Math.floor(had / 32)) {
      tx.set(key, concatBytes(old, encodeRecords(recs)));
      return;
    }
    const before = decodeRecords(old);
    const after = resolveSegments([...before, ...recs]).filter((r) => r.id !== 0);
    // The references the new records bring are added by the caller; rebalance the rest.
    await this.#ref(tx, after, +1, freed);
    await this.#ref(tx, [...before, ...recs], -1, freed);
    tx.set(key, encodeRecords(after));
  }

  /**
   * Commits written slices: adds each slice's info (one reference per record), appends the
   * records to their chunks in order, and grows the file to `length` if it is shorter.
   */
  commitSlices(
    ino: Ino,
    slices: readonly NewSlice[],
    length: number,
    mtime: Timespec | undefined,
  ): Promise<WithAttr> {
    return this.kv.txn(async (tx) => {
      const freed: FreedSlice[] = [];
      const a = await this.#attr(tx, ino);
      const byChunk = new Map<number, SliceRecord[]>();
      const perSlice = new Map<
        number,
        { refs: number; size: number; blocks: readonly BlockRecord[] }
      >();
      for (const s of slices) {
        let l = byChunk.get(s.chunk);
        if (!l) byChunk.set(s.chunk, l = []);
        l.push(s.record);
        const info = perSlice.get(s.record.id) ??
          { refs: 0, size: s.record.size, blocks: s.blocks };
        info.refs++;
        perSlice.set(s.record.id, info);
      }
      const missing: Array<[SliceId, number]> = [];
      const orphans: string[] = [];
      for (const s of slices) {
        if (!perSlice.has(s.record.id) || perSlice.get(s.record.id)!.blocks !== s.blocks) continue;
        for (let bi = 0; bi < s.blocks.length; bi++) {
          const hash = s.blocks[bi]!.hash;
          if (!hash) continue;
          const k = C.blobKey(hash);
          const raw = await tx.get(k);
          const mine = s.uploaded?.[bi];
          if (raw) {
            const b = decodeBlob(raw);
            tx.set(k, encodeBlob(b.refs + 1, b.key));
            if (mine && mine !== b.key) orphans.push(mine);
          } else if (mine) {
            tx.set(k, encodeBlob(1, mine));
          } else {
            missing.push([s.record.id, bi]);
          }
        }
      }
      if (missing.length) throw new NeedUploadError(missing);
      for (const [id, info] of perSlice) {
        tx.set(
          C.sliceKey(id as SliceId),
          concatBytes(sliceInfo(info.refs, info.size), encodeBlockRecords(info.blocks)),
        );
        info.blocks.forEach((b, bi) => {
          if (b.inline) tx.set(C.inlineKey(id as SliceId, bi), b.inline);
        });
      }
      if (orphans.length) {
        // Blobs uploaded twice by racing writers: the loser's copy is garbage.
        const gid = (2 ** 52 + await this.#nextOrphan(tx)) as SliceId;
        tx.set(C.garbageKey(gid), encodeGarbage(0, orphans));
        freed.push({ id: gid, size: 0, blobs: orphans });
      }
      for (const [chunk, recs] of byChunk) await this.#append(tx, ino, chunk, recs, freed);
      const oldSize = a.size;
      if (length > a.size) a.size = length;
      if (mtime) a.mtime = a.ctime = mtime;
      this.#put(tx, a);
      await this.#bump(tx, C.keyUsedSpace, spaceOf(a.size) - spaceOf(oldSize));
      return { attr: a, freed };
    });
  }

  /**
   * Sets the length of a regular file. Shrinking drops whole chunks past the end and masks the
   * tail of the last one with zeros, so that growing again reads zeros.
   */
  truncate(ino: Ino, size: number, t: Timespec): Promise<WithAttr> {
    return this.kv.txn(async (tx) => {
      const freed: FreedSlice[] = [];
      const a = await this.#attr(tx, ino);
      if ((a.mode & S_IFMT) !== S_IFREG) throw new FsError(Errno.EINVAL, "Not a regular file");
      if (size < a.size) await this.#zeroRange(tx, ino, size, a.size - size, true, freed);
      const oldSize = a.size;
      a.size = size;
      a.mtime = a.ctime = t;
      this.#put(tx, a);
      await this.#bump(tx, C.keyUsedSpace, spaceOf(size) - spaceOf(oldSize));
      return { attr: a, freed };
    });
  }

  /** Makes `[off, off+len)` read as zeros; with `toEnd`, drops whole chunks past `off`. */
  async #zeroRange(
    tx: KvTxn,
    ino: Ino,
    off: number,
    len: number,
    toEnd: boolean,
    freed: FreedSlice[],
  ): Promise<void> {
    const cs = this.format.chunkSize;
    const end = off + len;
    const first = Math.floor(off / cs);
    if (toEnd) {
      const keepFirst = off % cs !== 0;
      const startDrop = keepFirst ? first + 1 : first;
      const chunks = await tx.scan(C.chunkPrefix(ino));
      const dropped: SliceRecord[] = [];
      const pfx = C.chunkPrefix(ino).length;
      for (const [k, v] of chunks) {
        if (C.readU32(k, pfx) < startDrop) continue;
        tx.delete(k);
        dropped.push(...decodeRecords(v));
      }
      await this.#unref(tx, dropped, freed);
      if (keepFirst && await tx.get(C.chunkKey(ino, first))) {
        const pos = off % cs;
        await this.#append(tx, ino, first, [{
          pos,
          id: 0 as SliceId,
          size: 0,
          off: 0,
          len: cs - pos,
        }], freed);
      }
      return;
    }
    for (let c = first; c * cs < end; c++) {
      const from = Math.max(off, c * cs) - c * cs;
      const to = Math.min(end, (c + 1) * cs) - c * cs;
      if (!await tx.get(C.chunkKey(ino, c))) continue;
      const rec = { pos: from, id: 0 as SliceId, size: 0, off: 0, len: to - from };
      await this.#append(tx, ino, c, [rec], freed);
    }
  }

  /** `fallocate`: punch a hole (zeros, size kept) or grow the file to cover a range. */
  fallocate(
    ino: Ino,
    off: number,
    len: number,
    punch: boolean,
    keepSize: boolean,
  ): Promise<WithAttr> {
    return this.kv.txn(async (tx) => {
      const freed: FreedSlice[] = [];
      const a = await this.#attr(tx, ino);
      if ((a.mode & S_IFMT) !== S_IFREG) throw new FsError(Errno.ENODEV);
      const t = now();
      if (punch) {
        const end = Math.min(off + len, a.size);
        if (end > off) await this.#zeroRange(tx, ino, off, end - off, false, freed);
      } else if (!keepSize && off + len > a.size) {
        await this.#bump(tx, C.keyUsedSpace, spaceOf(off + len) - spaceOf(a.size));
        a.size = off + len;
      }
      a.mtime = a.ctime = t;
      this.#put(tx, a);
      return { attr: a, freed };
    });
  }

  /**
   * Copies `[offIn, offIn+len)` of `inoIn` to `offOut` of `inoOut` by sharing slices (only
   * metadata changes; no bytes move). Returns the bytes copied.
   */
  copyRange(
    inoIn: Ino,
    offIn: number,
    inoOut: Ino,
    offOut: number,
    len: number,
  ): Promise<WithAttr & { copied: number }> {
    return this.kv.txn(async (tx) => {
      const freed: FreedSlice[] = [];
      const src = await this.#attr(tx, inoIn);
      const dst = inoIn === inoOut ? src : await this.#attr(tx, inoOut);
      if ((src.mode & S_IFMT) !== S_IFREG || (dst.mode & S_IFMT) !== S_IFREG) {
        throw new FsError(Errno.EINVAL, "Not a regular file");
      }
      const n = Math.max(0, Math.min(len, src.size - offIn));
      if (n === 0) return { copied: 0, attr: dst, freed };
      if (inoIn === inoOut && offIn < offOut + n && offOut < offIn + n) {
        throw new FsError(Errno.EINVAL, "Overlapping ranges in the same file");
      }
      const cs = this.format.chunkSize;
      // Visible segments of the source range, in file offsets.
      const pieces: Array<{ at: number; len: number; id: SliceId; size: number; off: number }> = [];
      for (let c = Math.floor(offIn / cs); c * cs < offIn + n; c++) {
        const base = c * cs;
        const lo = Math.max(offIn, base);
        const hi = Math.min(offIn + n, base + cs);
        const segs = resolveSegments(decodeRecords(await tx.get(C.chunkKey(inoIn, c))));
        let cur = lo;
        for (const s of segs) {
          const sLo = Math.max(base + s.pos, lo);
          const sHi = Math.min(base + s.pos + s.len, hi);
          if (sHi <= sLo) continue;
          if (sLo > cur) {
            pieces.push({ at: cur, len: sLo - cur, id: 0 as SliceId, size: 0, off: 0 });
          }
          pieces.push({
            at: sLo,
            len: sHi - sLo,
            id: s.id,
            size: s.size,
            off: s.id === 0 ? 0 : s.off + (sLo - base - s.pos),
          });
          cur = sHi;
        }
        if (cur < hi) pieces.push({ at: cur, len: hi - cur, id: 0 as SliceId, size: 0, off: 0 });
      }
      // Place them at the destination, split at destination chunk boundaries.
      const byChunk = new Map<number, SliceRecord[]>();
      const added: SliceRecord[] = [];
      for (const p of pieces) {
        let d = offOut + (p.at - offIn);
        let done = 0;
        while (done < p.len) {
          const c = Math.floor(d / cs);
          const take = Math.min(p.len - done, (c + 1) * cs - d);
          const rec: SliceRecord = {
            pos: d - c * cs,
            id: p.id,
            size: p.size,
            off: p.id === 0 ? 0 : p.off + done,
            len: take,
          };
          let l = byChunk.get(c);
          if (!l) byChunk.set(c, l = []);
          l.push(rec);
          added.push(rec);
          d += take;
          done += take;
        }
      }
      // Zero records only matter where the destination chunk already has data.
      await this.#ref(tx, added, +1, freed);
      for (const [c, recs] of byChunk) {
        const exists = !!await tx.get(C.chunkKey(inoOut, c));
        const keep = exists ? recs : recs.filter((r) => r.id !== 0);
        if (keep.length) await this.#append(tx, inoOut, c, keep, freed);
      }
      const t = now();
      const oldSize = dst.size;
      dst.size = Math.max(dst.size, offOut + n);
      dst.mtime = dst.ctime = t;
      this.#put(tx, dst);
      await this.#bump(tx, C.keyUsedSpace, spaceOf(dst.size) - spaceOf(oldSize));
      return { copied: n, attr: dst, freed };
    });
  }

  /** The stored bytes of an inline block, or `undefined`. */
  inlineBlock(id: SliceId, index: number): Promise<Uint8Array | undefined> {
    return this.kv.txn((tx) => tx.get(C.inlineKey(id, index)), { readOnly: true });
  }

  /** How the blocks of a committed slice are stored (empty if the slice is unknown). */
  sliceBlockRecords(id: SliceId): Promise<BlockRecord[]> {
    return this.kv.txn(async (tx) => {
      const raw = await tx.get(C.sliceKey(id));
      return raw ? decodeBlockRecords(raw.subarray(8)) : [];
    }, { readOnly: true });
  }

  /** The access pattern recorded after opening `ino` (see `predict.ts`). */
  getPattern(ino: Ino): Promise<PatternEntry[] | undefined> {
    return this.kv.txn(async (tx) => {
      const raw = await tx.get("P" + C.u64(ino));
      return raw ? C.decodeJson<PatternEntry[]>(raw) : undefined;
    }, { readOnly: true });
  }

  /** Saves the access pattern that follows an open of `ino`. */
  setPattern(ino: Ino, pattern: readonly PatternEntry[]): Promise<void> {
    return this.kv.txn((tx) => {
      tx.set("P" + C.u64(ino), C.encodeJson(pattern));
      return Promise.resolve();
    });
  }

  /** Deletes an unlinked inode whose last handle closed. */
  deleteSustained(ino: Ino): Promise<Freeing> {
    return this.kv.txn(async (tx) => {
      const freed: FreedSlice[] = [];
      const raw = await tx.get(C.attrKey(ino));
      if (!raw) return { freed };
      const a = C.decodeAttr(ino, raw);
      if (a.nlink === 0) await this.#dropInode(tx, a, freed);
      else tx.delete(C.sustainedKey(ino));
      return { freed };
    });
  }

  /** Inodes left unlinked-but-open by a previous run (to delete at mount). */
  listSustained(): Promise<Ino[]> {
    return this.kv.txn(async (tx) => {
      const pairs = await tx.scan(C.sustainedPrefix, { keysOnly: true });
      return pairs.map(([k]) => C.readU64(k, 1) as Ino);
    }, { readOnly: true });
  }

  async #nextOrphan(tx: KvTxn): Promise<number> {
    const n = C.decodeNum(await tx.get("Norphan")) + 1;
    tx.set("Norphan", C.encodeNum(n));
    return n;
  }

  /** Slices whose blocks await deletion. */
  listGarbage(limit = 1000): Promise<FreedSlice[]> {
    return this.kv.txn(async (tx) => {
      const pairs = await tx.scan(C.garbagePrefix, { limit });
      return pairs.map(([k, v]) => {
        const g = decodeGarbage(v);
        const id = C.readU64(k, 1) as SliceId;
        return g.blobs.length ? { id, size: g.size, blobs: g.blobs } : { id, size: g.size };
      });
    }, { readOnly: true });
  }

  /** For each id, whether a committed slice has it (in one read-only transaction). */
  slicesExist(ids: readonly SliceId[]): Promise<boolean[]> {
    return this.kv.txn(async (tx) => {
      const raws = await tx.getMany(ids.map(C.sliceKey));
      return raws.map((r) => r !== undefined);
    }, { readOnly: true });
  }

  /** Forgets garbage entries whose blocks are deleted. */
  clearGarbage(ids: readonly SliceId[]): Promise<void> {
    return this.kv.txn((tx) => {
      for (const id of ids) tx.delete(C.garbageKey(id));
      return Promise.resolve();
    });
  }

  /** Used bytes and inodes. */
  usage(): Promise<{ space: number; inodes: number }> {
    return this.kv.txn(async (tx) => {
      const [s, i] = await tx.getMany([C.keyUsedSpace, C.keyUsedInodes]);
      return { space: C.decodeNum(s), inodes: C.decodeNum(i) };
    }, { readOnly: true });
  }

  /** Every chunk of a file with its slice records (for `slayerfs info`). */
  listChunks(ino: Ino): Promise<Array<{ index: number; records: SliceRecord[] }>> {
    return this.kv.txn(async (tx) => {
      const pfx = C.chunkPrefix(ino);
      return (await tx.scan(pfx)).map(([k, v]) => ({
        index: C.readU32(k, pfx.length),
        records: decodeRecords(v),
      }));
    }, { readOnly: true });
  }
}

/** A garbage entry: the slice size and the blob keys to delete with it. */
function encodeGarbage(size: number, blobs: readonly string[]): Uint8Array {
  const head = sliceInfo(0, size);
  return blobs.length ? concatBytes(head, new TextEncoder().encode(JSON.stringify(blobs))) : head;
}

function decodeGarbage(v: Uint8Array): { size: number; blobs: string[] } {
  const size = readSliceInfo(v).size;
  const blobs = v.byteLength > 8
    ? JSON.parse(new TextDecoder().decode(v.subarray(8))) as string[]
    : [];
  return { size, blobs };
}

function spaceOf(size: number): number {
  return Math.ceil(size / 4096) * 4096;
}
