/**
 * Read-around for random reads: a read that is not sequential (no readahead window) reads the
 * aligned window around it (64 KiB by default: one segment of a block, `_block_segments.ts`,
 * which a miss fetches and checksums whole anyway), answers the bytes asked for, and hands the
 * whole window to the kernel's page cache (`FUSE_NOTIFY_STORE`, through the mount's
 * {@linkcode PageStore}). A later read of the window's other pages is then a page-cache hit, with
 * no request to the daemon: what the kernel's own read-around does for page faults of a mapped
 * file, and what its readahead cannot do for random reads (it asks for the pages it needs only).
 *
 * Pages stored must never be older than the file: the kernel keeps them until the file changes
 * (attributes from another mount, an open that finds the file changed, this mount's writes).
 * So a window is offered only when nothing on this mount can change the file meanwhile: no handle
 * of the inode open for writing, no pending writes, and no change of its data (a commit, a size
 * change, a change seen from another mount) since the read began ({@linkcode OpenFile.changes});
 * and an open for writing or a size change first waits until the stores in flight have landed
 * ({@linkcode settled}), so none can land after the change. Not with the FUSE writeback cache
 * (dirty pages in the kernel would be overwritten): the mount then gives no page store.
 *
 * @module
 */

import type { OpenFile } from "./_open_files.ts";
import type { Ino } from "./types.ts";
import { giveScratch, SCRATCH_BYTES, takeScratch } from "./_scratch.ts";

/**
 * Puts `bytes` into the kernel's page cache of `ino` at `offset`; resolves when the kernel has
 * them (or refused: a failed store only loses the read-around).
 */
export type PageStore = (ino: Ino, offset: number, bytes: Uint8Array) => Promise<unknown>;

/** The default window: one 64 KiB segment. */
export const READ_AROUND_DEFAULT = 64 << 10;

/** Read-around for one mount; see the module notes. */
export class ReadAround {
  /** The window in bytes (a multiple of 4 KiB), 0 when off. */
  readonly window: number;
  #store: PageStore | undefined;
  /** Windows handed to the kernel, and their bytes (for `status` and tests). */
  stored = 0;
  storedBytes = 0;

  /** Read-around with windows of `window` bytes (0: off); needs a page store to do anything. */
  constructor(window = READ_AROUND_DEFAULT) {
    if (!Number.isSafeInteger(window) || window < 0 || window % 4096 !== 0) {
      throw new RangeError(`read_around must be a multiple of 4 KiB, got ${window}`);
    }
    this.window = window;
  }

  /** Sets the mount's page store (once the kernel connection exists); `undefined` turns it off. */
  use(store: PageStore | undefined): void {
    this.#store = store;
  }

  /**
   * The window `[lo, hi)` to read for a random read of `[offset, end)` of `of` (whose size is
   * `size`), or `undefined` when the read should go as asked (off, or the file can change here).
   */
  span(of: OpenFile, offset: number, end: number, size: number): [number, number] | undefined {
    const w = this.window;
    if (w === 0 || this.#store === undefined || !quiet(of)) return undefined;
    const lo = Math.floor(offset / w) * w;
    const hi = Math.min(size, Math.ceil(end / w) * w);
    if (hi - lo <= end - offset || hi - lo > w) return undefined; // one window at most
    return [lo, hi];
  }

  /**
   * A buffer of at least `window` bytes, zeroed, for a window's read: a reused scratch buffer
   * (`_scratch.ts`: a fresh 64 KiB array per random read costs more than the read on a virtual
   * machine) for windows up to 64 KiB.
   */
  take(): Uint8Array {
    if (this.window > SCRATCH_BYTES) return new Uint8Array(this.window);
    return takeScratch().fill(0, 0, this.window);
  }

  /** Returns a buffer of {@linkcode take} that nothing reads any more. */
  give(buf: Uint8Array): void {
    giveScratch(buf);
  }

  /**
   * Hands `bytes` (a view of `buf`, from {@linkcode take}), read at `lo` of `ino` while its change
   * count was `changes`, to the kernel — if the file still cannot change here and did not change
   * since — and gives `buf` back once the kernel has copied it.
   */
  offer(
    ino: Ino,
    of: OpenFile,
    changes: number,
    lo: number,
    bytes: Uint8Array,
    buf: Uint8Array,
  ): void {
    const store = this.#store;
    if (store === undefined || (of.changes ?? 0) !== changes || !quiet(of)) {
      this.give(buf);
      return;
    }
    this.stored++;
    this.storedBytes += bytes.byteLength;
    const p: Promise<unknown> = store(ino, lo, bytes).catch(() => {}).finally(() => this.give(buf));
    const all: Promise<unknown> = of.storing ? Promise.all([of.storing, p]) : p;
    of.storing = all;
    void all.then(() => {
      if (of.storing === all) of.storing = undefined;
    });
  }
}

/** Whether nothing on this mount can change `of`'s data now. */
function quiet(of: OpenFile): boolean {
  return (of.writers ?? 0) === 0 && !of.writer?.dirty;
}

/** Waits until no page store of `of` is in flight (before a change of its data). */
export async function settled(of: OpenFile | undefined): Promise<void> {
  while (of?.storing) await of.storing;
}
