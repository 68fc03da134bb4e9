/**
 * The file I/O half of a `Vfs` (`vfs.ts`): opening, creating, reading, writing, flushing,
 * releasing and syncing files, `fallocate`, `copy_file_range` and `lseek`, over the open-file table
 * (`_open_files.ts`), the writers of pending data (`writer.ts`) and close-to-open coherence
 * (`_session_opens.ts`). The namespace, attribute and xattr operations stay in `vfs.ts`, which
 * delegates these methods here.
 *
 * @module
 */

import type { DataEngine } from "./data.ts";
import { Errno, FsError } from "./errno.ts";
import { applyAttrChanges, type Meta, now } from "./meta/mod.ts";
import {
  type Attr,
  type Ctx,
  type Fh,
  type Ino,
  type Name,
  O_ACCMODE,
  O_APPEND,
  O_RDONLY,
  O_TRUNC,
  type Opened,
  S_IFDIR,
  S_IFMT,
  S_IFREG,
  SEEK_DATA,
  SEEK_HOLE,
} from "./types.ts";
import { FileWriter } from "./writer.ts";
import { type OpenFile, type OpenFiles, readahead } from "./_open_files.ts";
import { checkCopy, fallocateMode, reportFailure, syncHandle } from "./_open_files.ts";
import type { AtimeUpdater } from "./_atime.ts";
import type { XattrMisses } from "./_xattr_misses.ts";
import type { FreeQueue } from "./_free_queue.ts";
import type { HandleLocks } from "./_vfs_locks.ts";
import type { Predictor } from "./predict.ts";
import { SeenVersions, type SessionOpens } from "./_session_opens.ts";
import { seekDataOrHole } from "./_seek.ts";
import { type ReadAround, settled } from "./_read_around.ts";
import { giveReply, REPLY_BYTES, takeReply } from "./_reply_pool.ts";
import { SCRATCH_BYTES } from "./_scratch.ts";

const isDir = (a: Attr) => (a.mode & S_IFMT) === S_IFDIR;

/** What the file operations share with the rest of the `Vfs`. */
export interface VfsParts {
  /** The volume's metadata. */
  meta: Meta;
  /** The block layer. */
  data: DataEngine<Meta>;
  /** Deletes freed slices in the background. */
  freeQueue: FreeQueue;
  /** The locks of handles. */
  locks: HandleLocks;
  /** Remembered xattr misses. */
  xattrMisses: XattrMisses;
  /** Updates atime on reads (unless `noatime`). */
  atime: AtimeUpdater | undefined;
  /** Predictive prefetch. */
  predictor: Predictor | undefined;
  /** Told of each commit of a file's data, and of a file's last close (quota tallies). */
  quota?: { committed(ino: Ino, size: number): void; forget(ino: Ino): void };
  /** Read-around of random reads into the kernel's page cache. */
  around: ReadAround;
}

/** The open files of a `Vfs` and the operations on them. */
export class VfsFiles {
  /** The open-file table. */
  readonly open: OpenFiles;
  /** Inodes whose last link went while open: delete them at their last close. */
  readonly maybeSustained = new Set<Ino>();
  /** What this mount saw of each file at its last open, for close-to-open coherence. */
  readonly seen = new SeenVersions();
  /** The opens recorded in the session, with one. */
  readonly opens: SessionOpens | undefined;
  readonly #p: VfsParts;

  /** Creates the table; `opens` gets the table to record opens in a session. */
  constructor(p: VfsParts, open: OpenFiles, opens: SessionOpens | undefined) {
    this.#p = p;
    this.open = open;
    this.opens = opens;
  }

  #writer(ino: Ino, of: OpenFile): FileWriter {
    return of.writer ??= new FileWriter(ino, this.#p.data, (attr, freed) => {
      of.size = attr.size;
      of.changes = (of.changes ?? 0) + 1;
      this.#p.quota?.committed(ino, attr.size);
      this.seen.changedHere(attr);
      this.#p.freeQueue.add(freed);
    }, () => this.open.dropped(ino));
  }

  /** `a` with what this mount has pending for it (size, times, allocated bytes, held changes). */
  withPending(a: Attr): Attr {
    const w = this.open.file(a.ino)?.writer;
    if (!w?.dirty && this.seen.changedElsewhere(a)) this.changedElsewhere(a.ino);
    if (w?.dirty) {
      if (w.pendingEnd > a.size) a.size = w.pendingEnd;
      if (w.mtime) a.mtime = a.ctime = w.mtime;
      if (a.allocated !== undefined) a.allocated = Math.min(a.size, a.allocated + w.pendingBytes);
    }
    if (w?.held) applyAttrChanges(a, w.held); // newer than the writes' own times
    return a;
  }

  /** Forgets what this mount cached of `ino`, changed on another mount (and the size of `of`). */
  changedElsewhere(ino: Ino, of?: OpenFile, size?: number): void {
    this.#p.data.invalidate(ino);
    const open = of ?? this.open.file(ino);
    if (open) open.changes = (open.changes ?? 0) + 1;
    this.#p.xattrMisses.forgetIno(ino);
    if (of && size !== undefined && !of.writer?.dirty) of.size = size;
  }

  /** Waits until no page store of `ino` is in flight (`_read_around.ts`). */
  settledStores(ino: Ino): Promise<void> {
    return settled(this.open.file(ino));
  }

  /** Commits the pending writes of `ino`, if any. */
  async flushIno(ino: Ino): Promise<void> {
    const w = this.open.file(ino)?.writer;
    if (w) await w.flush();
  }

  /**
   * Records a size change of `a` made here. Await {@linkcode settledStores} before answering: a
   * page store read before the change must land before the kernel drops its pages.
   */
  sizeChanged(a: Attr): void {
    const of = this.open.file(a.ino);
    if (of) {
      of.size = a.size;
      of.changes = (of.changes ?? 0) + 1;
    }
    this.#p.data.invalidate(a.ino);
    this.seen.changedHere(a);
  }

  /** `FsOps.open`. */
  async openFile(ino: Ino, flags: number): Promise<Opened> {
    // Close-to-open: fresh attributes (recorded in the session at the first open here); the
    // kernel keeps its pages only if the file did not change since this mount saw it.
    const of = this.open.file(ino);
    let a = await (this.opens?.open(ino, of !== undefined) ?? this.#p.meta.getattr(ino));
    const keep = this.seen.opened(a);
    if (!keep) this.changedElsewhere(ino, of, a.size);
    try {
      a = await this.#truncateAtOpen(a, flags);
    } catch (err) {
      if (!of) await this.opens?.closed(ino, false); // no handle: forget the open recorded
      throw err;
    }
    if ((a.mode & S_IFMT) === S_IFREG && (flags & O_ACCMODE) !== 1) this.#p.predictor?.onOpen(ino);
    const opened = this.open.openFile(ino, flags, a.size, keep);
    if (!keep) opened.attrStale = true;
    // Writes may follow the answer, or the kernel drops the file's pages on it (changed
    // elsewhere): no page store of older data may land after either.
    if (!keep || (flags & O_ACCMODE) !== O_RDONLY) await settled(this.open.file(ino));
    return opened;
  }

  /** The checks and `O_TRUNC` of an open of `a`; returns the attributes after. */
  async #truncateAtOpen(a: Attr, flags: number): Promise<Attr> {
    const ino = a.ino;
    if (isDir(a)) {
      if ((flags & O_ACCMODE) !== O_RDONLY) throw new FsError(Errno.EISDIR);
    } else if ((flags & O_TRUNC) && (flags & O_ACCMODE) !== O_RDONLY && a.size > 0) {
      if ((a.mode & S_IFMT) === S_IFREG) {
        await this.flushIno(ino);
        const r = await this.#p.meta.truncate(ino, 0, now());
        a = r.attr;
        this.sizeChanged(a);
        this.#p.freeQueue.add(r.freed);
      }
    }
    return a;
  }

  /** `FsOps.create`. */
  async create(
    ctx: Ctx,
    parent: Ino,
    name: Name,
    mode: number,
    flags: number,
  ): Promise<{ attr: Attr; opened: Opened }> {
    const mode2 = S_IFREG | (mode & 0o7777);
    const attr = await this.#p.meta.mknod(ctx, parent, name, mode2, 0, undefined, this.opens?.sid);
    this.#p.xattrMisses.created(attr.ino);
    this.#p.predictor?.created(attr.ino);
    this.seen.opened(attr);
    return { attr, opened: this.open.openFile(attr.ino, flags, 0) };
  }

  /**
   * Bytes `[offset, end)` of `ino` (a copy), read with the committed bytes `[lo, hi)` around
   * them, which are handed to the kernel's page cache (`_read_around.ts`); `undefined` if those
   * cannot be read (a corrupt segment next to the one asked for: the read then asks for its own
   * bytes only).
   */
  async #readAround(
    ino: Ino,
    of: OpenFile,
    [lo, hi]: [number, number],
    offset: number,
    end: number,
  ): Promise<Uint8Array | undefined> {
    const around = this.#p.around;
    const buf = around.take();
    const changes = of.changes ?? 0;
    const bytes = buf.subarray(0, hi - lo);
    try {
      await this.#p.data.readCommitted(ino, lo, hi - lo, bytes, false);
    } catch {
      around.give(buf);
      return undefined;
    }
    // Copied out before the offer: a refused window's buffer is free again at once.
    const answer = bytes.slice(offset - lo, end - lo);
    // The kernel fills the window's pages on a worker thread; the pages asked for wait there
    // until the answer has unlocked them.
    around.offer(ino, of, changes, lo, bytes, buf);
    return answer;
  }

  /** `FsOps.read`. */
  async read(ino: Ino, fh: Fh, offset: number, size: number): Promise<Uint8Array> {
    const h = this.open.handle(fh, ino);
    await this.#p.atime?.touched(ino, h);
    const of = this.open.file(ino);
    if (!of) throw new FsError(Errno.EBADF);
    const w = of.writer;
    const fileSize = Math.max(of.size, w?.dirty ? w.pendingEnd : 0);
    const end = Math.min(offset + size, fileSize);
    if (end <= offset) return new Uint8Array(0);
    const pending = w?.dirty ? w.snapshot() : undefined;
    const data = this.#p.data;
    readahead(data, h, ino, offset, end, fileSize);
    this.#p.predictor?.onRead(ino, offset, end - offset);
    // Sequential (a readahead window) or at the start: whole blocks; else only what is needed.
    const whole = (h.window ?? 0) > 0 || offset === 0;
    if (!whole) data.randomFill.read(ino, fileSize); // read at random: fetch the file whole?
    const span = whole || pending ? undefined : this.#p.around.span(of, offset, end, fileSize);
    if (span) {
      const around = await this.#readAround(ino, of, span, offset, end);
      if (around) return around;
    }
    const n = end - offset;
    // Large: a reused buffer (`_reply_pool.ts`), given back once the kernel has the reply.
    const reuse = n > SCRATCH_BYTES && n <= REPLY_BYTES ? takeReply(n) : undefined;
    if (!pending) {
      // Within one cached block: reply straight from it, no copy (the block never changes); from
      // the disk tier, into the reused buffer.
      const view = await data.readView(ino, offset, n, whole, reuse);
      if (view) {
        if (reuse && view.buffer !== reuse.buffer) giveReply(reuse);
        return view;
      }
    }
    const out = reuse?.fill(0) ?? new Uint8Array(n);
    await data.readCommitted(ino, offset, n, out, whole);
    if (pending) w!.overlay(offset, out, pending);
    return out;
  }

  /**
   * `FsOps.write`; a write that makes the file longer first passes `check` (quotas: the size
   * committed and the new end), which may fail it whole.
   */
  async write(
    ino: Ino,
    fh: Fh,
    offset: number,
    data: Uint8Array,
    check?: (ino: Ino, committed: number, newEnd: number) => Promise<void> | undefined,
  ): Promise<number> {
    const h = this.open.handle(fh, ino);
    if ((h.flags & O_ACCMODE) === O_RDONLY) throw new FsError(Errno.EBADF);
    this.#p.locks.writable(fh);
    const of = this.open.file(ino)!;
    const w = this.#writer(ino, of);
    reportFailure(h, w, "write");
    const end = Math.max(of.size, w.dirty ? w.pendingEnd : 0);
    if (h.flags & O_APPEND) offset = end;
    if (offset + data.byteLength > Number.MAX_SAFE_INTEGER / 2) throw new FsError(Errno.EFBIG);
    if (check && offset + data.byteLength > end) {
      const checking = check(ino, of.size, offset + data.byteLength);
      if (checking) {
        data = data.slice(); // the caller's buffer may not outlive an await
        await checking;
      }
    }
    await w.write(offset, data);
    reportFailure(h, w, "write"); // dropped while it waited for uploads
    return data.byteLength;
  }

  /** `FsOps.flush`. */
  async flush(ino: Ino, fh: Fh, lockOwner: bigint): Promise<void> {
    const h = this.open.handle(fh, ino);
    await this.#p.locks.flush(ino, lockOwner);
    await syncHandle(h, this.open.file(ino)?.writer, "close");
  }

  /** `FsOps.release`. */
  async release(ino: Ino, fh: Fh, lockOwner: bigint, flockRelease: boolean): Promise<void> {
    this.open.handle(fh, ino);
    this.open.closeHandle(fh);
    await this.#p.locks.release(ino, fh, lockOwner, flockRelease);
    const of = this.open.file(ino);
    if (!of) return;
    try {
      await of.writer?.flush();
    } finally {
      if (--of.opens <= 0 && !of.writer?.dirty) {
        this.open.closeFile(ino);
        this.#p.quota?.forget(ino);
        const unlinkedHere = this.maybeSustained.delete(ino);
        if (unlinkedHere) this.#p.data.invalidate(ino);
        if (this.opens) {
          await this.opens.closed(ino, unlinkedHere);
        } else if (unlinkedHere) {
          const { freed } = await this.#p.meta.deleteSustained(ino);
          this.#p.freeQueue.add(freed);
        }
      }
    }
  }

  /** `FsOps.fsync`. */
  async fsync(ino: Ino, fh: Fh): Promise<void> {
    this.#p.locks.writable(fh);
    await syncHandle(this.open.handle(fh, ino), this.open.file(ino)?.writer, "sync");
  }

  /** `FsOps.fallocate`. */
  async fallocate(ino: Ino, fh: Fh, mode: number, offset: number, length: number): Promise<void> {
    const { punch, keep } = fallocateMode(this.open.handle(fh, ino), mode, offset, length);
    this.#p.locks.writable(fh);
    await this.flushIno(ino);
    const { attr, freed } = await this.#p.meta.fallocate(ino, offset, length, punch, keep);
    this.sizeChanged(attr);
    this.#p.freeQueue.add(freed);
  }

  /** `FsOps.copyFileRange`. */
  async copyFileRange(
    inoIn: Ino,
    fhIn: Fh,
    offIn: number,
    inoOut: Ino,
    fhOut: Fh,
    offOut: number,
    length: number,
    flags: number,
  ): Promise<number> {
    checkCopy(this.open.handle(fhIn, inoIn), this.open.handle(fhOut, inoOut), flags);
    this.#p.locks.writable(fhOut);
    await this.flushIno(inoIn);
    await this.flushIno(inoOut);
    const { copied, attr, freed } = await this.#p.meta.copyRange(
      inoIn,
      offIn,
      inoOut,
      offOut,
      length,
    );
    this.sizeChanged(attr);
    this.#p.freeQueue.add(freed);
    return copied;
  }

  /** `FsOps.lseek`. */
  async lseek(ino: Ino, fh: Fh, offset: number, whence: number): Promise<number> {
    this.open.handle(fh, ino);
    if (whence !== SEEK_DATA && whence !== SEEK_HOLE) throw new FsError(Errno.EINVAL);
    await this.flushIno(ino);
    const a = await this.#p.meta.getattr(ino);
    if (offset < 0 || offset >= a.size) throw new FsError(Errno.ENXIO);
    return seekDataOrHole(this.#p.data, ino, a.size, offset, whence);
  }

  /** Commits every pending write of every open file. */
  async flushAll(): Promise<void> {
    const errors: unknown[] = [];
    for (const of of this.open.files()) {
      await of.writer?.flush().catch((e) => errors.push(e));
    }
    if (errors.length) throw errors[0];
  }
}
