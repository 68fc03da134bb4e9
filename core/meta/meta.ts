/**
 * POSIX metadata over a transactional key-value engine: the {@linkcode Meta} class, the public
 * face of the parts in this folder.
 *
 * Every change is one {@linkcode KvEngine.txn}: directory entries, inode attributes, link counts,
 * chunk slice lists and slice reference counts move together or not at all. Nothing here assumes
 * SQLite: an engine with serializable transactions and ordered prefix scans is enough, so Redis and
 * PostgreSQL engines can follow. Ids (inodes, slices) come from counters in the engine, allocated
 * in batches so that concurrent clients rarely touch the same key.
 *
 * Each method opens one transaction (read-only where it changes nothing) around a function of one
 * part: `namespace.ts` (format, inodes, entries, rename, links, xattrs), `slices.ts` and
 * `slice_reads.ts` (slice lists, references, blobs, chunk reads), `reclaim.ts` (sustained inodes,
 * garbage, usage), `sessions.ts` (mount sessions and their opens) and `patterns.ts` (access
 * patterns). The keys are listed in `keys.ts`.
 *
 * @module
 */

import type { KvEngine } from "../kv.ts";
import {
  type Attr,
  type Ctx,
  type Ino,
  type Name,
  nameFromText,
  RENAME_WHITEOUT,
  ROOT_INO,
  type SliceId,
  type StatFs,
  type Timespec,
} from "../types.ts";
import type { VolumeFormat } from "../format.ts";
import type { SliceRecord } from "../slice.ts";
import type { BlockRecord } from "../block_codec.ts";
import { decodeNum, encodeNum } from "./_codec.ts";
import { attrKey, keyInodeCounter, keySliceCounter } from "./keys.ts";
import { getAttr } from "./_inode.ts";
import * as ns from "./namespace.ts";
import type { MetaEntry } from "./namespace.ts";
import * as slices from "./slices.ts";
import type { Committed, FreedSlice, Freeing, NewSlice, WithAttr } from "./slices.ts";
import type { AttrChanges } from "./_inode.ts";
import * as reads from "./slice_reads.ts";
import type { FullChunk } from "./slice_reads.ts";
import * as reclaim from "./reclaim.ts";
import * as patterns from "./patterns.ts";
import * as sessions from "./sessions.ts";
import type { PatternEntry } from "./patterns.ts";
import * as quotas from "./quotas.ts";
import type { QuotaCheck, QuotaInfo, QuotaLimits } from "./quotas.ts";

/** Ids taken from a counter per transaction. */
const ID_BATCH = 256;

/** The metadata of one volume. */
export class Meta {
  /** The engine the metadata lives in. */
  readonly kv: KvEngine;
  /** The volume's format. */
  readonly format: VolumeFormat;
  #ids = new Map<string, { next: number; end: number; pending?: Promise<void> }>();

  private constructor(kv: KvEngine, format: VolumeFormat) {
    this.kv = kv;
    this.format = format;
  }

  /** Reads the format of a volume, or `undefined` if the engine holds none. */
  static async readFormat(kv: KvEngine): Promise<VolumeFormat | undefined> {
    return await kv.txn((tx) => ns.readFormat(tx), { readOnly: true });
  }

  /**
   * Formats a volume: stores `format` and creates the root directory. On an engine that holds a
   * volume already, succeeds only if the fixed settings match (then returns the stored format).
   */
  static async format(kv: KvEngine, format: VolumeFormat): Promise<VolumeFormat> {
    return await kv.txn((tx) => ns.format(tx, format));
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
          const start = decodeNum(await tx.get(counter));
          tx.set(counter, encodeNum(start + ID_BATCH));
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
    return this.#allocId(keyInodeCounter) as Promise<Ino>;
  }

  /** A new, never used slice id. */
  allocSliceId(): Promise<SliceId> {
    return this.#allocId(keySliceCounter) as Promise<SliceId>;
  }

  /** Attributes of `ino`. */
  getattr(ino: Ino): Promise<Attr> {
    return this.kv.txn((tx) => getAttr(tx, ino), { readOnly: true });
  }

  /** Attributes of many inodes (missing ones are `undefined`). */
  getattrs(inos: readonly Ino[]): Promise<(Attr | undefined)[]> {
    return this.kv.txn((tx) => ns.getattrs(tx, inos), { readOnly: true });
  }

  /** Looks `name` up in directory `parent` (`.` and `..` included). */
  lookup(parent: Ino, name: Name): Promise<Attr> {
    return this.kv.txn((tx) => ns.lookup(tx, parent, name), { readOnly: true });
  }

  /**
   * The attributes of the inode at `path` (UTF-8 text, `/`-separated, from the root; `/` is the
   * root): `ENOENT` if a component is missing, `ENOTDIR` if one is not a directory.
   */
  resolve(path: string): Promise<Attr> {
    const names = path.split("/").filter((n) => n !== "" && n !== ".").map(nameFromText);
    return this.kv.txn(async (tx) => {
      let a = await getAttr(tx, ROOT_INO);
      for (const n of names) a = await ns.lookup(tx, a.ino, n);
      return a;
    }, { readOnly: true });
  }

  /**
   * Changes the attributes of `ino` with `change`, which returns the new attributes (or throws).
   * `change` may run more than once.
   */
  update(ino: Ino, change: (a: Attr) => Attr): Promise<Attr> {
    return this.kv.txn((tx) => ns.update(tx, ino, change));
  }

  /**
   * Creates a node `name` in `parent`: a file, directory, device, FIFO, socket or (with `target`)
   * a symlink. `mode` carries the type bits. With `openedBy`, records in the same transaction
   * that the new node is open in that session.
   */
  async mknod(
    ctx: Ctx,
    parent: Ino,
    name: Name,
    mode: number,
    rdev: number,
    target?: Name,
    openedBy?: number,
  ): Promise<Attr> {
    ns.checkName(name);
    const ino = await this.allocIno();
    const node = { ino, ctx, parent, name, mode, rdev, target, openedBy };
    return await this.kv.txn((tx) => ns.mknod(tx, node));
  }

  /** A symlink's target. */
  readlink(ino: Ino): Promise<Name> {
    return this.kv.txn((tx) => ns.readlink(tx, ino), { readOnly: true });
  }

  /** The object key of the stored blob with content hash `hash`, if one is referenced. */
  async blob(hash: Uint8Array): Promise<string | undefined> {
    return (await this.blobs([hash]))[0];
  }

  /** {@linkcode blob} of each hash, in one read-only transaction. */
  blobs(hashes: readonly Uint8Array[]): Promise<(string | undefined)[]> {
    return this.kv.txn((tx) => slices.blobs(tx, hashes), { readOnly: true });
  }

  /** Removes a non-directory entry. */
  unlink(parent: Ino, name: Name, isOpen: (ino: Ino) => boolean): Promise<WithAttr> {
    return this.kv.txn((tx) => ns.unlink(tx, parent, name, isOpen));
  }

  /** Removes an empty directory. */
  rmdir(parent: Ino, name: Name): Promise<Attr> {
    const err = ns.rmdirError(name);
    if (err) return Promise.reject(err);
    return this.kv.txn((tx) => ns.rmdir(tx, parent, name));
  }

  /**
   * Renames `name` in `parent` to `newName` in `newParent`, atomically, with `RENAME_NOREPLACE`
   * (1), `RENAME_EXCHANGE` (2) and `RENAME_WHITEOUT` (4: a whiteout owned by `ctx`'s user takes
   * the old name) semantics.
   */
  async rename(
    parent: Ino,
    name: Name,
    newParent: Ino,
    newName: Name,
    flags: number,
    isOpen: (ino: Ino) => boolean,
    ctx?: Ctx,
  ): Promise<Freeing & { replaced?: Ino }> {
    const err = ns.renameError(flags);
    if (err) throw err;
    const whiteout = flags & RENAME_WHITEOUT
      ? { ino: await this.allocIno(), uid: ctx?.uid ?? 0, gid: ctx?.gid ?? 0 }
      : undefined;
    const move = { parent, name, newParent, newName, flags, ...(whiteout ? { whiteout } : {}) };
    return await this.kv.txn((tx) => ns.rename(tx, move, isOpen));
  }

  /** Adds a hard link to `ino` as `newName` in `newParent`. */
  link(ino: Ino, newParent: Ino, newName: Name): Promise<Attr> {
    ns.checkName(newName);
    return this.kv.txn((tx) => ns.link(tx, ino, newParent, newName));
  }

  /** All entries of a directory (without `.` and `..`). */
  listDir(ino: Ino): Promise<MetaEntry[]> {
    return this.kv.txn((tx) => ns.listDir(tx, ino), { readOnly: true });
  }

  /** Sets an extended attribute. */
  setxattr(ino: Ino, name: Name, value: Uint8Array, flags: number): Promise<void> {
    const err = ns.xattrError(name, value);
    if (err) return Promise.reject(err);
    return this.kv.txn((tx) => ns.setxattr(tx, ino, name, value, flags));
  }

  /** Reads an extended attribute; `ENODATA` if absent. */
  getxattr(ino: Ino, name: Name): Promise<Uint8Array> {
    return this.kv.txn((tx) => ns.getxattr(tx, ino, name), { readOnly: true });
  }

  /** Names of the extended attributes of `ino`. */
  listxattr(ino: Ino): Promise<Name[]> {
    return this.kv.txn((tx) => ns.listxattr(tx, ino), { readOnly: true });
  }

  /** Removes an extended attribute; `ENODATA` if absent. */
  removexattr(ino: Ino, name: Name): Promise<void> {
    return this.kv.txn((tx) => ns.removexattr(tx, ino, name));
  }

  /** The slice list of one chunk, oldest first. */
  readChunk(ino: Ino, index: number): Promise<SliceRecord[]> {
    return this.kv.txn((tx) => reads.readChunk(tx, ino, index), { readOnly: true });
  }

  /**
   * One chunk's slice list together with the block records of the slices still visible in it
   * and the bytes of their inline blocks: everything a read of the chunk needs, in one
   * transaction.
   */
  readChunkFull(ino: Ino, index: number): Promise<FullChunk> {
    return this.kv.txn((tx) => reads.readChunkFull(tx, ino, index), { readOnly: true });
  }

  /**
   * Commits written slices: adds each slice's info (one reference per record), appends the
   * records to their chunks in order, and grows the file to `length` if it is shorter; then
   * applies the attribute `changes` a writer held back (no slices: those alone).
   */
  commitSlices(
    ino: Ino,
    newSlices: readonly NewSlice[],
    length: number,
    mtime: Timespec | undefined,
    changes?: AttrChanges,
  ): Promise<Committed> {
    return this.kv.txn((tx) => slices.commitSlices(tx, ino, newSlices, length, mtime, changes));
  }

  /**
   * Sets the length of a regular file. Shrinking drops whole chunks past the end and masks the
   * tail of the last one with zeros, so that growing again reads zeros.
   */
  truncate(ino: Ino, size: number, t: Timespec): Promise<WithAttr> {
    return this.kv.txn((tx) => slices.truncate(tx, this.format.chunkSize, ino, size, t));
  }

  /** `fallocate`: punch a hole (zeros, size kept) or grow the file to cover a range. */
  fallocate(
    ino: Ino,
    off: number,
    len: number,
    punch: boolean,
    keepSize: boolean,
  ): Promise<WithAttr> {
    const cs = this.format.chunkSize;
    return this.kv.txn((tx) => slices.fallocate(tx, cs, ino, { off, len, punch, keepSize }));
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
    const copy = { inoIn, offIn, inoOut, offOut, len };
    return this.kv.txn((tx) => slices.copyRange(tx, this.format.chunkSize, copy));
  }

  /** The stored bytes of an inline block, or `undefined`. */
  inlineBlock(id: SliceId, index: number): Promise<Uint8Array | undefined> {
    return this.kv.txn((tx) => reads.inlineBlock(tx, id, index), { readOnly: true });
  }

  /** How the blocks of a committed slice are stored (empty if the slice is unknown). */
  sliceBlockRecords(id: SliceId): Promise<BlockRecord[]> {
    return this.kv.txn((tx) => reads.sliceBlockRecords(tx, id), { readOnly: true });
  }

  /** The access pattern recorded after opening `ino` (see `core/predict.ts`). */
  getPattern(ino: Ino): Promise<PatternEntry[] | undefined> {
    return this.kv.txn((tx) => patterns.getPattern(tx, ino), { readOnly: true });
  }

  /** Saves the access pattern that follows an open of `ino`. */
  setPattern(ino: Ino, pattern: readonly PatternEntry[]): Promise<void> {
    return this.kv.txn(async (tx) => {
      // Not for an inode gone meanwhile (another mount may have deleted it): no stray key.
      if (await tx.get(attrKey(ino))) patterns.setPattern(tx, ino, pattern);
    });
  }

  /** Attributes of `ino`, recording in the same transaction that it is open in session `sid`. */
  openIn(ino: Ino, sid: number): Promise<Attr> {
    return this.kv.txn(async (tx) => {
      const a = await getAttr(tx, ino);
      sessions.recordOpen(tx, ino, sid);
      return a;
    });
  }

  /**
   * Forgets that session `sid` has `inos` open; deletes those of them unlinked and open nowhere
   * else.
   */
  forgetOpens(inos: readonly Ino[], sid: number): Promise<Freeing> {
    return this.kv.txn((tx) => sessions.forgetOpens(tx, inos, sid));
  }

  /** The inodes session `sid` has open, a page at a time (see `sessions.opensOf`). */
  opensOf(
    sid: number,
    startAfter: string | undefined,
    limit: number,
  ): Promise<{ inos: Ino[]; next: string | undefined }> {
    return this.kv.txn((tx) => sessions.opensOf(tx, sid, startAfter, limit), { readOnly: true });
  }

  /** Deletes an unlinked inode whose last handle closed. */
  deleteSustained(ino: Ino): Promise<Freeing> {
    return this.kv.txn((tx) => reclaim.deleteSustained(tx, ino));
  }

  /** Inodes left unlinked-but-open by a previous run (to delete at mount). */
  listSustained(): Promise<Ino[]> {
    return this.kv.txn((tx) => reclaim.listSustained(tx), { readOnly: true });
  }

  /** Slices whose blocks await deletion. */
  listGarbage(limit = 1000): Promise<FreedSlice[]> {
    return this.kv.txn((tx) => reclaim.listGarbage(tx, limit), { readOnly: true });
  }

  /** For each id, whether a committed slice has it (in one read-only transaction). */
  slicesExist(ids: readonly SliceId[]): Promise<boolean[]> {
    return this.kv.txn((tx) => reads.slicesExist(tx, ids), { readOnly: true });
  }

  /** Forgets garbage entries whose blocks are deleted. */
  clearGarbage(ids: readonly SliceId[]): Promise<void> {
    return this.kv.txn((tx) => {
      reclaim.clearGarbage(tx, ids);
      return Promise.resolve();
    });
  }

  /** Used bytes and inodes. */
  usage(): Promise<{ space: number; inodes: number }> {
    return this.kv.txn((tx) => reclaim.usage(tx), { readOnly: true });
  }

  /**
   * `statfs(2)`: the capacity and inode limit of the format against the usage, in 4 KiB blocks;
   * for `dir` under a quota, the nearest quota's limits and usage instead (a limit it lacks is
   * the volume's).
   */
  async statfs(dir?: Ino): Promise<StatFs> {
    const f = this.format;
    const u = await this.usage();
    let cap = f.capacity, used = u.space, files = f.inodes, usedFiles = u.inodes;
    const q = dir === undefined ? undefined : (await this.quotasOf(dir))[0];
    if (q?.capacity != null) [cap, used] = [q.capacity, q.usedSpace];
    if (q?.inodes != null) [files, usedFiles] = [q.inodes, q.usedInodes];
    const bsize = 4096;
    const total = Math.floor(cap / bsize);
    const free = Math.max(0, total - Math.ceil(used / bsize));
    return {
      blockSize: bsize,
      totalBlocks: total,
      freeBlocks: free,
      availBlocks: free,
      totalFiles: files,
      freeFiles: Math.max(0, files - usedFiles),
      nameMax: 255,
    };
  }

  /** Whether the volume has any directory quota. */
  hasQuotas(): Promise<boolean> {
    return this.kv.txn((tx) => quotas.anyQuota(tx), { readOnly: true });
  }

  /** The quotas above directory `dir` (its own included), nearest first. */
  quotasOf(dir: Ino): Promise<QuotaInfo[]> {
    return this.kv.txn((tx) => quotas.quotasOf(tx, dir), { readOnly: true });
  }

  /** The quotas a change of the non-directory `ino` counts against, nearest first. */
  quotasOfFile(ino: Ino): Promise<QuotaInfo[]> {
    return this.kv.txn(async (tx) => {
      const a = await getAttr(tx, ino);
      return await quotas.quotasOf(tx, a.parent);
    }, { readOnly: true });
  }

  /** Sets the quota of directory `dir` (a new one's usage from a walk of its tree). */
  setQuota(dir: Ino, limits: Partial<QuotaLimits>): Promise<QuotaInfo> {
    return this.kv.txn((tx) => quotas.setQuota(tx, dir, limits));
  }

  /** The quota of `dir`, if any. */
  getQuota(dir: Ino): Promise<QuotaInfo | undefined> {
    return this.kv.txn((tx) => quotas.getQuota(tx, dir), { readOnly: true });
  }

  /** Every quota of the volume. */
  listQuotas(): Promise<QuotaInfo[]> {
    return this.kv.txn((tx) => quotas.listQuotas(tx), { readOnly: true });
  }

  /** Deletes the quota of `dir`; false if it had none. */
  deleteQuota(dir: Ino): Promise<boolean> {
    return this.kv.txn((tx) => quotas.deleteQuota(tx, dir));
  }

  /** Walks the tree of `dir`'s quota against its kept usage; `repair` stores the walked one. */
  checkQuota(dir: Ino, repair: boolean): Promise<QuotaCheck | undefined> {
    return this.kv.txn((tx) => quotas.checkQuota(tx, dir, repair), { readOnly: !repair });
  }

  /** Every chunk of a file with its slice records (for `slayerfs info`). */
  listChunks(ino: Ino): Promise<Array<{ index: number; records: SliceRecord[] }>> {
    return this.kv.txn((tx) => reads.listChunks(tx, ino), { readOnly: true });
  }
}
