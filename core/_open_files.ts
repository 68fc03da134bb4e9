/**
 * The open-file table of a `Vfs`: one {@linkcode OpenFile} per open inode (its open count and
 * pending writes) and one {@linkcode Handle} per file handle the kernel holds, with the sequential
 * readahead each handle earns ({@linkcode readahead}); and the argument checks of the handle
 * operations ({@linkcode fallocateMode}, {@linkcode checkCopy}).
 *
 * A failed flush drops the pending writes of a file ({@linkcode FileWriter}); each handle then
 * learns of it, like a Linux file description (`errseq_t`): its next `write` fails, its next
 * `fsync` fails even if a `write` already did, and each `close` (FUSE flush) fails until an
 * `fsync` has reported it, as NFS does ({@linkcode reportFailure}). A close does not mark it
 * reported: a process may close a duplicate of the descriptor (Deno does for each async file
 * operation) and fsync the original afterwards. The
 * kernel may still cache pages of the dropped writes: the next open of the file
 * ({@linkcode OpenFiles.openFile}) asks it to drop them.
 *
 * @module
 */

import { Errno, FsError } from "./errno.ts";
import {
  type Attr,
  type DirEntry,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  type Fh,
  type Ino,
  O_ACCMODE,
  O_APPEND,
  O_RDONLY,
  type Opened,
  S_IFDIR,
} from "./types.ts";
import type { FileWriter } from "./writer.ts";

/** An open inode. */
export interface OpenFile {
  /** Handles open on it. */
  opens: number;
  /** Its pending writes, from its first write on. */
  writer?: FileWriter;
  /** Size as last known from the metadata. */
  size: number;
  /** Handles open on it for writing. */
  writers?: number;
  /** Changes of its data seen here (commits, size changes, changes from another mount). */
  changes?: number;
  /** Page-cache stores in flight (`_read_around.ts`). */
  storing?: Promise<unknown>;
}

/** A file handle: an open file or directory. */
export interface Handle {
  /** The inode it was opened on. */
  ino: Ino;
  /** The open flags (`O_*`; 0 for a directory). */
  flags: number;
  /** Where the last read ended. */
  lastEnd?: number;
  /** The readahead window in bytes (0 after a jump). */
  window?: number;
  /** For a directory: its entries as of the read at offset 0 (a snapshot per handle). */
  dir?: { entries: DirEntry[] | undefined };
  /** The writer's failure count ({@linkcode FileWriter.errors}) this handle's writes were told. */
  writeSeen?: number;
  /** The failure count this handle's `fsync` and `close` were told. */
  syncSeen?: number;
  /** Whether a read (or a listing) went through it already (for `relatime`). */
  accessed?: boolean;
}

/** What reports a failure to a handle: its writes, its fsyncs, or a close (FUSE flush). */
export type FailureReport = "write" | "sync" | "close";

/**
 * Throws the failure of `w` that handle `h` was not told of yet: to a `"write"` once (if no
 * write or fsync of `h` had it), to a `"sync"` once (if no fsync of `h` had it), to a `"close"`
 * as long as no fsync of `h` had it.
 */
export function reportFailure(h: Handle, w: FileWriter | undefined, kind: FailureReport): void {
  if (!w) return;
  const err = w.errorSince((kind === "write" ? h.writeSeen : h.syncSeen) ?? 0);
  if (!err) return;
  if (kind !== "close") h.writeSeen = w.errors;
  if (kind === "sync") h.syncSeen = w.errors;
  throw err;
}

/** Flushes `w` for handle `h` (fsync, close), then reports what `h` was not told of. */
export async function syncHandle(
  h: Handle,
  w: FileWriter | undefined,
  kind: "sync" | "close",
): Promise<void> {
  await w?.flush().catch(() => {}); // a failure counts in w.errors
  reportFailure(h, w, kind);
}

/** The open inodes and handles of one mount. */
export class OpenFiles {
  readonly #files = new Map<Ino, OpenFile>();
  readonly #handles = new Map<number, Handle>();
  /** Inodes whose pending writes were dropped: the kernel may cache their pages. */
  readonly #stalePages = new Set<Ino>();
  #nextFh = 1;

  /** Open inodes. */
  get fileCount(): number {
    return this.#files.size;
  }

  /** Open handles. */
  get handleCount(): number {
    return this.#handles.size;
  }

  /** The open inode `ino`, if it is open. */
  file(ino: Ino): OpenFile | undefined {
    return this.#files.get(ino);
  }

  /** Every open inode. */
  files(): IterableIterator<OpenFile> {
    return this.#files.values();
  }

  /** Every open inode's number. */
  inos(): IterableIterator<Ino> {
    return this.#files.keys();
  }

  /** Whether `ino` has a handle open. */
  isOpen = (ino: Ino): boolean => (this.#files.get(ino)?.opens ?? 0) > 0;

  /** Handle `fh` (which must be on `ino` if given); throws EBADF if there is none. */
  handle(fh: Fh, ino?: Ino): Handle {
    const h = this.#handles.get(fh);
    if (!h || (ino !== undefined && h.ino !== ino)) {
      throw new FsError(Errno.EBADF, `No open handle ${fh}`);
    }
    return h;
  }

  /**
   * Opens a handle on file `ino`, of `size` bytes if it was not open yet. The kernel keeps its
   * cached pages of the file if `keep` (it did not change elsewhere since this mount last saw it),
   * unless writes to it were dropped since its last open.
   */
  openFile(ino: Ino, flags: number, size: number, keep = true): Opened {
    let of = this.#files.get(ino);
    if (!of) this.#files.set(ino, of = { opens: 0, size });
    of.opens++;
    if ((flags & O_ACCMODE) !== O_RDONLY) of.writers = (of.writers ?? 0) + 1;
    const fh = this.#nextFh++ as Fh;
    const seen = of.writer?.errors ?? 0;
    this.#handles.set(fh, { ino, flags, writeSeen: seen, syncSeen: seen });
    return { fh, keepCache: !this.#stalePages.delete(ino) && keep };
  }

  /** Notes that pending writes of `ino` were dropped (the kernel may still cache them). */
  dropped(ino: Ino): void {
    this.#stalePages.add(ino);
  }

  /** Opens a handle on directory `ino`. */
  openDir(ino: Ino): Opened {
    const fh = this.#nextFh++ as Fh;
    this.#handles.set(fh, { ino, flags: 0, dir: { entries: undefined } });
    return { fh };
  }

  /** Forgets handle `fh` (the open count of its inode is the caller's). */
  closeHandle(fh: Fh): void {
    const h = this.#handles.get(fh);
    if (h && !h.dir && (h.flags & O_ACCMODE) !== O_RDONLY) {
      const of = this.#files.get(h.ino);
      if (of?.writers) of.writers--;
    }
    this.#handles.delete(fh);
  }

  /** Forgets open inode `ino`. */
  closeFile(ino: Ino): void {
    this.#files.delete(ino);
  }
}

/** What {@linkcode readahead} needs of the block layer. */
export interface ReadaheadData {
  /** The volume's block size. */
  readonly blockSize: number;
  /** The most a sequential read fetches ahead of itself, in bytes (0: nothing). */
  readonly readaheadMax: number;
  /** Fetches a range into the cache in the background. */
  prefetch(ino: Ino, offset: number, length: number): void;
}

/**
 * Sequential readahead: a handle reading where it stopped grows its window (doubling from one
 * block up to `readaheadMax`); a jump resets it. The window ahead of the read is fetched in the
 * background. With `readaheadMax` 0 the window still tells sequential reads (which fetch whole
 * blocks) from random ones, but nothing is fetched ahead.
 */
export function readahead(
  data: ReadaheadData,
  h: Handle,
  ino: Ino,
  offset: number,
  end: number,
  size: number,
): void {
  const bs = data.blockSize;
  if (h.lastEnd !== undefined && Math.abs(offset - h.lastEnd) <= 1 << 20) {
    h.window = Math.min(Math.max(bs, (h.window ?? 0) * 2), Math.max(bs, data.readaheadMax));
  } else {
    h.window = 0;
  }
  h.lastEnd = Math.max(end, h.lastEnd ?? 0);
  if (h.window && end < size && data.readaheadMax > 0) {
    data.prefetch(ino, end, Math.min(h.window, size - end));
  }
}

/** Directory `ino`'s entries with `.` and `..`, each with the offset of the next (a snapshot). */
export async function dirSnapshot(
  meta: { getattr(ino: Ino): Promise<Attr>; listDir(ino: Ino): Promise<Omit<DirEntry, "next">[]> },
  ino: Ino,
): Promise<DirEntry[]> {
  const self = await meta.getattr(ino);
  const list = await meta.listDir(ino);
  const entries: DirEntry[] = [
    { name: ".", ino, type: S_IFDIR, next: 1 },
    { name: "..", ino: self.parent, type: S_IFDIR, next: 2 },
  ];
  for (const e of list) entries.push({ ...e, next: entries.length + 1 });
  return entries;
}

/** Checks a `fallocate` on handle `h`; returns whether it punches a hole and keeps the size. */
export function fallocateMode(
  h: Handle,
  mode: number,
  offset: number,
  length: number,
): { punch: boolean; keep: boolean } {
  if ((h.flags & O_ACCMODE) === O_RDONLY) throw new FsError(Errno.EBADF);
  if (offset < 0 || length <= 0) throw new FsError(Errno.EINVAL);
  const punch = (mode & FALLOC_FL_PUNCH_HOLE) !== 0;
  const keep = (mode & FALLOC_FL_KEEP_SIZE) !== 0;
  if (mode & ~(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) || (punch && !keep)) {
    throw new FsError(Errno.ENOTSUP);
  }
  return { punch, keep };
}

/** Checks a `copy_file_range` from handle `hIn` to `hOut`. */
export function checkCopy(hIn: Handle, hOut: Handle, flags: number): void {
  if (flags !== 0) throw new FsError(Errno.EINVAL);
  if ((hIn.flags & O_ACCMODE) === 1 || (hOut.flags & O_ACCMODE) === O_RDONLY) {
    throw new FsError(Errno.EBADF);
  }
  if (hOut.flags & O_APPEND) throw new FsError(Errno.EBADF);
}
