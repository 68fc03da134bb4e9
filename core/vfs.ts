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
  type Opened,
  type PosixLock,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  type SetAttr,
  type StatFs,
} from "./types.ts";
import { dirSnapshot, OpenFiles } from "./_open_files.ts";
import { type AtimeMode, AtimeUpdater } from "./_atime.ts";
import { XattrMisses } from "./_xattr_misses.ts";
import { FreeQueue } from "./_free_queue.ts";
import { applySetAttr, permits } from "./permissions.ts";
import { getLog } from "./log.ts";
import { TieredCache } from "./cache/mod.ts";
import { Predictor, type PredictorOptions } from "./predict.ts";
import type { Session } from "./session.ts";
import { SessionOpens } from "./_session_opens.ts";
import { VfsFiles } from "./_vfs_files.ts";
import { type PageStore, ReadAround } from "./_read_around.ts";
import { QuotaGate } from "./_vfs_quota.ts";
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
  /**
   * The window, in bytes, that a random read hands to the kernel's page cache once the mount gives
   * a page store ({@linkcode Vfs.usePageStore}; `core/_read_around.ts`): default 64 KiB, 0 = off.
   */
  readAround?: number;
  /**
   * Write nothing to the metadata by itself: no cleanup at open, no atime updates, no recorded
   * access patterns (for `-o ro`, with `readOnlyOps` of `core/tenant_ops.ts` refusing changes).
   */
  readOnly?: boolean;
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
  readonly #files: VfsFiles;
  readonly #quota: QuotaGate;
  readonly #xattrMisses = new XattrMisses();
  readonly #session: Session | undefined;
  readonly #onError: (err: unknown) => void;
  readonly #atime: AtimeUpdater | undefined;
  readonly #freeQueue: FreeQueue;
  readonly #around: ReadAround;
  #closed = false;

  private constructor(meta: Meta, store: BlockStore, options: VfsOptions) {
    this.meta = meta;
    this.#onError = options.onError ??
      ((err) => log.error("Background error: {error}", { error: err }));
    this.data = new DataEngine(store, meta, { ...options, onError: this.#onError });
    this.#freeQueue = new FreeQueue(this.data, this.#onError);
    this.locks = options.locks ?? new LocalLocks();
    this.#locks = new HandleLocks(this.locks);
    const atime = options.readOnly ? "noatime" : options.atimeMode ?? "noatime";
    this.#atime = atime === "noatime" ? undefined : new AtimeUpdater(meta, atime);
    this.predictor = options.predict === false || options.readOnly
      ? undefined
      : new Predictor(meta, this.data, options.predict ?? {});
    const session = this.#session = options.session;
    const open = new OpenFiles();
    const opens = session
      ? new SessionOpens(meta, session, this.#freeQueue, this.#onError, open)
      : undefined;
    const quota = this.#quota = new QuotaGate(meta);
    this.#around = new ReadAround(options.readAround);
    const parts = {
      around: this.#around,
      quota,
      meta,
      data: this.data,
      freeQueue: this.#freeQueue,
      locks: this.#locks,
      xattrMisses: this.#xattrMisses,
      atime: this.#atime,
      predictor: this.predictor,
    };
    this.#files = new VfsFiles(parts, open, opens);
  }

  /**
   * Lets random reads hand the window around them to the kernel's page cache
   * (`core/_read_around.ts`); `undefined` stops it. The FUSE mount gives its
   * `FuseSession.storePages`, unless the kernel buffers writes (writeback cache).
   */
  usePageStore(store: PageStore | undefined): void {
    this.#around.use(store);
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
      for (const ino of options.readOnly ? [] : await meta.listSustained()) {
        const { freed } = await meta.deleteSustained(ino);
        await vfs.data.deleteSlices(freed);
      }
      if (!options.readOnly) await vfs.data.collectGarbage();
      await options.session?.start();
    } catch (err) {
      await vfs.data.close();
      throw err;
    }
    return vfs;
  }

  // ---- FsOps: documented there (deno doc takes a method's documentation from the interface) ----

  async lookup(_ctx: Ctx, parent: Ino, name: Name): Promise<Attr> {
    return this.#files.withPending(await this.meta.lookup(parent, name));
  }

  async getattr(_ctx: Ctx, ino: Ino): Promise<Attr> {
    return this.#files.withPending(await this.meta.getattr(ino));
  }

  async setattr(ctx: Ctx, ino: Ino, set: SetAttr): Promise<Attr> {
    if (set.size !== undefined) {
      const a = await this.meta.getattr(ino);
      if (isDir(a)) throw new FsError(Errno.EISDIR);
      if ((a.mode & S_IFMT) !== S_IFREG) throw new FsError(Errno.EINVAL);
      if (set.size < 0) throw new FsError(Errno.EINVAL);
      if (set.size > Number.MAX_SAFE_INTEGER / 2) throw new FsError(Errno.EFBIG);
      await this.#files.flushIno(ino);
      const { attr, freed } = await this.meta.truncate(ino, set.size, now());
      this.#files.sizeChanged(attr);
      this.#freeQueue.add(freed);
      await this.#files.settledStores(ino);
    }
    const needsChange = set.mode !== undefined || set.uid !== undefined ||
      set.gid !== undefined || set.atime !== undefined || set.mtime !== undefined ||
      set.ctime !== undefined;
    if (!needsChange) return this.#files.withPending(await this.meta.getattr(ino));
    const w = this.#files.open.file(ino)?.writer;
    if ((w?.dirty || w?.held) && set.size === undefined) {
      // A file being written here (`tar -x` sends a utimensat, fchown and fchmod before each
      // close): the changes commit with its writes, in their transaction, at the latest at its
      // close or fsync; this mount answers with them meanwhile (`withPending`).
      const a = applySetAttr(ctx, this.#files.withPending(await this.meta.getattr(ino)), set);
      if (w.dirty || w.held) {
        w.hold({
          mode: a.mode,
          uid: a.uid,
          gid: a.gid,
          ctime: a.ctime,
          ...(set.atime !== undefined ? { atime: a.atime } : {}),
          ...(set.mtime !== undefined ? { mtime: a.mtime } : {}),
        });
        return a;
      }
    }
    const attr = await this.meta.update(ino, (a) => applySetAttr(ctx, a, set));
    this.#files.seen.changedHere(attr);
    return this.#files.withPending(attr);
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
    const files = this.#files;
    const { attr, freed } = await this.meta.unlink(parent, name, files.open.isOpen);
    if (attr.nlink === 0 && files.open.file(attr.ino)) files.maybeSustained.add(attr.ino);
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
      this.#files.open.isOpen,
      ctx,
    );
    if (replaced !== undefined) this.#files.maybeSustained.add(replaced);
    this.#freeQueue.add(freed);
  }

  async link(_ctx: Ctx, ino: Ino, newParent: Ino, newName: Name): Promise<Attr> {
    return this.#files.withPending(await this.meta.link(ino, newParent, newName));
  }

  open(_ctx: Ctx, ino: Ino, flags: number): Promise<Opened> {
    return this.#files.openFile(ino, flags);
  }

  create(
    ctx: Ctx,
    parent: Ino,
    name: Name,
    mode: number,
    flags: number,
  ): Promise<{ attr: Attr; opened: Opened }> {
    return this.#files.create(ctx, parent, name, mode, flags);
  }

  read(_ctx: Ctx, ino: Ino, fh: Fh, offset: number, size: number): Promise<Uint8Array> {
    return this.#files.read(ino, fh, offset, size);
  }

  /** `write` copies the data into its pending slices before it awaits anything. */
  readonly copiesWriteData = true;

  write(_ctx: Ctx, ino: Ino, fh: Fh, offset: number, data: Uint8Array): Promise<number> {
    return this.#files.write(ino, fh, offset, data, (i, c, e) => this.#quota.check(i, c, e));
  }

  flush(_ctx: Ctx, ino: Ino, fh: Fh, lockOwner: bigint): Promise<void> {
    return this.#files.flush(ino, fh, lockOwner);
  }

  release(_ctx: Ctx, ino: Ino, fh: Fh, lockOwner: bigint, flockRelease: boolean): Promise<void> {
    return this.#files.release(ino, fh, lockOwner, flockRelease);
  }

  fsync(_ctx: Ctx, ino: Ino, fh: Fh, _datasync: boolean): Promise<void> {
    return this.#files.fsync(ino, fh);
  }

  async opendir(_ctx: Ctx, ino: Ino, _flags: number): Promise<Opened> {
    const a = await this.meta.getattr(ino);
    if (!isDir(a)) throw new FsError(Errno.ENOTDIR);
    return this.#files.open.openDir(ino);
  }

  async readdir(
    _ctx: Ctx,
    ino: Ino,
    fh: Fh,
    offset: number,
    limit: number,
    plus: boolean,
  ): Promise<DirEntry[]> {
    const h = this.#files.open.handle(fh, ino);
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
      if (a) out.push({ ...e, attr: this.#files.withPending(a) });
    });
    return out;
  }

  releasedir(_ctx: Ctx, _ino: Ino, fh: Fh): Promise<void> {
    this.#files.open.closeHandle(fh);
    return Promise.resolve();
  }

  fsyncdir(): Promise<void> {
    return Promise.resolve(); // every metadata change is committed when its request returns
  }

  statfs(_ctx: Ctx, ino: Ino): Promise<StatFs> {
    return this.meta.statfs(ino); // the nearest quota's limits, if any
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

  fallocate(
    _ctx: Ctx,
    ino: Ino,
    fh: Fh,
    mode: number,
    offset: number,
    length: number,
  ): Promise<void> {
    return this.#files.fallocate(ino, fh, mode, offset, length);
  }

  copyFileRange(
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
    return this.#files.copyFileRange(inoIn, fhIn, offIn, inoOut, fhOut, offOut, length, flags);
  }

  lseek(_ctx: Ctx, ino: Ino, fh: Fh, offset: number, whence: number): Promise<number> {
    return this.#files.lseek(ino, fh, offset, whence);
  }

  async destroy(): Promise<void> {
    await this.close();
  }

  /** Commits every pending write of every open file. */
  flushAll(): Promise<void> {
    return this.#files.flushAll();
  }

  /** Flushes everything and waits for background deletions; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.predictor?.close();
      await this.flushAll();
      await this.#files.opens?.close([...this.#files.open.inos()]);
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
    const around = this.#around;
    return {
      ...vfsStats(this.data, this.predictor, this.#files.open),
      ...(around.window > 0
        ? { readAround: { windows: around.stored, bytes: around.storedBytes } }
        : {}),
    };
  }
}
