/**
 * File data in the metadata: the slice lists of chunks and the references that keep slices and
 * dedup blobs alive, as functions over a {@linkcode KvTxn}.
 *
 * A write commits slices (`commitSlices`): each slice's info (`K`) with one reference per record
 * that uses it, its inline blocks (`I`), a reference to each dedup blob (`B`), and its records
 * appended to their chunks (`A<ino>C<chunk>`). Truncation, hole punching and overwrites append
 * records of slice 0 (zeros) or drop whole chunks; a chunk list that grows long is compacted to
 * the records still visible. A slice whose last reference goes is moved to the garbage list (`G`)
 * with the blobs whose last reference went with it; the block layer deletes their objects after
 * the transaction commits. `copyRange` shares slices between files (only references change).
 *
 * Each change of a chunk list also updates the file's `allocated` bytes (its `st_blocks`) in the
 * same transaction, by the visible data bytes the chunk gained or lost: an overwrite counts once,
 * a hole or a punched range not at all. That costs a resolve of the one chunk list changed (a
 * short list: it is compacted), never a scan of the file, and getattr reads the count from the
 * attributes. A file written by a version that did not count is counted once, by a scan, at its
 * next change. `fallocate` counts the range it allocates; the count never exceeds the size, so
 * data written into an allocated range is not counted twice.
 *
 * @module
 */

import type { KvTxn } from "../kv.ts";
import { Errno, FsError } from "../errno.ts";
import { type Attr, type Ino, S_IFMT, S_IFREG, type SliceId, type Timespec } from "../types.ts";
import { concatBytes, decodeRecords, encodeRecords, resolveSegments } from "../slice.ts";
import type { SliceRecord } from "../slice.ts";
import { type BlockRecord, decodeBlockRecords, encodeBlockRecords } from "../block_codec.ts";
import { BLOCK_EXTERNAL, BLOCK_INLINE } from "../block_codec.ts";
import {
  decodeBlob,
  decodeNum,
  decodeSliceInfo,
  encodeBlob,
  encodeGarbage,
  encodeNum,
  encodeSliceInfo,
  SLICE_INFO_SIZE,
} from "./_codec.ts";
import {
  blobKey,
  chunkIndexOf,
  chunkKey,
  chunkPrefix,
  externalKey,
  garbageKey,
  inlineKey,
  keyOrphanCounter,
  keyUsedSpace,
  sliceKey,
} from "./keys.ts";
import {
  applyAttrChanges,
  type AttrChanges,
  bump,
  getAttr,
  now,
  putAttr,
  spaceOf,
} from "./_inode.ts";
import { charge } from "./quotas.ts";

/** Counts a change of `a`'s space in the volume and in the quotas above it (`quotas.ts`). */
async function chargeSpace(tx: KvTxn, a: Attr, oldSize: number, enforce: boolean): Promise<void> {
  const delta = spaceOf(a.size) - spaceOf(oldSize);
  if (delta === 0) return;
  await charge(tx, a.parent, delta, 0, enforce && delta > 0);
  await bump(tx, keyUsedSpace, delta);
}

/** A slice whose blocks may be deleted once the transaction that freed it has committed. */
export interface FreedSlice {
  /** The slice (or, for blobs orphaned by racing commits, 2^52 + a counter). */
  id: SliceId;
  /** Bytes the slice keeps in the block store (0 if all its blocks were inline). */
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

/** The result of a change that may free slices. */
export interface Freeing {
  /** The slices freed, to delete after the commit. */
  freed: FreedSlice[];
}

/** The result of a change to an inode that may free slices. */
export interface WithAttr extends Freeing {
  /** The inode's attributes after the change. */
  attr: Attr;
}

/** What a commit leaves: {@linkcode WithAttr}, and the slice list of each chunk it wrote. */
export interface Committed extends WithAttr {
  /** By chunk index: the chunk's slice list as the commit left it, oldest first. */
  chunks: Map<number, SliceRecord[]>;
}

/** A slice to add to a chunk's list. */
export interface NewSlice {
  /** The chunk the record goes to. */
  chunk: number;
  /** The record to append. */
  record: SliceRecord;
  /** How each block of the slice is stored. */
  blocks: readonly BlockRecord[];
  /** For dedup blocks: the key this writer uploaded the blob under, if it did. */
  uploaded?: readonly (string | undefined)[];
}

/** A chunk list grows this long before it is compacted (then every 32 records). */
const COMPACT_AT = 64;

/** Bytes of data (not holes) that the records of one chunk show. */
function dataBytes(recs: readonly SliceRecord[]): number {
  let n = 0;
  for (const s of resolveSegments(recs)) if (s.id !== 0) n += s.len;
  return n;
}

/** Makes sure `a.allocated` is counted: by a scan of the file's chunks if it never was. */
async function counted(tx: KvTxn, a: Attr): Promise<void> {
  if (a.allocated !== undefined) return;
  a.allocated = 0;
  for (const [, v] of await tx.scan(chunkPrefix(a.ino))) a.allocated += dataBytes(decodeRecords(v));
}

/** Stores `a` with `allocated` (counted) moved by `delta`, at most its size. */
function putCounted(tx: KvTxn, a: Attr, delta: number): void {
  a.allocated = Math.max(0, Math.min(a.size, (a.allocated ?? 0) + delta));
  putAttr(tx, a);
}

/** Drops one reference per record; slices reaching zero go to the garbage list. */
export async function unref(
  tx: KvTxn,
  recs: readonly SliceRecord[],
  freed: FreedSlice[],
): Promise<void> {
  await ref(tx, recs, -1, freed);
}

/** Adds one reference per record to each record's slice (a clone shares them). */
export async function addRefs(tx: KvTxn, recs: readonly SliceRecord[]): Promise<void> {
  await ref(tx, recs, +1, []);
}

/**
 * Adds `delta` references per record to each record's slice; slices reaching zero go to the
 * garbage list (with the blobs whose last reference went with them) and to `freed`.
 */
async function ref(
  tx: KvTxn,
  recs: readonly SliceRecord[],
  delta: number,
  freed: FreedSlice[],
): Promise<void> {
  const counts = new Map<number, number>();
  for (const r of recs) if (r.id !== 0) counts.set(r.id, (counts.get(r.id) ?? 0) + 1);
  if (counts.size === 0) return;
  const ids = [...counts.keys()] as SliceId[];
  const raws = await tx.getMany(ids.map(sliceKey));
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    const raw = raws[i];
    if (!raw) continue; // never committed or already freed: nothing to count
    const info = decodeSliceInfo(raw);
    const refs = info.refs + delta * counts.get(id)!;
    if (refs <= 0) {
      tx.delete(sliceKey(id));
      const blobs: string[] = [];
      const records = decodeBlockRecords(raw.subarray(SLICE_INFO_SIZE));
      for (let bi = 0; bi < records.length; bi++) {
        const b = records[bi]!;
        if (b.flags & BLOCK_INLINE) tx.delete(inlineKey(id, bi));
        if (b.hash) {
          const key = await unrefBlob(tx, b.hash);
          if (key) blobs.push(key);
        }
      }
      // A slice whose blocks all lived in the metadata, or in an imported object outside the
      // volume, leaves nothing in the store: no garbage entry (one page less in the commit of an
      // unlink of a small file), but still reported freed, so that the block layer forgets what
      // it knew of it. An imported slice's reference to its object goes with it.
      if (records.some((b) => b.flags & BLOCK_EXTERNAL)) tx.delete(externalKey(id));
      const size = records.length &&
          records.every((b) => b.flags & (BLOCK_INLINE | BLOCK_EXTERNAL))
        ? 0
        : info.size;
      if (size > 0 || blobs.length) tx.set(garbageKey(id), encodeGarbage(size, blobs));
      freed.push(blobs.length ? { id, size, blobs } : { id, size });
    } else {
      tx.set(
        sliceKey(id),
        concatBytes(encodeSliceInfo(refs, info.size), raw.subarray(SLICE_INFO_SIZE)),
      );
    }
  }
}

/** Drops one reference to a dedup blob; returns its object key if that was the last. */
async function unrefBlob(tx: KvTxn, hash: Uint8Array): Promise<string | undefined> {
  const k = blobKey(hash);
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

/** The object key of the stored blob of each content hash, if one is referenced. */
export async function blobs(
  tx: KvTxn,
  hashes: readonly Uint8Array[],
): Promise<(string | undefined)[]> {
  const raws = await tx.getMany(hashes.map(blobKey));
  return raws.map((raw) => raw ? decodeBlob(raw).key : undefined);
}

/**
 * Appends records to a chunk, compacting the list when it grows long. Returns the data bytes the
 * chunk gained (negative if it lost some).
 */
async function append(
  tx: KvTxn,
  ino: Ino,
  chunk: number,
  recs: SliceRecord[],
  freed: FreedSlice[],
): Promise<{ gained: number; records: SliceRecord[] }> {
  const key = chunkKey(ino, chunk);
  const old = await tx.get(key);
  const had = (old?.byteLength ?? 0) / 24;
  const count = had + recs.length;
  const before = decodeRecords(old);
  const records = [...before, ...recs];
  const gained = dataBytes(records) - dataBytes(before);
  // Compact from time to time (amortised): drop records no longer visible.
  if (count <= COMPACT_AT || Math.floor(count / 32) === Math.floor(had / 32)) {
    tx.set(key, concatBytes(old, encodeRecords(recs)));
    return { gained, records };
  }
  const after = resolveSegments(records).filter((r) => r.id !== 0);
  // The references the new records bring are added by the caller; rebalance the rest.
  await ref(tx, after, +1, freed);
  await ref(tx, records, -1, freed);
  tx.set(key, encodeRecords(after));
  return { gained, records: after };
}

/** The number of the next set of orphaned blobs. */
async function nextOrphan(tx: KvTxn): Promise<number> {
  const n = decodeNum(await tx.get(keyOrphanCounter)) + 1;
  tx.set(keyOrphanCounter, encodeNum(n));
  return n;
}

/**
 * Commits written slices: adds each slice's info (one reference per record), appends the
 * records to their chunks in order, and grows the file to `length` if it is shorter.
 * {@linkcode NeedUploadError} if a dedup block has no stored blob. Returns the chunks' new slice
 * lists too, so that the writer's mount can read the file back without reading them again.
 * `changes` (held back by the writer's mount) apply last.
 */
export async function commitSlices(
  tx: KvTxn,
  ino: Ino,
  slices: readonly NewSlice[],
  length: number,
  mtime: Timespec | undefined,
  changes?: AttrChanges,
): Promise<Committed> {
  const freed: FreedSlice[] = [];
  const a = await getAttr(tx, ino);
  await counted(tx, a);
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
      const k = blobKey(hash);
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
      sliceKey(id as SliceId),
      concatBytes(encodeSliceInfo(info.refs, info.size), encodeBlockRecords(info.blocks)),
    );
    info.blocks.forEach((b, bi) => {
      if (b.inline) tx.set(inlineKey(id as SliceId, bi), b.inline);
    });
  }
  if (orphans.length) {
    // Blobs uploaded twice by racing writers: the loser's copy is garbage.
    const gid = (2 ** 52 + await nextOrphan(tx)) as SliceId;
    tx.set(garbageKey(gid), encodeGarbage(0, orphans));
    freed.push({ id: gid, size: 0, blobs: orphans });
  }
  let gained = 0;
  const chunks = new Map<number, SliceRecord[]>();
  for (const [chunk, recs] of byChunk) {
    const r = await append(tx, ino, chunk, recs, freed);
    gained += r.gained;
    chunks.set(chunk, r.records);
  }
  const oldSize = a.size;
  if (length > a.size) a.size = length;
  if (mtime) a.mtime = a.ctime = mtime;
  if (changes) applyAttrChanges(a, changes);
  putCounted(tx, a, gained);
  await chargeSpace(tx, a, oldSize, false); // acknowledged writes: Vfs.write checked the quota
  return { attr: a, freed, chunks };
}

/**
 * Sets the length of a regular file (chunks of `chunkSize` bytes). Shrinking drops whole chunks
 * past the end and masks the tail of the last one with zeros, so that growing again reads zeros.
 */
export async function truncate(
  tx: KvTxn,
  chunkSize: number,
  ino: Ino,
  size: number,
  t: Timespec,
): Promise<WithAttr> {
  const freed: FreedSlice[] = [];
  const a = await getAttr(tx, ino);
  if ((a.mode & S_IFMT) !== S_IFREG) throw new FsError(Errno.EINVAL, "Not a regular file");
  await counted(tx, a);
  const gained = size < a.size
    ? await zeroRange(tx, chunkSize, ino, size, a.size - size, true, freed)
    : 0;
  const oldSize = a.size;
  a.size = size;
  a.mtime = a.ctime = t;
  putCounted(tx, a, gained);
  await chargeSpace(tx, a, oldSize, true);
  return { attr: a, freed };
}

/**
 * Makes `[off, off+len)` read as zeros; with `toEnd`, drops whole chunks past `off`. Returns the
 * data bytes gained (zero or less).
 */
async function zeroRange(
  tx: KvTxn,
  cs: number,
  ino: Ino,
  off: number,
  len: number,
  toEnd: boolean,
  freed: FreedSlice[],
): Promise<number> {
  const end = off + len;
  let gained = 0;
  const first = Math.floor(off / cs);
  if (toEnd) {
    const keepFirst = off % cs !== 0;
    const startDrop = keepFirst ? first + 1 : first;
    const chunks = await tx.scan(chunkPrefix(ino));
    const dropped: SliceRecord[] = [];
    for (const [k, v] of chunks) {
      if (chunkIndexOf(k) < startDrop) continue;
      tx.delete(k);
      const recs = decodeRecords(v);
      gained -= dataBytes(recs);
      dropped.push(...recs);
    }
    await unref(tx, dropped, freed);
    if (keepFirst && await tx.get(chunkKey(ino, first))) {
      const pos = off % cs;
      gained += (await append(tx, ino, first, [{
        pos,
        id: 0 as SliceId,
        size: 0,
        off: 0,
        len: cs - pos,
      }], freed)).gained;
    }
    return gained;
  }
  for (let c = first; c * cs < end; c++) {
    const from = Math.max(off, c * cs) - c * cs;
    const to = Math.min(end, (c + 1) * cs) - c * cs;
    if (!await tx.get(chunkKey(ino, c))) continue;
    const rec = { pos: from, id: 0 as SliceId, size: 0, off: 0, len: to - from };
    gained += (await append(tx, ino, c, [rec], freed)).gained;
  }
  return gained;
}

/** What `fallocate` is asked to do. */
export interface Allocation {
  /** Start of the range. */
  off: number;
  /** Length of the range. */
  len: number;
  /** Punch a hole (the range reads as zeros, the size is kept). */
  punch: boolean;
  /** Without `punch`: keep the size (else grow the file to cover the range). */
  keepSize: boolean;
}

/** `fallocate`: punch a hole (zeros, size kept) or grow the file to cover a range. */
export async function fallocate(
  tx: KvTxn,
  chunkSize: number,
  ino: Ino,
  { off, len, punch, keepSize }: Allocation,
): Promise<WithAttr> {
  const freed: FreedSlice[] = [];
  const a = await getAttr(tx, ino);
  if ((a.mode & S_IFMT) !== S_IFREG) throw new FsError(Errno.ENODEV);
  await counted(tx, a);
  const t = now();
  let gained = 0;
  if (punch) {
    const end = Math.min(off + len, a.size);
    if (end > off) gained = await zeroRange(tx, chunkSize, ino, off, end - off, false, freed);
  } else {
    gained = len; // allocated, as far as the size goes
    if (!keepSize && off + len > a.size) {
      const oldSize = a.size;
      a.size = off + len;
      await chargeSpace(tx, a, oldSize, true);
    }
  }
  a.mtime = a.ctime = t;
  putCounted(tx, a, gained);
  return { attr: a, freed };
}

/** What `copyRange` is asked to copy: `[offIn, offIn+len)` of `inoIn` to `offOut` of `inoOut`. */
export interface RangeCopy {
  /** The source file. */
  inoIn: Ino;
  /** Where the range starts in the source. */
  offIn: number;
  /** The destination file. */
  inoOut: Ino;
  /** Where the range goes in the destination. */
  offOut: number;
  /** Bytes to copy (fewer past the end of the source). */
  len: number;
}

/**
 * Copies a range from one file to another by sharing slices (only metadata changes; no bytes
 * move). Returns the bytes copied.
 */
export async function copyRange(
  tx: KvTxn,
  chunkSize: number,
  { inoIn, offIn, inoOut, offOut, len }: RangeCopy,
): Promise<WithAttr & { copied: number }> {
  const freed: FreedSlice[] = [];
  const src = await getAttr(tx, inoIn);
  const dst = inoIn === inoOut ? src : await getAttr(tx, inoOut);
  if ((src.mode & S_IFMT) !== S_IFREG || (dst.mode & S_IFMT) !== S_IFREG) {
    throw new FsError(Errno.EINVAL, "Not a regular file");
  }
  const n = Math.max(0, Math.min(len, src.size - offIn));
  if (n === 0) return { copied: 0, attr: dst, freed };
  await counted(tx, dst);
  if (inoIn === inoOut && offIn < offOut + n && offOut < offIn + n) {
    throw new FsError(Errno.EINVAL, "Overlapping ranges in the same file");
  }
  const cs = chunkSize;
  // Visible segments of the source range, in file offsets.
  const pieces: Array<{ at: number; len: number; id: SliceId; size: number; off: number }> = [];
  for (let c = Math.floor(offIn / cs); c * cs < offIn + n; c++) {
    const base = c * cs;
    const lo = Math.max(offIn, base);
    const hi = Math.min(offIn + n, base + cs);
    const segs = resolveSegments(decodeRecords(await tx.get(chunkKey(inoIn, c))));
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
  await ref(tx, added, +1, freed);
  let gained = 0;
  for (const [c, recs] of byChunk) {
    const exists = !!await tx.get(chunkKey(inoOut, c));
    const keep = exists ? recs : recs.filter((r) => r.id !== 0);
    if (keep.length) gained += (await append(tx, inoOut, c, keep, freed)).gained;
  }
  const t = now();
  const oldSize = dst.size;
  dst.size = Math.max(dst.size, offOut + n);
  dst.mtime = dst.ctime = t;
  putCounted(tx, dst, gained);
  await chargeSpace(tx, dst, oldSize, true);
  return { copied: n, attr: dst, freed };
}
