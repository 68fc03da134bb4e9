/**
 * The write path of one file: writes become slices buffered in memory, whose full blocks upload
 * in the background; `flush` uploads the rest and commits the slices to the metadata in one
 * transaction, in the order they were written. A writer reaches the block layer and the metadata
 * only through {@linkcode WriterData} and {@linkcode WriterMeta}.
 *
 * ## Decisions
 *
 * - **Slices.** A write goes into the newest pending slice of its chunk when it starts inside or
 *   right at the end of that slice's unsealed bytes (the last 8 slices are looked at); otherwise
 *   it starts a new slice with a fresh id. A write never goes into an older slice that a newer
 *   pending one overlaps, so the order of slices stays the order in which their bytes were
 *   written, which is the order in which the chunk's list shadows them. A write that splits at a
 *   chunk boundary becomes one slice per chunk.
 * - **Buffers.** The caller's bytes are copied into the slice's block buffers before the first
 *   `await` (they may be a FUSE buffer reused at once), and copied a second time only when the
 *   write must wait for a new slice id. A block buffer starts at 64 KiB and doubles up to the
 *   block size, so small files cost little memory; a large write gets a whole block at once.
 * - **Uploads.** As soon as a block of a slice is full it is sealed (its bytes no longer change;
 *   a later write to them starts a new slice) and uploaded in the background. A slice freezes at
 *   its chunk's end or at 4 blocks, and the leading frozen slices commit in the background, so a
 *   long stream commits (and frees its buffers) as it goes, and memory per file stays bounded.
 *   `write` waits while more uploads than `uploadConcurrency` are in flight (back pressure).
 * - **Commit order.** Commits run one at a time on a chain, in slice order; a batch commits only
 *   after every upload of its slices has finished, in one metadata transaction (all slices of
 *   the batch, their block records and inline blocks, the file's new length and mtime). So the
 *   metadata never refers to a block that is not in the store: a crash leaves at worst uploaded
 *   objects no slice refers to, which `slayerfs gc` finds, never a file pointing to missing data.
 *   A commit of dedup blocks whose blob vanished uploads those blocks and tries again (6 tries).
 *   After a commit the block layer keeps the chunk lists it returned (`committed`) and
 *   `onCommit` gets the freed slices, whose objects the caller deletes.
 * - **Durability.** Bytes of a `write` are in memory only (lost if the process dies) until their
 *   slice commits: in the background for frozen slices, or at `flush`, which the VFS calls on
 *   FUSE flush, release, fsync, unmount, and before operations that work on the file's committed
 *   slices (truncate, open with `O_TRUNC`, fallocate, copy_file_range, lseek). When `flush`
 *   resolves, every earlier write is in the store and committed, as durable as the store's `put`
 *   and the engine's commit make it.
 * - **Reads of pending data.** Reads see pending writes: the VFS takes a {@linkcode
 *   FileWriter.snapshot} before reading committed data and overlays it afterwards, so a slice that
 *   commits in between is still overlaid, and the file's size includes `pendingEnd`.
 * - **Errors.** A failed upload or commit drops every pending slice at once: the file is back to
 *   its last committed state, as Linux may drop the page cache of a file whose writeback failed.
 *   The buffered writes are not retried, so a lost write is never reported as done, and nothing
 *   sticks: the writer takes new writes at once, and they succeed as soon as the store answers
 *   again. Each failure counts in {@linkcode FileWriter.errors} (a sequence, like Linux's
 *   `errseq_t`), which the VFS compares with what each handle was told ({@linkcode
 *   FileWriter.errorSince}), so that `fsync` and `close` of every handle open at the time report
 *   it once. `flush` itself throws only a failure that happened while it ran. Blocks uploaded for
 *   dropped slices are unreferenced objects, which `slayerfs gc` finds. `onDrop` is called on each
 *   failure (the VFS then makes the kernel drop its cached pages of the file at the next open).
 * - **Held attribute changes.** A `chmod`, `chown` or `utimensat` of a file with pending writes
 *   is held ({@linkcode FileWriter.hold}) and committed in the next commit's transaction (a failed
 *   commit holds them again; a `flush` with no writes left commits them alone), so `tar -x`, which
 *   sends the three before each close, commits each file once.
 *
 * @module
 */

import type { StoredBlock } from "./data.ts";
import type { BlockRecord } from "./block_codec.ts";
import { Errno, FsError } from "./errno.ts";
import {
  type AttrChanges,
  type Committed,
  type FreedSlice,
  NeedUploadError,
  type NewSlice,
  now,
} from "./meta/mod.ts";
import type { Attr, Ino, SliceId, Timespec } from "./types.ts";

/** Blocks a streaming slice grows to before it is committed. */
const SLICE_BLOCKS = 4;

class PendingSlice {
  readonly chunk: number;
  readonly pos: number;
  readonly id: SliceId;
  len = 0;
  /** Bytes `[0, sealed)` of the slice are uploaded or uploading and may no longer change. */
  sealed = 0;
  frozen = false;
  readonly blocks: Uint8Array[] = [];
  readonly records: BlockRecord[] = [];
  readonly uploaded: (string | undefined)[] = [];
  readonly uploads: Promise<void>[] = [];

  constructor(chunk: number, pos: number, id: SliceId) {
    this.chunk = chunk;
    this.pos = pos;
    this.id = id;
  }
}

/** Called after a commit with the new attributes and the slices it freed. */
export type OnCommit = (attr: Attr, freed: FreedSlice[]) => void;

/** An error as the application sees it: itself if it is an `FsError`, else `EIO`. */
function toFsError(e: unknown): FsError {
  return e instanceof FsError ? e : new FsError(Errno.EIO, `Write failed: ${e}`, { cause: e });
}

/** What a writer needs of the metadata: the two methods of `Meta` (`core/meta/`) it calls. */
export interface WriterMeta {
  /** A new, never used slice id. */
  allocSliceId(): Promise<SliceId>;
  /** Commits written slices in one transaction (see `Meta.commitSlices`). */
  commitSlices(
    ino: Ino,
    slices: readonly NewSlice[],
    length: number,
    mtime: Timespec | undefined,
    changes?: AttrChanges,
  ): Promise<Committed>;
}

/** What a writer needs of the block layer: the parts of `DataEngine` (`core/data.ts`) it uses. */
export interface WriterData {
  /** The metadata the slices are committed to. */
  readonly meta: WriterMeta;
  /** The volume's block size. */
  readonly blockSize: number;
  /** The volume's chunk size. */
  readonly chunkSize: number;
  /** Uploads in flight per file before `write` waits. */
  readonly uploadConcurrency: number;
  /** Stores one block of a slice. */
  putBlock(id: SliceId, index: number, raw: Uint8Array): Promise<StoredBlock>;
  /** Uploads a dedup block under a key of its own. */
  putBlob(id: SliceId, index: number, raw: Uint8Array): Promise<string>;
  /** Counts changes of cached slice lists (read before a commit, given to `committed`). */
  readonly generation: number;
  /**
   * After a commit of `slices` to `ino` that began at `generation`: keeps the slice lists the
   * commit returned for the chunks it wrote, or forgets all of the inode's if any list changed
   * meanwhile.
   */
  committed(ino: Ino, done: Committed, slices: readonly NewSlice[], generation: number): void;
}

/** Buffers and commits the writes of one inode. */
export class FileWriter {
  /** The inode written. */
  readonly ino: Ino;
  readonly #data: WriterData;
  readonly #onCommit: OnCommit;
  #slices: PendingSlice[] = [];
  #chain: Promise<void> = Promise.resolve();
  #inflight = 0;
  #waiters: Array<() => void> = [];
  #errors = 0;
  #lastError: unknown;
  readonly #onDrop: () => void;
  /** The end of the furthest pending write. */
  pendingEnd = 0;
  /** When the last pending write happened. */
  mtime: Timespec | undefined;
  #held: AttrChanges | undefined;

  /**
   * Creates the writer of `ino`; `onDrop` is called when a failure drops the pending writes.
   */
  constructor(ino: Ino, data: WriterData, onCommit: OnCommit, onDrop: () => void = () => {}) {
    this.ino = ino;
    this.#data = data;
    this.#onCommit = onCommit;
    this.#onDrop = onDrop;
  }

  /** Whether writes are waiting to be committed. */
  get dirty(): boolean {
    return this.#slices.length > 0;
  }

  /** The attribute changes held back for the next commit ({@linkcode hold}), if any. */
  get held(): Readonly<AttrChanges> | undefined {
    return this.#held;
  }

  /**
   * Holds attribute changes back until the pending writes commit, in the same transaction (the
   * caller checks that the writer is {@linkcode dirty} or already holds changes, which the next
   * `flush` commits); later changes win, and a later write's own time wins over a held `mtime`.
   */
  hold(changes: AttrChanges): void {
    this.#held = { ...this.#held, ...changes };
  }

  /** Bytes of the pending slices (an upper bound of the pending data, for `st_blocks`). */
  get pendingBytes(): number {
    let n = 0;
    for (const s of this.#slices) n += s.len;
    return n;
  }

  /** How many failures have dropped pending writes so far (only ever grows). */
  get errors(): number {
    return this.#errors;
  }

  /** The last failure as an `FsError`, if one happened after {@linkcode errors} was `seen`. */
  errorSince(seen: number): FsError | undefined {
    return this.#errors > seen ? toFsError(this.#lastError) : undefined;
  }

  /** A failure: every pending write is lost; the file is back to its committed state. */
  #drop(err: unknown): void {
    this.#errors++;
    this.#lastError = err;
    this.#slices = [];
    this.pendingEnd = 0;
    this.mtime = undefined;
    this.#onDrop();
  }

  #live(s: PendingSlice): boolean {
    return this.#slices.includes(s);
  }

  /**
   * Writes `data` at file offset `off`. `data` is copied before the first `await` (it may be a
   * view of a buffer the caller reuses).
   */
  async write(off: number, data: Uint8Array): Promise<void> {
    const cs = this.#data.chunkSize;
    let done = 0;
    let copied = false;
    while (done < data.byteLength) {
      const pos = off + done;
      const chunk = Math.floor(pos / cs);
      const inChunk = pos - chunk * cs;
      const n = Math.min(data.byteLength - done, cs - inChunk);
      let s = this.#target(chunk, inChunk, n);
      if (s === undefined) {
        if (!copied) {
          data = data.slice(); // about to await: keep our own copy
          copied = true;
        }
        s = await this.#newSlice(chunk, inChunk);
      }
      this.#copyIn(s, inChunk - s.pos, data.subarray(done, done + n));
      done += n;
    }
    this.pendingEnd = Math.max(this.pendingEnd, off + data.byteLength);
    this.mtime = now();
    if (this.#held) this.#held.mtime = this.#held.ctime = undefined; // this write's time wins
    while (this.#inflight > this.#data.uploadConcurrency) {
      await new Promise<void>((r) => this.#waiters.push(r));
    }
  }

  /** The slice a write at `inChunk` can go into, if any. */
  #target(chunk: number, inChunk: number, n: number): PendingSlice | undefined {
    for (let i = this.#slices.length - 1, k = 0; i >= 0 && k < 8; i--, k++) {
      const s = this.#slices[i]!;
      if (s.chunk !== chunk) continue;
      if (
        !s.frozen && inChunk >= s.pos + s.sealed && inChunk <= s.pos + s.len
      ) return s;
      if (inChunk < s.pos + s.len && inChunk + n > s.pos) return undefined; // a newer overlap
    }
    return undefined;
  }

  async #newSlice(chunk: number, inChunk: number): Promise<PendingSlice> {
    const id = await this.#data.meta.allocSliceId();
    const s = new PendingSlice(chunk, inChunk, id);
    this.#slices.push(s);
    return s;
  }

  #copyIn(s: PendingSlice, at: number, src: Uint8Array): void {
    const bs = this.#data.blockSize;
    let done = 0;
    while (done < src.byteLength) {
      const p = at + done;
      const bi = Math.floor(p / bs);
      const inBlock = p - bi * bs;
      const n = Math.min(src.byteLength - done, bs - inBlock);
      let block = this.#sliceBlock(s, bi, inBlock + n);
      if (block.byteLength < inBlock + n) {
        const grown = new Uint8Array(Math.min(bs, Math.max(inBlock + n, block.byteLength * 2)));
        grown.set(block);
        s.blocks[bi] = block = grown;
      }
      block.set(src.subarray(done, done + n), inBlock);
      done += n;
    }
    s.len = Math.max(s.len, at + src.byteLength);
    // A slice ends at its chunk's end, or after a few blocks so that a long stream commits
    // (and frees its buffers) as it goes.
    if (s.pos + s.len >= this.#data.chunkSize || s.len >= SLICE_BLOCKS * bs) s.frozen = true;
    // Upload blocks that are full.
    while (s.len - s.sealed >= bs) this.#upload(s, bs);
    if (s.frozen) this.#commitFrozen();
  }

  #sliceBlock(s: PendingSlice, bi: number, need: number): Uint8Array {
    let b = s.blocks[bi];
    if (!b) {
      // Small writes start with a small buffer (a power of two from 4 KiB) that grows; large
      // ones get a whole block. (A 64 KiB start cost ~40 µs of allocation per 1 KiB file.)
      const bs = this.#data.blockSize;
      let size = 4096;
      while (size < need && size < 64 * 1024) size *= 2;
      b = new Uint8Array(need > 64 * 1024 ? bs : Math.min(bs, size));
      for (let i = s.blocks.length; i < bi; i++) s.blocks[i] = new Uint8Array(0);
      s.blocks[bi] = b;
    }
    return b;
  }

  /** Seals and uploads the next `len` bytes of `s` (one block, maybe partial). */
  #upload(s: PendingSlice, len: number): void {
    const bs = this.#data.blockSize;
    const bi = Math.floor(s.sealed / bs);
    const block = s.blocks[bi]!.subarray(0, len);
    s.sealed += len;
    this.#inflight++;
    s.uploads.push(
      this.#data.putBlock(s.id, bi, block).then((stored) => {
        s.records[bi] = stored.record;
        s.uploaded[bi] = stored.uploaded;
      }, (err) => {
        if (this.#live(s)) this.#drop(err);
      }).finally(() => {
        this.#inflight--;
        this.#waiters.shift()?.();
      }),
    );
  }

  /** Commits, in order, the leading slices that are frozen. */
  #commitFrozen(): void {
    let n = 0;
    while (n < this.#slices.length && this.#slices[n]!.frozen) n++;
    if (n === 0) return;
    const batch = this.#slices.slice(0, n);
    this.#enqueue(batch);
  }

  #enqueue(batch: PendingSlice[]): Promise<void> {
    for (const s of batch) {
      s.frozen = true;
      if (s.len > s.sealed) this.#upload(s, s.len - s.sealed);
    }
    const run = this.#chain.then(async () => {
      const todo = batch.filter((s) => this.#live(s));
      if (todo.length === 0 && !this.#held) return;
      await Promise.all(todo.flatMap((s) => s.uploads));
      if (!todo.every((s) => this.#live(s))) throw this.#lastError; // dropped meanwhile
      let end = 0;
      const slices = todo.filter((s) => s.len > 0).map((s) => {
        end = Math.max(end, s.chunk * this.#data.chunkSize + s.pos + s.len);
        return {
          chunk: s.chunk,
          record: { pos: s.pos, id: s.id, size: s.len, off: 0, len: s.len },
          blocks: s.records,
          uploaded: s.uploaded,
        };
      });
      let result;
      const generation = this.#data.generation;
      // Held changes go with this commit; if it fails they are held again (under newer ones).
      const held = this.#held;
      this.#held = undefined;
      for (let attempt = 0;; attempt++) {
        try {
          result = await this.#data.meta.commitSlices(this.ino, slices, end, this.mtime, held);
          break;
        } catch (err) {
          if (!(err instanceof NeedUploadError) || attempt > 5) {
            // Held again, under any held while this commit ran.
            if (held) this.#held = Object.assign({}, held, this.#held);
            throw err;
          }
          // A shared blob vanished since we skipped uploading it: store our own copy.
          for (const [id, bi] of err.blocks) {
            const s = todo.find((x) => x.id === id)!;
            const len = Math.min(this.#data.blockSize, s.len - bi * this.#data.blockSize);
            s.uploaded[bi] = await this.#data.putBlob(id, bi, s.blocks[bi]!.subarray(0, len));
          }
        }
      }
      const { attr, freed } = result;
      this.#slices = this.#slices.filter((s) => !todo.includes(s));
      this.#data.committed(this.ino, result, slices, generation);
      if (this.#slices.length === 0) this.pendingEnd = 0;
      this.#onCommit(attr, freed);
    });
    this.#chain = run.catch((err) => {
      if (batch.some((s) => this.#live(s))) this.#drop(err);
    });
    return run;
  }

  /**
   * Uploads everything pending and commits it; resolves when it is durable in the metadata.
   * Throws (and the pending writes are dropped) if that fails; a failure of earlier background
   * work is not thrown here but counted in {@linkcode errors}.
   */
  async flush(): Promise<void> {
    const before = this.#errors;
    const batch = [...this.#slices];
    // With no writes left (dropped by a failure), held changes commit alone.
    if (batch.length || this.#held) this.#enqueue(batch).catch(() => {}); // reported by the count
    await this.#chain;
    const err = this.errorSince(before);
    if (err) throw err;
  }

  /**
   * The pending slices as of now. Take it before reading committed data, then pass it to
   * {@linkcode overlay}: a slice that commits in between is then still overlaid.
   */
  snapshot(): readonly unknown[] {
    return [...this.#slices];
  }

  /** Copies the bytes of `pending` (a snapshot) overlapping `[off, off+out.length)` into `out`. */
  overlay(off: number, out: Uint8Array, pending: readonly unknown[]): void {
    const cs = this.#data.chunkSize;
    const bs = this.#data.blockSize;
    const end = off + out.byteLength;
    for (const s of pending as PendingSlice[]) {
      const sStart = s.chunk * cs + s.pos;
      const lo = Math.max(off, sStart);
      const hi = Math.min(end, sStart + s.len);
      let p = lo;
      while (p < hi) {
        const inSlice = p - sStart;
        const bi = Math.floor(inSlice / bs);
        const inBlock = inSlice - bi * bs;
        const n = Math.min(hi - p, bs - inBlock);
        const block = s.blocks[bi]!;
        const avail = Math.max(0, Math.min(n, block.byteLength - inBlock));
        out.set(block.subarray(inBlock, inBlock + avail), p - off);
        if (avail < n) out.fill(0, p - off + avail, p - off + n);
        p += n;
      }
    }
  }
}
