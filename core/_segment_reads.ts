/**
 * Random reads of segmented blocks (`core/_block_segments.ts`): on a miss, only the 64 KiB
 * segments a request needs are fetched, with one ranged read of the object, verified against the
 * record's table and cached in memory each under its own key (`<block key>#<segment>`), so a
 * later read of the same segment is a memory hit (a segment read again and then evicted may be
 * demoted to a disk tier, like any block) and a random read allocates 64 KiB, not a 4 MiB
 * block. Used by the block layer (`core/data.ts`) for reads its caller marks as not sequential.
 *
 * A store that reads into a caller's buffer (`file://`: a local file, whose pages the kernel
 * caches) is read differently: the segment of a read within one segment goes into a reused
 * scratch buffer (`core/_scratch.ts`), is verified, and only the bytes asked for are copied out;
 * nothing is kept in memory, so such a read allocates only its answer. Reading the segment again
 * later costs a `pread` from the page cache and a checksum, less than a 64 KiB array per read (the
 * zeroed pages, then the garbage, cost more than that on a virtual machine).
 *
 * @module
 */

import type { BlockStore } from "./block_store.ts";
import { BLOCK_SEGMENTED, type BlockRecord } from "./block_codec.ts";
import { decodeSegments, decodeSegmentsInto, SEGMENT, segmentSpan } from "./_block_segments.ts";
import type { BlockCacheLike } from "./cache/mod.ts";
import { Errno, FsError } from "./errno.ts";
import { giveScratch, takeScratch } from "./_scratch.ts";
import { giveReply, REPLY_BYTES, takeReply } from "./_reply_pool.ts";

/** What {@linkcode SegmentReader} needs of the block layer. */
export interface SegmentSource {
  /** Where blocks are stored. */
  readonly store: BlockStore;
  /** The block cache (segments go to its memory tier only). */
  readonly cache: BlockCacheLike;
  /** The block records of a committed slice. */
  records(id: number): readonly BlockRecord[] | Promise<readonly BlockRecord[]>;
  /** Counts a fetch of `bytes` stored bytes. */
  counted(bytes: number): void;
  /** Reports a corrupt segment (the read fails with it too). */
  onError(err: unknown): void;
  /** Bounds a fetch in time (the block layer's deadline), or returns it as is. */
  bounded<T>(p: Promise<T>, key: string): Promise<T>;
}

/** The cache key of segment `i` of the block with key `key`. */
export function segmentKey(key: string, i: number): string {
  return `${key}#${i}`;
}

/** Fetches, verifies and caches segments of blocks; see the module notes. */
export class SegmentReader {
  readonly #src: SegmentSource;
  #inflight = new Map<string, Promise<Uint8Array[]>>();
  /** Whether the store reads into a given buffer (learnt from its first answer). */
  #readsInto: boolean | undefined;

  /** A reader over the block layer's store and cache. */
  constructor(src: SegmentSource) {
    this.#src = src;
  }

  /**
   * Bytes `[inBlock, inBlock+n)` of block `index` (`blockLen` bytes, key `key`) of slice `id`
   * from its segments, cached or fetched; `undefined` if the block is not segmented (the caller
   * then fetches it whole). A segment read into a scratch buffer is copied into `into` (`n`
   * bytes), if given, instead of a new array; the answer is then `into`.
   */
  async range(
    id: number,
    index: number,
    key: string,
    blockLen: number,
    inBlock: number,
    n: number,
    into?: Uint8Array,
  ): Promise<Uint8Array | undefined> {
    const first = Math.floor(inBlock / SEGMENT);
    const last = Math.floor((inBlock + n - 1) / SEGMENT);
    const cache = this.#src.cache;
    if (first === last && this.#readsInto !== false) {
      const sk = segmentKey(key, first);
      const hit = cache.getSync(sk) ?? (cache.has(sk) ? await cache.get(sk) : undefined);
      const lo = inBlock - first * SEGMENT;
      if (hit) return hit.subarray(lo, lo + n);
      const rec = await this.#segmented(id, index, key);
      if (rec === undefined) return undefined;
      const got = await this.#readOnce(key, rec, blockLen, first, lo, n, into);
      if (got !== undefined) return got;
    }
    const parts: (Uint8Array | undefined)[] = [];
    let missFrom = -1;
    let missTo = -1;
    for (let i = first; i <= last; i++) {
      const sk = segmentKey(key, i);
      // A segment read often and evicted from memory may have been demoted to a disk tier.
      const hit = cache.getSync(sk) ?? (cache.has(sk) ? await cache.get(sk) : undefined);
      parts.push(hit);
      if (!hit) {
        if (missFrom < 0) missFrom = i;
        missTo = i;
      }
    }
    if (missFrom >= 0) {
      const rec = await this.#segmented(id, index, key);
      if (rec === undefined) return undefined;
      const got = await this.#fetch(key, rec, blockLen, missFrom, missTo);
      for (let i = missFrom; i <= missTo; i++) parts[i - first] = got[i - missFrom];
    }
    const lo = inBlock - first * SEGMENT;
    if (first === last) return parts[0]!.subarray(lo, lo + n);
    const out = new Uint8Array(n);
    let o = 0;
    for (let i = first; i <= last; i++) {
      const seg = parts[i - first]!;
      const from = i === first ? lo : 0;
      const to = Math.min(seg.byteLength, inBlock + n - i * SEGMENT);
      out.set(seg.subarray(from, to), o);
      o += to - from;
    }
    return out;
  }

  /** The record of block `index` of slice `id` if the block is segmented (EIO if there is none). */
  async #segmented(
    id: number,
    index: number,
    key: string,
  ): Promise<BlockRecord & { segments: Uint8Array } | undefined> {
    const rec = (await this.#src.records(id))[index];
    if (!rec) throw new FsError(Errno.EIO, `No record of block "${key}"`);
    if (!(rec.flags & BLOCK_SEGMENTED) || !rec.segments) return undefined;
    return rec as BlockRecord & { segments: Uint8Array };
  }

  /**
   * Bytes `[inBlock, inBlock+n)` of block `index` of slice `id` read from a local store
   * (`StoreLimits.local`) with one ranged read of the segments they lie in, verified, into `into`
   * (its first `n` bytes) or a new array; nothing is cached (the kernel caches the file's pages).
   * Segments stored raw and aligned with the request are read straight into `into`; others go
   * through a reused buffer. `undefined` if the block is not segmented (the caller then fetches
   * it whole).
   */
  async direct(
    id: number,
    index: number,
    key: string,
    blockLen: number,
    inBlock: number,
    n: number,
    into?: Uint8Array,
  ): Promise<Uint8Array | undefined> {
    const src = this.#src;
    const rec = await this.#segmented(id, index, key);
    if (rec === undefined) return undefined;
    const first = Math.floor(inBlock / SEGMENT);
    const last = Math.floor((inBlock + n - 1) / SEGMENT);
    const span = segmentSpan(rec.segments, blockLen, first, last);
    const out = into !== undefined && into.byteLength >= n
      ? into.subarray(0, n)
      : new Uint8Array(n);
    const lo = inBlock - first * SEGMENT;
    // Stored bytes as long as the raw run can only be raw segments: read them where they go.
    const runLen = Math.min(blockLen, (last + 1) * SEGMENT) - first * SEGMENT;
    const straight = lo === 0 && runLen === n && span.length === n;
    const temp = straight
      ? undefined
      : span.length <= REPLY_BYTES
      ? takeReply(span.length)
      : new Uint8Array(span.length);
    let stored: Uint8Array;
    try {
      stored = await src.bounded(src.store.get(key, span.offset, span.length, temp ?? out), key);
    } catch (err) {
      // A buffer is not given back: a read cut short by the deadline may still fill it.
      throw new FsError(Errno.EIO, `Cannot read block "${key}": ${err}`, { cause: err });
    }
    src.counted(stored.byteLength);
    try {
      decodeSegmentsInto(stored, rec.segments, blockLen, first, last, out, lo, key);
      return out;
    } catch (err) {
      src.onError(err);
      throw err;
    } finally {
      if (temp !== undefined) giveReply(temp);
    }
  }

  /**
   * Bytes `[lo, lo+n)` of segment `i` read into a scratch buffer, verified and copied out (into
   * `into` if given); not cached (see the module notes). Undefined if the store returned a new
   * array instead (not a local file): the segment is then cached as
   * {@linkcode SegmentReader.#fetch} does.
   */
  async #readOnce(
    key: string,
    rec: BlockRecord,
    blockLen: number,
    i: number,
    lo: number,
    n: number,
    into?: Uint8Array,
  ): Promise<Uint8Array | undefined> {
    const src = this.#src;
    const span = segmentSpan(rec.segments!, blockLen, i, i);
    const scratch = takeScratch();
    let stored: Uint8Array;
    try {
      stored = await src.bounded(src.store.get(key, span.offset, span.length, scratch), key);
    } catch (err) {
      // The scratch buffer is not given back: a read cut short by the deadline may still fill it.
      throw new FsError(Errno.EIO, `Cannot read block "${key}": ${err}`, { cause: err });
    }
    src.counted(stored.byteLength);
    if (stored.buffer !== scratch.buffer) {
      giveScratch(scratch);
      this.#readsInto = false;
      this.#keep(key, rec, blockLen, i, i, stored);
      return undefined; // now cached: the caller's general path finds it
    }
    this.#readsInto = true;
    try {
      const [raw] = decodeSegments(stored, rec.segments!, blockLen, i, i, key);
      if (!into) return raw!.slice(lo, lo + n);
      into.set(raw!.subarray(lo, lo + n));
      return into;
    } catch (err) {
      src.onError(err);
      throw err;
    } finally {
      giveScratch(scratch);
    }
  }

  /** Decodes and verifies fetched segments `[first, last]` and caches each in memory. */
  #keep(
    key: string,
    rec: BlockRecord,
    blockLen: number,
    first: number,
    last: number,
    stored: Uint8Array,
  ): Uint8Array[] {
    const src = this.#src;
    let segs: Uint8Array[];
    try {
      segs = decodeSegments(stored, rec.segments!, blockLen, first, last, key);
    } catch (err) {
      src.onError(err);
      throw err;
    }
    // Each cached segment owns its buffer, so that the cache's byte count is what it holds (a
    // view would keep the whole fetched range alive).
    const own = segs.map((s) => s.byteLength === s.buffer.byteLength ? s : s.slice());
    own.forEach((s, i) => src.cache.put(segmentKey(key, first + i), s, { memoryOnly: true }));
    return own;
  }

  /** Segments `[first, last]` of a block, fetched by one ranged read (shared while in flight). */
  #fetch(
    key: string,
    rec: BlockRecord,
    blockLen: number,
    first: number,
    last: number,
  ): Promise<Uint8Array[]> {
    const flight = `${key}#${first}-${last}`;
    let p = this.#inflight.get(flight);
    if (p) return p;
    const src = this.#src;
    p = src.bounded(
      (async () => {
        const span = segmentSpan(rec.segments!, blockLen, first, last);
        let stored: Uint8Array;
        try {
          stored = await src.store.get(key, span.offset, span.length);
        } catch (err) {
          throw new FsError(Errno.EIO, `Cannot read block "${key}": ${err}`, { cause: err });
        }
        src.counted(stored.byteLength);
        return this.#keep(key, rec, blockLen, first, last, stored);
      })(),
      key,
    );
    this.#inflight.set(flight, p);
    const done = () => this.#inflight.delete(flight);
    p.then(done, done);
    return p;
  }
}
