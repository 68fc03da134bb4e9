/**
 * The microkernel: POSIX semantics over a metadata engine ({@linkcode Meta}) and a block store
 * ({@linkcode DataEngine}), exposed as {@linkcode FsOps} for the FUSE adapter and used directly by
 * the embedding API. Fully usable without /dev/fuse.
 *
 * @module
 */

import type { BlockStore } from "./block_store.ts";
import { DataEngine, type DataOptions } from "./data.ts";
import { Errno, FsError } from "./errno.ts";
import type { FsOps } from "./fs_ops.ts";
import { LocalLocks, type LockManager } from "./locks.ts";
import { HandleLocks } from "./_vfs_locks.ts";
import { type Meta, now } from "./meta/mod.ts";
import {
  type Attr,
  type Ctx,
  type DirEntry,
  type Fh,
  type Ino,
  type Name,
  O_ACCMODE,
  O_APPEND,
  O_RDONLY,
  O_TRUNC,
  type Opened,
  type PosixLock,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  SEEK_DATA,
  SEEK_HOLE,
  type SetAttr,
  type StatFs,
} from "./types.ts";
import { FileWriter } from "./writer.ts";
import { dirSnapshot, type OpenFile, OpenFiles, readahead } from "./_open_files.ts";
import { checkCopy, fallocateMode, reportFailure, syncHandle } from "./_open_files.ts";
import { type AtimeMode, AtimeUpdater } from "./_atime.ts";
import { XattrMisses } from "./_xattr_misses.ts";
import { FreeQueue } from "./_free_queue.ts";
import { applySetAttr, permits } from "./permissions.ts";
import { getLog } from "./log.ts";
import { seekDataOrHole } from "./_seek.ts";
import { TieredCache } from "./cache/mod.ts";
import { Predictor, type PredictorOptions } from "./predict.ts";
import type { Session } from "./session.ts";
import { SeenVersions, SessionOpens } from "./_session_opens.ts";
import { type VfsStats, vfsStats } from "./_vfs_stats.ts";

export type { VfsStats };

/** Options of a {@linkcode Vfs}. */
export interface VfsOptions extends DataOptions {
  /** Where locks live (default: in memory, for one mount). */
  locks?: LockManager;
  /** Errors no request can report (background deletion); by default logged at error level. */
  onError?: (err: unknown) => void;
  /** Predictive prefetch settings, or `false` to turn it off. */
  predict?: PredictorOptions | false;
  /** Local disk cache directories; with any, the cache is a memory + disk `TieredCache`. */
  cacheDirs?: Array<{ path: string; capacityBytes: number; minFreeRatio?: number }>;
  /**
   * This mount's session (`core/session.ts`): the Vfs records its opens in it, cleans up what
   * dead sessions held open, starts it, and closes it at {@linkcode Vfs.close}.
   */
  session?: Session;
  /** How reads change atime (`core/_atime.ts`; default `noatime`). */
  atimeMode?: AtimeMode;
}

const log = getLog("vfs");

const isDir = (a: Attr) => (a.mode & S_IFMT) === S_IFDIR;

/**
 * The filesystem of one mounted volume: {@linkcode FsOps} (whose documentation its methods share)
 * plus what the embedding API and `slayerfs status` need. Create it with {@linkcode Vfs.open}.
 */
export class Vfs implements FsOps {
  /** The volume's metadata. */
  readonly meta: Meta;
  /** The block layer: reads, writes and caches file data. */
  readonly data: DataEngine<Meta>;
  /** POSIX and BSD locks (the `locks` option). */
  readonly locks: LockManager;
  readonly #locks: HandleLocks;
  /** Predictive prefetch, unless turned off with `predict: false`. */
  readonly predictor: Predictor | undefined;
  readonly #open = new OpenFiles();
  /** Inodes whose last link went while open: delete them at their last close. */
  readonly #maybeSustained = new Set<Ino>();
  readonly #xattrMisses = new XattrMisses();
  /** What this mount saw of each file at its last open, for close-to-open coherence. */
  readonly #seen = new SeenVersions();
  /** The opens recorded in the session, with one. */
  readonly #opens: SessionOpens | undefined;
  readonly #session: Session | undefined;
  readonly #onError: (err: unknown) => void;
  readonly #atime: AtimeUpdater | undefined;
  readonly #freeQueue: FreeQueue;
  #closed = false;

  private constructor(meta: Meta, store: BlockStore, options: VfsOptions) {
    this.meta = meta;
    this.#onError = options.onError ??
      ((err) => log.error("Background error: {error}", { error: err }));
    this.data = new DataEngine(store, meta, { ...options, onError: this.#onError });
    this.#freeQueue = new FreeQueue(this.data, this.#onError);
    this.locks = options.locks ?? new LocalLocks();
    this.#locks = new HandleLocks(this.locks);
    const atime = options.atimeMode ?? "noatime";
    this.#atime = atime === "noatime" ? undefined : new AtimeUpdater(meta, atime);
    this.predictor = options.predict === false
      ? undefined
      : new Predictor(meta, this.data, options.predict ?? {});
    const session = this.#session = options.session;
    if (session) {
      this.#opens = new SessionOpens(meta, session, this.#freeQueue, this.#onError, this.#open);
    }
  }

  /** This mount's session id, with a session. */
  get sessionId(): number | undefined {
    return this.#session?.id;
  }

  /**
   * Opens the filesystem of a formatted volume and finishes what a crashed run left: deletes
   * inodes that were unlinked while open (and open in no live session) and blocks of freed
   * slices; then starts the session, if any.
   */
  static async open(meta: Meta, store: BlockStore, options: VfsOptions = {}): Promise<Vfs> {
    if (options.cacheDirs?.length && !options.cache) {
      const cache = await TieredCache.open({
        memoryBytes: options.cacheBytes ?? 32 << 20,
        dirs: options.cacheDirs,
        ...(options.onError ? { onError: options.onError } : {}),
      });
      options = { ...options, cache };
    }
    const vfs = new Vfs(meta, store, options);
    try {
      for (const ino of await meta.listSustained()) {
        const { freed } = await meta.deleteSustained(ino);
        await vfs.data.deleteSlices(freed);
      }
      await vfs.data.collectGarbage();
      await options.session?.start();
    } catch (err) {
      await vfs.data.close();
      throw err;
    }
    return vfs;
  }

  // ---- helpers ----

  #writer(ino: Ino, of: OpenFile): FileWriter {
    return of.writer ??= new FileWriter(ino, this.data, (attr, freed) => {
      of.size = attr.size;
      this.#seen.changedHere(attr);
      this.#freeQueue.add(freed);
    }, () => this.#open.dropped(ino));
  }

  #withPending(a: Attr): Attr {
    const w = this.#open.file(a.ino)?.writer;
    if (!w?.dirty && this.#seen.changedElsewhere(a)) this.#changedElsewhere(a.ino);
    if (w?.dirty) {
      if (w.pendingEnd > a.size) a.size = w.pendingEnd;
      if (w.mtime) a.mtime = a.ctime = w.mtime;
      if (a.allocated !== undefined) a.allocated = Math.min(a.size, a.allocated + w.pendingBytes);
    }
    return a;
  }

  /** Forgets what this mount cached of `ino`, changed on another mount (and the size of `of`). */
  #changedElsewhere(ino: Ino, of?: OpenFile, size?: number): void {
    this.data.invalidate(ino);
    this.#xattrMisses.forgetIno(ino);
    if (of && size !== undefined && !of.writer?.dirty) of.size = size;
  }

  async #flushIno(ino: Ino): Promise<void> {
    const w = this.#open.file(ino)?.writer;
    if (w) await w.flush();
  }

  #sizeChanged(a: Attr): void {
    const of = this.#open.file(a.ino);
    if (of) of.size = a.size;
    this.data.invalidate(a.ino);
    this.#seen.changedHere(a);
  }

  // ---- FsOps: documented there (deno doc takes a method's documentation from the interface) ----

  async lookup(_ctx: Ctx, parent: Ino, name: Name): Promise<Attr> {
    return this.#withPending(await this.meta.lookup(parent, name));
  }

  async getattr(_ctx: Ctx, ino: Ino): Promise<Attr> {
    return this.#withPending(await this.meta.getattr(ino));
  }

  async setattr(ctx: Ctx, ino: Ino, set: SetAttr): Promise<Attr> {
    if (set.size !== undefined) {
      const a = await this.meta.getattr(ino);
      if (isDir(a)) throw new FsError(Errno.EISDIR);
      if ((a.mode & S_IFMT) !== S_IFREG) throw new FsError(Errno.EINVAL);
      if (set.size < 0) throw new FsError(Errno.EINVAL);
      if (set.size > Number.MAX_SAFE_INTEGER / 2) throw new FsError(Errno.EFBIG);
      await this.#flushIno(ino);
      const { attr, freed } = await this.meta.truncate(ino, set.size, now());
      this.#sizeChanged(attr);
      this.#freeQueue.add(freed);
    }
    const needsChange = set.mode !== undefined || set.uid !== undefined ||
      set.gid !== undefined || set.atime !== undefined || set.mtime !== undefined ||
      set.ctime !== undefined;
    if (!needsChange) return this.#withPending(await this.meta.getattr(ino));
    const w = this.#open.file(ino)?.writer;
    if (w?.dirty && set.mtime !== undefined) await w.flush(); // an explicit mtime wins
    const attr = await this.meta.update(ino, (a) => applySetAttr(ctx, a, set));
    this.#seen.changedHere(attr);
    return this.#withPending(attr);
  }

  readlink(_ctx: Ctx, ino: Ino): Promise<Name> {
    return this.meta.readlink(ino);
  }

  mknod(ctx: Ctx, parent: Ino, name: Name, mode: number, rdev: number): Promise<Attr> {
    const type = mode & S_IFMT;
    if (type === S_IFDIR || type === S_IFLNK) {
      return Promise.reject(new FsError(Errno.EINVAL, "Use mkdir or symlink"));
    }
    return this.meta.mknod(ctx, parent, name, type === 0 ? mode | S_IFREG : mode, rdev);
  }

  mkdir(ctx: Ctx, parent: Ino, name: Name, mode: number): Promise<Attr> {
    return this.meta.mknod(ctx, parent, name, S_IFDIR | (mode & 0o7777), 0);
  }

  async unlink(_ctx: Ctx, parent: Ino, name: Name): Promise<void> {
    const { attr, freed } = await this.meta.unlink(parent, name, this.#open.isOpen);
    if (attr.nlink === 0 && this.#open.file(attr.ino)) this.#maybeSustained.add(attr.ino);
    this.data.invalidate(attr.ino);
    this.#freeQueue.add(freed);
  }

  async rmdir(_ctx: Ctx, parent: Ino, name: Name): Promise<void> {
    await this.meta.rmdir(parent, name);
  }

  symlink(ctx: Ctx, parent: Ino, name: Name, target: Name): Promise<Attr> {
    if (target.length === 0) return Promise.reject(new FsError(Errno.ENOENT));
    if (target.length > 4095) return Promise.reject(new FsError(Errno.ENAMETOOLONG));
    return this.meta.mknod(ctx, parent, name, S_IFLNK | 0o777, 0, target);
  }

  async rename(
    ctx: Ctx,
    parent: Ino,
    name: Name,
    newParent: Ino,
    newName: Name,
    flags: number,
  ): Promise<void> {
    const { freed, replaced } = await this.meta.rename(
      parent,
      name,
      newParent,
      newName,
      flags,
      this.#open.isOpen,
      ctx,
    );
    if (replaced !== undefined) this.#maybeSustained.add(replaced);
    this.#freeQueue.add(freed);
  }

  async link(_ctx: Ctx, ino: Ino, newParent: Ino, newName: Name): Promise<Attr> {
    return this.#withPending(await this.meta.link(ino, newParent, newName));
  }

  async open(_ctx: Ctx, ino: Ino, flags: number): Promise<Opened> {
    // Close-to-open: fresh attributes (recorded in the session at the first open here); the
    // kernel keeps its pages only if the file did not change since this mount saw it.
    const of = this.#open.file(ino);
    let a = await (this.#opens?.open(ino, of !== undefined) ?? this.meta.getattr(ino));
    const keep = this.#seen.opened(a);
    if (!keep) this.#changedElsewhere(ino, of, a.size);
    try {
      a = await this.#truncateAtOpen(a, flags);
    } catch (err) {
      if (!of) await this.#opens?.closed(ino, false); // no handle: forget the open recorded
      throw err;
    }
    if ((a.mode & S_IFMT) === S_IFREG && (flags & O_ACCMODE) !== 1) this.predictor?.onOpen(ino);
    const opened = this.#open.openFile(ino, flags, a.size, keep);
    if (!keep) opened.attrStale = true;
    return opened;
  }

  /** The checks and `O_TRUNC` of an open of `a`; returns the attributes after. */
  async #truncateAtOpen(a: Attr, flags: number): Promise<Attr> {
    const ino = a.ino;
    if (isDir(a)) {
      if ((flags & O_ACCMODE) !== O_RDONLY) throw new FsError(Errno.EISDIR);
    } else if ((flags & O_TRUNC) && (flags & O_ACCMODE) !== O_RDONLY && a.size > 0) {
      if ((a.mode & S_IFMT) === S_IFREG) {
        await this.#flushIno(ino);
        const r = await this.meta.truncate(ino, 0, now());
        a = r.attr;
        this.#sizeChanged(a);
        this.#freeQueue.add(r.freed);
      }
    }
    return a;
  }

  async create(
    ctx: Ctx,
    parent: Ino,
    name: Name,
    mode: number,
    flags: number,
  ): Promise<{ attr: Attr; opened: Opened }> {
    const mode2 = S_IFREG | (mode & 0o7777);
    const attr = await this.meta.mknod(ctx, parent, name, mode2, 0, undefined, this.#opens?.sid);
    this.#xattrMisses.created(attr.ino);
    this.#seen.opened(attr);
    return { attr, opened: this.#open.openFile(attr.ino, flags, 0) };
  }

  async read(_ctx: Ctx, ino: Ino, fh: Fh, offset: number, size: number): Promise<Uint8Array> {
    const h = this.#open.handle(fh, ino);
    await this.#atime?.touched(ino, h);
    const of = this.#open.file(ino);
    if (!of) throw new FsError(Errno.EBADF);
    const w = of.writer;
    const fileSize = Math.max(of.size, w?.dirty ? w.pendingEnd : 0);
    const end = Math.min(offset + size, fileSize);
    if (end <= offset) return new Uint8Array(0);
    const pending = w?.dirty ? w.snapshot() : undefined;
    readahead(this.data, h, ino, offset, end, fileSize);
    this.predictor?.onRead(ino, offset, end - offset);
    if (!pending) {
      // Within one cached block: reply straight from it, no copy (the block never changes).
      const view = await this.data.readView(ino, offset, end - offset);
      if (view) return view;
    }
    const out = new Uint8Array(end - offset);
    await this.data.readCommitted(ino, offset, end - offset, out);
    if (pending) w!.overlay(offset, out, pending);
    return out;
  }

  /** `write` copies the data into its pending slices before it awaits anything. */
  readonly copiesWriteData = true;

  async write(_ctx: Ctx, ino: Ino, fh: Fh, offset: number, data: Uint8Array): Promise<number> {
    const h = this.#open.handle(fh, ino);
    if ((h.flags & O_ACCMODE) === O_RDONLY) throw new FsError(Errno.EBADF);
    this.#locks.writable(fh);
    const of = this.#open.file(ino)!;
    const w = this.#writer(ino, of);
    reportFailure(h, w, "write");
    if (h.flags & O_APPEND) offset = Math.max(of.size, w.dirty ? w.pendingEnd : 0);
    if (offset + data.byteLength > Number.MAX_SAFE_INTEGER / 2) throw new FsError(Errno.EFBIG);
    await w.write(offset, data);
    reportFailure(h, w, "write"); // dropped while it waited for uploads
    return data.byteLength;
  }

  async flush(_ctx: Ctx, ino: Ino, fh: Fh, lockOwner: bigint): Promise<void> {
    const h = this.#open.handle(fh, ino);
    await this.#locks.flush(ino, lockOwner);
    await syncHandle(h, this.#open.file(ino)?.writer, "close");
  }

  async release(
    _ctx: Ctx,
    ino: Ino,
    fh: Fh,
    lockOwner: bigint,
    flockRelease: boolean,
  ): Promise<void> {
    this.#open.handle(fh, ino);
    this.#open.closeHandle(fh);
    await this.#locks.release(ino, fh, lockOwner, flockRelease);
    const of = this.#open.file(ino);
    if (!of) return;
    try {
      await of.writer?.flush();
    } finally {
      if (--of.opens <= 0 && !of.writer?.dirty) {
        this.#open.closeFile(ino);
        const unlinkedHere = this.#maybeSustained.delete(ino);
        if (unlinkedHere) this.data.invalidate(ino);
        if (this.#opens) {
          await this.#opens.closed(ino, unlinkedHere);
        } else if (unlinkedHere) {
          const { freed } = await this.meta.deleteSustained(ino);
          this.#freeQueue.add(freed);
        }
      }
    }
  }

  async fsync(_ctx: Ctx, ino: Ino, fh: Fh, _datasync: boolean): Promise<void> {
    this.#locks.writable(fh);
    await syncHandle(this.#open.handle(fh, ino), this.#open.file(ino)?.writer, "sync");
  }

  async opendir(_ctx: Ctx, ino: Ino, _flags: number): Promise<Opened> {
    const a = await this.meta.getattr(ino);
    if (!isDir(a)) throw new FsError(Errno.ENOTDIR);
    return this.#open.openDir(ino);
  }

  async readdir(
    _ctx: Ctx,
    ino: Ino,
    fh: Fh,
    offset: number,
    limit: number,
    plus: boolean,
  ): Promise<DirEntry[]> {
    const h = this.#open.handle(fh, ino);
    if (!h.dir) throw new FsError(Errno.ENOTDIR);
    // A snapshot per handle keeps offsets stable while entries come and go.
    if (offset === 0) await this.#atime?.touched(ino, h);
    if (offset === 0 || !h.dir.entries) h.dir.entries = await dirSnapshot(this.meta, ino);
    const page = h.dir.entries.slice(offset, offset + Math.max(1, limit));
    if (!plus) return page;
    const attrs = await this.meta.getattrs(page.map((e) => e.ino));
    const out: DirEntry[] = [];
    page.forEach((e, i) => {
      const a = attrs[i];
      if (a) out.push({ ...e, attr: this.#withPending(a) });
    });
    return out;
  }

  releasedir(_ctx: Ctx, _ino: Ino, fh: Fh): Promise<void> {
    this.#open.closeHandle(fh);
    return Promise.resolve();
  }

  fsyncdir(): Promise<void> {
    return Promise.resolve(); // every metadata change is committed when its request returns
  }

  statfs(): Promise<StatFs> {
    return this.meta.statfs();
  }

  setxattr(_ctx: Ctx, ino: Ino, name: Name, value: Uint8Array, flags: number): Promise<void> {
    if (name.startsWith("system.")) return Promise.reject(new FsError(Errno.ENOTSUP));
    this.#xattrMisses.forget(ino, name);
    return this.meta.setxattr(ino, name, value, flags);
  }

  /**
   * Reads xattr `name` of `ino` (ENODATA if none). Misses are remembered for a second (the kernel
   * asks for `security.capability` before every write) until a `setxattr` or another mount's change.
   */
  async getxattr(_ctx: Ctx, ino: Ino, name: Name): Promise<Uint8Array> {
    if (this.#xattrMisses.has(ino, name)) throw new FsError(Errno.ENODATA);
    try {
      return await this.meta.getxattr(ino, name);
    } catch (err) {
      if (err instanceof FsError && err.errno === Errno.ENODATA) {
        this.#xattrMisses.add(ino, name);
      }
      throw err;
    }
  }

  listxattr(_ctx: Ctx, ino: Ino): Promise<Name[]> {
    return this.meta.listxattr(ino);
  }

  removexattr(_ctx: Ctx, ino: Ino, name: Name): Promise<void> {
    return this.meta.removexattr(ino, name);
  }

  async access(ctx: Ctx, ino: Ino, mask: number): Promise<void> {
    const a = await this.meta.getattr(ino);
    if (!permits(ctx, a, mask)) throw new FsError(Errno.EACCES);
  }

  getlk(_ctx: Ctx, ino: Ino, _fh: Fh, owner: bigint, lock: PosixLock): Promise<PosixLock> {
    return this.#locks.getlk(ino, owner, lock);
  }

  setlk(ctx: Ctx, ino: Ino, fh: Fh, owner: bigint, lock: PosixLock, wait: boolean): Promise<void> {
    return this.#locks.setlk(ctx, ino, fh, owner, lock, wait);
  }

  flock(ctx: Ctx, ino: Ino, fh: Fh, owner: bigint, op: number): Promise<void> {
    return this.#locks.flock(ctx, ino, fh, owner, op);
  }

  /**
   * This mount's session was cleaned up elsewhere: forgets its locks, fences the handles that held
   * one (`core/_vfs_locks.ts`; returns how many); new locks carry `sessionId` if given.
   */
  locksLost(sessionId?: number): number {
    return this.#locks.lost(sessionId);
  }

  async fallocate(
    _ctx: Ctx,
    ino: Ino,
    fh: Fh,
    mode: number,
    offset: number,
    length: number,
  ): Promise<void> {
    const { punch, keep } = fallocateMode(this.#open.handle(fh, ino), mode, offset, length);
    this.#locks.writable(fh);
    await this.#flushIno(ino);
    const { attr, freed } = await this.meta.fallocate(ino, offset, length, punch, keep);
    this.#sizeChanged(attr);
    this.#freeQueue.add(freed);
  }

  async copyFileRange(
    _ctx: Ctx,
    inoIn: Ino,
    fhIn: Fh,
    offIn: number,
    inoOut: Ino,
    fhOut: Fh,
    offOut: number,
    length: number,
    flags: number,
  ): Promise<number> {
    checkCopy(this.#open.handle(fhIn, inoIn), this.#open.handle(fhOut, inoOut), flags);
    this.#locks.writable(fhOut);
    await this.#flushIno(inoIn);
    await this.#flushIno(inoOut);
    const { copied, attr, freed } = await this.meta.copyRange(inoIn, offIn, inoOut, offOut, length);
    this.#sizeChanged(attr);
    this.#freeQueue.add(freed);
    return copied;
  }

  async lseek(_ctx: Ctx, ino: Ino, fh: Fh, offset: number, whence: number): Promise<number> {
    this.#open.handle(fh, ino);
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw new FsError(Errno.EINVAL);
    await this.#flushIno(ino);
    const a = await this.meta.getattr(ino);
    if (offset < 0 || offset >= a.size) throw new FsError(Errno.ENXIO);
    return seekDataOrHole(this.data, ino, a.size, offset, whence);
  }

  async destroy(): Promise<void> {
    await this.close();
  }

  /** Commits every pending write of every open file. */
  async flushAll(): Promise<void> {
    const errors: unknown[] = [];
    for (const of of this.#open.files()) {
      await of.writer?.flush().catch((e) => errors.push(e));
    }
    if (errors.length) throw errors[0];
  }

  /** Flushes everything and waits for background deletions; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.predictor?.close();
      await this.flushAll();
      await this.#opens?.close([...this.#open.inos()]);
      await this.#freeQueue.idle();
      await this.#session?.close();
    } finally {
      await this.locks.close?.().catch(this.#onError); // this mount's locks go, even on errors
      await this.data.close();
    }
  }

  /**
   * What `slayerfs status` shows: open files and handles, cache and store counters, the
   * predictor's, and for a tiered cache its tiers and hottest files (`core/_vfs_stats.ts`).
   */
  stats(): VfsStats {
    return vfsStats(this.data, this.predictor, this.#open);
  }
}
