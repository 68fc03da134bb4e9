/**
 * What the block layer (`core/data.ts`) keeps of the metadata it reads: each chunk's resolved
 * slice list per inode, until the inode changes; the block records of slices (immutable), and the
 * inode each slice was last read through (for naming hot blocks). Every bound drops a whole map
 * (cheap to relearn) rather than keeping an LRU.
 *
 * A lookup that raced with a change must not be kept: take {@linkcode SliceLists.generation}
 * before reading the metadata and keep the result only if it is unchanged after.
 *
 * @module
 */

import type { BlockRecord } from "./block_codec.ts";
import type { SliceRecord } from "./slice.ts";
import type { Ino, SliceId } from "./types.ts";

/** Chunk lists kept before all are dropped. */
const MAX_LISTS = 65536;
/** Slices whose owner is kept before all are dropped. */
const MAX_OWNERS = 200_000;
/** Slices whose block records are kept before all are dropped, and their bytes. */
const MAX_RECORDS = 100_000;
const MAX_RECORD_BYTES = 32 << 20;

/** The cached slice lists and block records of one mount. */
export class SliceLists {
  readonly #lists = new Map<Ino, Map<number, SliceRecord[]>>();
  #count = 0;
  #generation = 0;
  readonly #owners = new Map<SliceId, Ino>();
  readonly #records = new Map<SliceId, readonly BlockRecord[]>();
  #recordBytes = 0;

  /** Counts the changes of slice lists: a lookup is kept only if this did not move meanwhile. */
  get generation(): number {
    return this.#generation;
  }

  /** The resolved slice list of `chunk` of `ino`, if kept. */
  get(ino: Ino, chunk: number): SliceRecord[] | undefined {
    return this.#lists.get(ino)?.get(chunk);
  }

  /** Notes that the slices of `segs` were read through `ino` (see {@linkcode ownerOf}). */
  own(ino: Ino, segs: readonly SliceRecord[]): void {
    if (this.#owners.size > MAX_OWNERS) this.#owners.clear();
    for (const sg of segs) if (sg.id !== 0) this.#owners.set(sg.id, ino);
  }

  /** Keeps the resolved slice list `segs` of `chunk` of `ino` (and owns its slices). */
  keep(ino: Ino, chunk: number, segs: SliceRecord[]): void {
    this.own(ino, segs);
    if (this.#count > MAX_LISTS) {
      this.#lists.clear();
      this.#count = 0;
    }
    let perIno = this.#lists.get(ino);
    if (!perIno) this.#lists.set(ino, perIno = new Map());
    if (!perIno.has(chunk)) this.#count++;
    perIno.set(chunk, segs);
  }

  /** Notes a change of `ino`'s slice lists, keeping those of its other chunks. */
  changed(): void {
    this.#generation++;
  }

  /** Forgets the slice lists of `ino` (after it changed). */
  drop(ino: Ino): void {
    this.#generation++;
    const perIno = this.#lists.get(ino);
    if (perIno) {
      this.#count -= perIno.size;
      this.#lists.delete(ino);
    }
  }

  /** The inode slice `id` was last read through, if known. */
  ownerOf(id: SliceId): Ino | undefined {
    return this.#owners.get(id);
  }

  /** Forgets whose slice `id` was (it was deleted). */
  forgetOwner(id: SliceId): void {
    this.#owners.delete(id);
  }

  /** The block records of slice `id`, if kept. */
  records(id: SliceId): readonly BlockRecord[] | undefined {
    return this.#records.get(id);
  }

  /**
   * Keeps a slice's block records (with the bytes of inline blocks, for a slice written here),
   * dropping all of them past 100,000 slices or 32 MiB (segment tables are 640 bytes per 4 MiB
   * block).
   */
  keepRecords(id: SliceId, recs: readonly BlockRecord[]): void {
    if (this.#records.has(id)) return;
    let bytes = 64;
    for (const r of recs) {
      bytes += 48 + (r.segments?.byteLength ?? 0) + (r.inline?.byteLength ?? 0);
    }
    if (this.#records.size >= MAX_RECORDS || this.#recordBytes + bytes > MAX_RECORD_BYTES) {
      this.#records.clear();
      this.#recordBytes = 0;
    }
    this.#records.set(id, recs);
    this.#recordBytes += bytes;
  }
}
