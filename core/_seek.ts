/**
 * `lseek(SEEK_DATA | SEEK_HOLE)` for a `Vfs`: finds the next data or hole from the chunks' resolved
 * slice runs, where slice id 0 (and a run not covered at all) is a hole.
 *
 * @module
 */

import { Errno, FsError } from "./errno.ts";
import type { SliceRecord } from "./slice.ts";
import { type Ino, SEEK_DATA, SEEK_HOLE } from "./types.ts";

/** What {@linkcode seekDataOrHole} needs of the block layer. */
export interface SegmentSource {
  /** The volume's chunk size. */
  readonly chunkSize: number;
  /** The visible runs of chunk `chunk` of `ino`, in order. */
  segments(ino: Ino, chunk: number): Promise<SliceRecord[]>;
}

/**
 * The offset of the first data (`SEEK_DATA`) or hole (`SEEK_HOLE`) at or after `offset` in file
 * `ino` of `size` bytes (`0 <= offset < size`). The end of the file counts as a hole; ENXIO if
 * there is no data after `offset`.
 */
export async function seekDataOrHole(
  data: SegmentSource,
  ino: Ino,
  size: number,
  offset: number,
  whence: typeof SEEK_DATA | typeof SEEK_HOLE,
): Promise<number> {
  const cs = data.chunkSize;
  let pos = offset;
  while (pos < size) {
    const c = Math.floor(pos / cs);
    const base = c * cs;
    const segs = await data.segments(ino, c);
    // The data runs of this chunk at or after pos.
    for (const s of segs) {
      if (s.id === 0) continue;
      const lo = base + s.pos;
      const hi = Math.min(base + s.pos + s.len, size);
      if (hi <= pos) continue;
      if (whence === SEEK_DATA) return Math.max(lo, pos);
      if (lo > pos) return pos; // pos is in a hole
      pos = hi; // inside data: the hole starts at its end at the earliest
    }
    if (whence === SEEK_HOLE && pos < base + cs) return Math.min(pos, size);
    pos = Math.max(pos, base + cs);
  }
  if (whence === SEEK_HOLE) return size;
  throw new FsError(Errno.ENXIO);
}
