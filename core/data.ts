/**
 * The block layer: reads and writes slices as blocks in a {@linkcode BlockStore}, with a block
 * cache, a cache of resolved chunk slice lists, and deletion of freed slices. It reaches the
 * metadata only through {@linkcode SliceMeta}; the write path of a file is `core/writer.ts`.
 *
 * ## Decisions
 *
 * - **Layout.** A file is a sequence of chunks (`chunkSize`, 64 MiB by default), each with a list
 *   of slice records in the metadata (`core/slice.ts`); a slice, an immutable and never reused
 *   numbered run of bytes, is stored as blocks of at most `blockSize` (4 MiB by default) under
 *   `chunks/<id / 1e6>/<id / 1e3>/<id>_<index>_<length>`. The id makes every object written once
 *   and never overwritten: an overwrite is a new slice that shadows the old one, so no read
 *   modifies and writes back an object, and a block key always means the same bytes. The cache is
 *   therefore keyed by block key and never invalidated, only evicted, and a reader that knows a
 *   slice's size knows every block's key and length without asking the store.
 * - **Block format.** Each block is stored optionally LZ4-compressed (when the volume says so and
 *   it helps) with an XXH3-64 checksum of its raw bytes in the slice's block records
 *   (`core/block_codec.ts`), encoded and decoded on a pool of workers for blocks of 128 KiB and
 *   more (`putBlock` copies those first: the buffer is transferred). New blocks are segmented
 *   (`core/_block_segments.ts`): each 64 KiB segment compressed apart, its stored length and
 *   XXH3-64 in the record, so that any run of segments can be fetched by a ranged read and
 *   verified before a byte of it is returned. Not segmented: inline and dedup blocks, blocks of
 *   a store that reads objects whole (encryption, `limits.wholeObjects`), and blocks written
 *   before (the record's `BLOCK_SEGMENTED` flag tells). A corrupt block or segment is `EIO` and
 *   is reported to `onError`.
 * - **Whole blocks or segments.** A read the caller marks `whole` (sequential: the handle has a
 *   readahead window, or it starts at offset 0; and every internal read) fetches whole blocks and
 *   caches them; a random read that misses fetches only the segments it needs with one ranged
 *   read (`core/_segment_reads.ts`) and caches each segment in memory under
 *   `<block key>#<segment>`, so a random 4 KiB read costs 64 KiB of transfer and memory, not
 *   4 MiB. With a disk cache tier (remote storage), the whole block is then fetched in the
 *   background into it (within the prefetch limit, else not): the reply does not wait for it,
 *   and the block's later reads are disk hits, as s3fs's local copy of an open file gives; after
 *   32 random reads of a file, all of it is (`randomFill`, `core/_random_fill.ts`). A disk tier's
 *   block is read there in the range needed either way (it checksums 64 KiB segments of its own).
 * - **Inline blocks.** A block of at most `inlineMax` bytes (16 KiB by default: small files and
 *   the tails of others) is not put in the store: its stored bytes travel in its block record and
 *   are committed in the same metadata transaction as the slice (`I` keys), so a small file costs
 *   one transaction instead of one object (one S3 PUT). The slice list and the inline blocks of
 *   its visible slices are read in one transaction (`readChunkFull`), so the first read of a small
 *   file costs no store request either. Inline blocks are cached in memory only: a disk copy would
 *   not be cheaper than the metadata.
 * - **Dedup.** With `dedup`, blocks are content-addressed: a BLAKE3 hash in the block record names
 *   a shared blob (`blobs/<hex[0..2]>/<hex[2..4]>/<hex>_<id>_<index>`), reference-counted in the
 *   metadata (`B` keys). `putBlock` uploads a block only if no referenced blob of that hash exists
 *   (looked up in the metadata, remembered in memory); the commit adds the references. The blob's
 *   name carries the slice and block of its first writer, so two writers racing to upload one
 *   content never overwrite each other's object: the commit keeps the first and frees the other
 *   as an orphan. A blob freed between the lookup and the commit makes the commit fail with
 *   `NeedUploadError`; the writer then uploads its own copy (`putBlob`) and commits again. Reads
 *   still cache dedup blocks under their slice's block key.
 * - **Deadline.** With `fetchDeadlineMs` (the mount's `io_deadline`), a block fetch that has not
 *   settled that long after it started fails its readers with `EIO`, whatever the store's retries.
 *   The fetch itself goes on (a late block is still cached), and until it settles a read of that
 *   block fails at once: the kernel's immediate retry of a failed read, or a reader queued
 *   behind the first, waits for the same deadline instead of starting a new one.
 * - **Caches.** Concurrent misses of one block share one fetch. Block records (immutable) are
 *   kept per slice id and blob keys per hash, both dropped wholesale past 100,000 entries. A
 *   chunk's resolved segments are kept per inode (`core/_slice_lists.ts`) until `invalidate`
 *   (after each change of the inode); a lookup that raced with a change is returned but not
 *   kept. A commit here keeps the lists it left in the chunks it wrote (`committed`), so a file
 *   written and closed reads back with no metadata read. Written blocks are cached
 *   only with a disk tier (by default): there a copy saves a download, while in memory alone a
 *   write stream would evict what readers use. Of those, only blocks shorter than the block size
 *   (small files, the ends of files) unless `cacheLargeWrites` (as JuiceFS's
 *   `--cache-large-write`): a stream of full blocks written is usually read elsewhere or not soon,
 *   and copying each one into the disk cache cost a quarter of the daemon's CPU in a durable 1
 *   GiB write to s3rver, on a machine where that CPU is the server's too (`bench/README.md`).
 * - **Readahead.** Sequential reads fetch ahead, and random reads whole blocks behind them, in
 *   the background (`core/_prefetch.ts`); `warm` (the predictor's replay) waits for room in the
 *   cache instead (kept until read).
 * - **Deletion.** Freed slices are deleted only after the metadata transaction that freed them has
 *   committed (the metadata moved them to its garbage list in that same transaction): first their
 *   objects (1,000 keys per request), then their garbage entries. A crash in between leaves the
 *   entries, deleted again by `collectGarbage` at the next mount. Objects uploaded for slices
 *   that never committed are unknown to the metadata; `slayerfs gc` (`core/gc.ts`) finds them.
 *
 * @module
 */

import type { BlockStore } from "./block_store.ts";
import { Errno, FsError } from "./errno.ts";
import type { Committed, FreedSlice, NewSlice } from "./meta/mod.ts";
import { blobObjectKey, blockKey, resolveSegments, type SliceRecord } from "./slice.ts";
import type { Ino, SliceId } from "./types.ts";
import { BLOCK_INLINE, type BlockRecord, CodecPool, decodeBlock } from "./block_codec.ts";
import { type EncodedBlock, toHex } from "./block_codec.ts";
import { encodeForStore, encodePool } from "./_data_put.ts";
import type { BufferPool } from "./_buffer_pool.ts";
import { SegmentReader } from "./_segment_reads.ts";
import { withDeadline } from "./_deadline.ts";
import { collectGarbage, deleteSlices, warmBlocks } from "./_data_blocks.ts";
import { inlineKey } from "./meta/keys.ts";
import { NotFoundError } from "./block_store.ts";
import { getLog } from "./log.ts";
import { RandomFill } from "./_random_fill.ts";
import { BlockCache, type BlockCacheLike } from "./cache/mod.ts";

const log = getLog("data");

export type { DataOptions, SliceMeta, StoredBlock } from "./_data_types.ts";
import type { DataOptions, SliceMeta, StoredBlock } from "./_data_types.ts";
import { Prefetcher } from "./_prefetch.ts";
import { SliceLists } from "./_slice_lists.ts";

/**
 * Reads and writes file data as slices of blocks.
 *
 * @typeParam M The metadata it is given, kept as {@linkcode DataEngine.meta} for the file writers
 * (`core/writer.ts`), which commit through it.
 */
export class DataEngine<M extends SliceMeta = SliceMeta> {
  /** Where blocks are stored. */
  readonly store: BlockStore;
  /** The metadata of the volume. */
  readonly meta: M;
  /** The volume's block size: a slice is stored as blocks of at most this many bytes. */
  readonly blockSize: number;
  /** The volume's chunk size: a file is a sequence of chunks, each with its slice list. */
  readonly chunkSize: number;
  /** The block cache. */
  readonly cache: BlockCacheLike;
  /** Whether written blocks are cached too. */
  readonly cacheWrites: boolean;
  /** Whether written blocks of the full block size are cached too (with `cacheWrites`). */
  readonly cacheLargeWrites: boolean;
  /** Block uploads in flight per file before its writer waits. */
  readonly uploadConcurrency: number;
  #inflight = new Map<string, Promise<Uint8Array>>();
  /** Whether a fetch of block `key` is in flight. */
  readonly fetching = (key: string): boolean => this.#inflight.has(key);
  readonly #lists = new SliceLists();
  readonly #segReader: SegmentReader;
  /** Whether new blocks are segmented and random reads fetch only their segments. */
  readonly segmented: boolean;
  readonly #prefetcher: Prefetcher;
  #blobs = new Map<string, string>();
  /** Whether blocks are content-addressed and shared (the volume's `dedup`). */
  readonly dedup: boolean;
  /** Blocks of at most this many bytes are kept in the metadata (the volume's `inlineMax`). */
  readonly inlineMax: number;
  /** The workers that compress, checksum and hash blocks. */
  readonly #codec: CodecPool;
  /** Buffers of the block copies sent to the codec workers (`core/_data_put.ts`). */
  readonly #buffers: BufferPool;
  /** Whether blocks are LZ4-compressed (the volume's `compression`). */
  readonly compress: boolean;
  /** Called with errors no request can report. */
  readonly onError: (err: unknown) => void;
  /** Objects fetched from the store for reads (inline blocks excluded), and their stored bytes. */
  readonly fetched: { objects: number; bytes: number } = { objects: 0, bytes: 0 };
  #countFetch = (n: number) => (this.fetched.objects++, this.fetched.bytes += n);
  readonly #fetchDeadlineMs: number | undefined;
  /** Fills files read at random into the disk cache tier (`core/_random_fill.ts`). */
  readonly randomFill: RandomFill;
  /** A local store of segmented blocks, no disk tier: reads take their segments into the reply. */
  readonly #direct: boolean;

  /** Creates the block layer of a volume. */
  constructor(store: BlockStore, meta: M, options: DataOptions = {}) {
    this.store = store;
    this.meta = meta;
    this.blockSize = meta.format.blockSize;
    this.chunkSize = meta.format.chunkSize;
    this.cache = options.cache ?? new BlockCache(options.cacheBytes ?? 32 << 20);
    this.cacheWrites = options.cacheWrites ?? options.cache !== undefined;
    this.cacheLargeWrites = options.cacheLargeWrites ?? false;
    this.uploadConcurrency = options.uploadConcurrency ??
      Math.max(2, Math.min(16, store.limits.concurrency));
    this.#codec = new CodecPool(options.codecWorkers);
    this.#buffers = encodePool(this.blockSize, this.uploadConcurrency);
    this.compress = meta.format.compression === "lz4";
    this.dedup = meta.format.dedup === true;
    this.inlineMax = meta.format.inlineMax ?? 0;
    this.onError = options.onError ??
      ((err) => log.error("Block layer error: {error}", { error: err }));
    this.#fetchDeadlineMs = options.fetchDeadlineMs;
    this.segmented = (options.segmented ?? true) && store.limits.wholeObjects !== true;
    this.#segReader = new SegmentReader({
      store,
      cache: this.cache,
      records: (id) => this.#lists.records(id as SliceId) ?? this.blockRecords(id as SliceId),
      counted: this.#countFetch,
      onError: (err) => this.onError(err),
      bounded: (p, key) => this.#bounded(p, key),
    });
    this.randomFill = new RandomFill(this, options.randomFill);
    this.#prefetcher = new Prefetcher(this, options.readahead);
    this.#direct = this.segmented && store.limits.local === true && !this.cache.wantsSegmentSums;
  }

  /** The most a sequential read fetches ahead of itself, in bytes (0: nothing). */
  get readaheadMax(): number {
    return this.#prefetcher.readaheadMax;
  }

  /** Stops the codec workers and closes the cache. */
  async close(): Promise<void> {
    this.randomFill.close();
    this.#codec.close();
    await this.cache.close?.();
  }

  /** The inode a slice was last read through (for naming hot blocks), if known. */
  ownerOf(id: SliceId): Ino | undefined {
    return this.#lists.ownerOf(id);
  }

  /**
   * Stores block `index` of slice `id` (compressed and checksummed as the volume says) and
   * returns its record. `raw` stays the caller's.
   */
  async putBlock(id: SliceId, index: number, raw: Uint8Array): Promise<StoredBlock> {
    if (raw.byteLength <= this.inlineMax) {
      // Small: committed into the metadata with the slice, no object in the store.
      const input = raw.byteLength >= 128 * 1024 ? raw.slice() : raw;
      const enc = await this.#codec.encode(input, this.compress, false);
      enc.record.flags |= BLOCK_INLINE;
      enc.record.inline = enc.data === raw ? raw.slice() : enc.data;
      return { record: enc.record };
    }
    const { enc, release } = await encodeForStore(this.#codec, this.#buffers, raw, {
      compress: this.compress,
      dedup: this.dedup,
      sums: this.#cachesWrite(raw.byteLength) && this.cache.wantsSegmentSums === true &&
        !this.dedup,
      segmented: this.segmented && !this.dedup,
    });
    const stored = await this.#store(id, index, raw, enc).catch((err) => {
      release(false);
      throw err;
    });
    release(true);
    return stored;
  }

  /** Whether a written block of `len` bytes goes into the cache. */
  #cachesWrite(len: number): boolean {
    return this.cacheWrites && (len < this.blockSize || this.cacheLargeWrites);
  }

  /** Stores an encoded block (see {@linkcode putBlock}). */
  async #store(id: SliceId, index: number, raw: Uint8Array, enc: EncodedBlock) {
    if (!enc.record.hash) {
      const key = blockKey(id, index, raw.byteLength);
      await this.store.put(key, enc.data);
      if (this.#cachesWrite(raw.byteLength)) {
        this.cache.put(key, raw, {
          fromWrite: true,
          ...(enc.sums ? { segmentSums: enc.sums } : {}),
        });
      }
      return { record: enc.record };
    }
    // Content-addressed: store the blob only if no referenced copy exists.
    if (await this.#blobKey(enc.record.hash)) return { record: enc.record };
    const key = this.#newBlobKey(enc.record.hash, id, index);
    await this.store.put(key, enc.data);
    return { record: enc.record, uploaded: key };
  }

  /** Uploads a dedup block under a key of its own (a commit found no stored copy). */
  async putBlob(id: SliceId, index: number, raw: Uint8Array): Promise<string> {
    const enc = await this.#codec.encode(raw.slice(), this.compress, true);
    const key = this.#newBlobKey(enc.record.hash!, id, index);
    await this.store.put(key, enc.data);
    return key;
  }

  #newBlobKey(hash: Uint8Array, id: SliceId, index: number): string {
    return blobObjectKey(toHex(hash), id, index);
  }

  async #blobKey(hash: Uint8Array): Promise<string | undefined> {
    const hex = toHex(hash);
    const hit = this.#blobs.get(hex);
    if (hit) return hit;
    const key = await this.meta.blob(hash);
    if (key) {
      if (this.#blobs.size > 100_000) this.#blobs.clear();
      this.#blobs.set(hex, key);
    }
    return key;
  }

  /** The block records of a committed slice (cached; they never change). */
  async blockRecords(id: SliceId): Promise<readonly BlockRecord[]> {
    const hit = this.#lists.records(id);
    if (hit) return hit;
    const recs = await this.meta.sliceBlockRecords(id);
    this.#lists.keepRecords(id, recs);
    return recs;
  }

  /** `fetch`, failing with `EIO` past the fetch deadline (see the module notes). */
  #bounded<T>(fetch: Promise<T>, key: string): Promise<T> {
    if (this.#fetchDeadlineMs === undefined) return fetch;
    return withDeadline(fetch, this.#fetchDeadlineMs, () =>
      new FsError(
        Errno.EIO,
        `Block "${key}" was not fetched within the ${this.#fetchDeadlineMs! / 1000} s ` +
          "deadline (io_deadline)",
      ));
  }

  /** A whole raw block, from the cache or the store (concurrent misses share one fetch). */
  getBlock(id: SliceId, index: number, len: number): Promise<Uint8Array> {
    const key = blockKey(id, index, len);
    const hit = this.cache.getSync(key);
    if (hit) return Promise.resolve(hit);
    let p = this.#inflight.get(key);
    if (!p) {
      const fetch = (async () => {
        const cached = await this.cache.get(key);
        if (cached) return cached;
        const rec = (await this.blockRecords(id))[index];
        if (!rec) throw new FsError(Errno.EIO, `No record of block "${key}"`);
        let stored: Uint8Array;
        let objectKey = key;
        try {
          if (rec.flags & BLOCK_INLINE) {
            // A slice written here keeps its inline bytes in its records (`committed`).
            const inline = rec.inline ?? await this.meta.inlineBlock(id, index);
            if (!inline) throw new FsError(Errno.EIO, `Inline block "${key}" is missing`);
            stored = inline;
          } else if (rec.hash) {
            objectKey = await this.#blobKey(rec.hash) ?? key;
            stored = await this.store.get(objectKey).catch(async (err) => {
              if (!(err instanceof NotFoundError)) throw err;
              this.#blobs.delete(toHex(rec.hash!)); // replaced since we looked: look again
              objectKey = await this.#blobKey(rec.hash!) ?? key;
              return await this.store.get(objectKey);
            });
          } else {
            stored = await this.store.get(key);
          }
          if (!(rec.flags & BLOCK_INLINE)) this.#countFetch(stored.byteLength);
        } catch (err) {
          throw new FsError(Errno.EIO, `Cannot read block "${objectKey}": ${err}`, {
            cause: err,
          });
        }
        try {
          if ((rec.flags & BLOCK_INLINE) !== 0) {
            const raw = await this.#codec.decode(stored, rec, len, objectKey);
            this.cache.put(key, raw, { memoryOnly: true });
            return raw;
          }
          if (this.cache.wantsSegmentSums) {
            const { raw, sums } = await this.#codec.decodeWithSums(stored, rec, len, objectKey);
            this.cache.put(key, raw, { segmentSums: sums });
            return raw;
          }
          const raw = await this.#codec.decode(stored, rec, len, objectKey);
          this.cache.put(key, raw);
          return raw;
        } catch (err) {
          this.onError(err);
          throw err;
        }
      })();
      const done = () => {
        this.#inflight.delete(key);
      };
      fetch.then(done, done);
      p = this.#bounded(fetch, key);
      this.#inflight.set(key, p);
    }
    return p;
  }

  /**
   * Copies bytes `[off, off+len)` of slice `id` (of `size` bytes) into `dst` at `dstOff`. Blocks
   * are fetched from the store whole and cached, or, with `whole` false (a random read), only
   * the segments needed when the block is segmented; a block cached on disk is read only in the
   * range needed (the disk tier checksums its segments).
   */
  async readSlice(
    id: SliceId,
    size: number,
    off: number,
    len: number,
    dst: Uint8Array,
    dstOff: number,
    whole = true,
  ): Promise<void> {
    const bs = this.blockSize;
    const tasks: Promise<void>[] = [];
    let pos = off;
    while (pos < off + len) {
      const index = Math.floor(pos / bs);
      const blockLen = Math.min(bs, size - index * bs);
      const inBlock = pos - index * bs;
      const n = Math.min(off + len - pos, blockLen - inBlock);
      const at = dstOff + (pos - off);
      const into = dst.subarray(at, at + n);
      const bytes = this.#blockRange(id, index, blockLen, inBlock, n, whole, into);
      if (bytes instanceof Uint8Array) dst.set(bytes, at);
      else tasks.push(bytes.then((b) => void (b !== into && dst.set(b, at))));
      pos += n;
    }
    await Promise.all(tasks);
  }

  /** The resolved segments of one chunk (cached until {@linkcode invalidate}). */
  async segments(ino: Ino, chunk: number): Promise<SliceRecord[]> {
    const hit = this.#lists.get(ino, chunk);
    if (hit) return hit;
    const gen = this.#lists.generation;
    const full = await this.meta.readChunkFull(ino, chunk);
    const segs = resolveSegments(full.records);
    // Block records never change; inline blocks are small: keep both for the reads to come.
    for (const [id, recs] of full.blocks) {
      this.#lists.keepRecords(id, recs);
      recs.forEach((rec, index) => {
        const bytes = full.inline.get(inlineKey(id, index));
        const size = full.records.find((r) => r.id === id)?.size;
        if (!bytes || size === undefined) return;
        const len = Math.min(this.blockSize, size - index * this.blockSize);
        const key = blockKey(id, index, len);
        if (this.cache.has(key)) return;
        try {
          this.cache.put(key, decodeBlock(bytes, rec, len, key), { memoryOnly: true });
        } catch {
          // Left for getBlock, which reports it.
        }
      });
    }
    if (gen === this.#lists.generation) this.#lists.keep(ino, chunk, segs);
    else this.#lists.own(ino, segs); // changed meanwhile: not kept
    return segs;
  }

  /** Counts the changes of cached slice lists (see {@linkcode committed}). */
  get generation(): number {
    return this.#lists.generation;
  }

  /**
   * After a commit of `slices` to `ino` that began at `generation`: keeps the slice lists the
   * commit left in the chunks it wrote (and the new slices' block records, with the bytes of
   * their inline blocks), where the other chunks' lists still hold; if any slice list changed
   * meanwhile, forgets all of the inode's instead. So a file is read back after it is written (a
   * small file closed and opened again) without a metadata transaction.
   */
  committed(ino: Ino, done: Committed, slices: readonly NewSlice[], generation: number): void {
    for (const s of slices) this.#lists.keepRecords(s.record.id, s.blocks);
    if (generation !== this.#lists.generation) {
      this.invalidate(ino);
      return;
    }
    this.#lists.changed();
    this.randomFill.invalidate(ino);
    for (const [chunk, records] of done.chunks) {
      this.#lists.keep(ino, chunk, resolveSegments(records));
    }
  }

  /** Forgets cached slice lists of `ino` (after it changed). */
  invalidate(ino: Ino): void {
    this.#lists.drop(ino);
    this.randomFill.invalidate(ino);
  }

  /**
   * Bytes `[inBlock, inBlock+n)` of block `index` (of `blockLen` bytes) of slice `id`: a view of
   * the block when it is in memory (returned at once), the range alone when a slower tier holds
   * the block (it checksums its segments), the segments needed (cached or fetched alone) when
   * the read is not `whole` and the block is segmented, else the block fetched whole and
   * verified; from a local store without a disk tier, only the segments needed, into `into`
   * (`SegmentReader.direct`). A range read that misses (evicted, corrupt) fetches the block too.
   * `into`: see `SegmentReader.range`.
   */
  #blockRange(
    id: SliceId,
    index: number,
    blockLen: number,
    inBlock: number,
    n: number,
    whole = true,
    into?: Uint8Array,
  ): Uint8Array | Promise<Uint8Array> {
    const key = blockKey(id, index, blockLen);
    const hit = this.cache.getSync(key);
    if (hit) return hit.subarray(inBlock, inBlock + n);
    const all = async () =>
      (await this.getBlock(id, index, blockLen)).subarray(inBlock, inBlock + n);
    if (this.#direct && !this.#inflight.has(key)) {
      return this.#segReader.direct(id, index, key, blockLen, inBlock, n, into)
        .then((part) => part ?? all());
    }
    if (this.cache.getRange && n < blockLen && this.cache.has(key) && !this.#inflight.has(key)) {
      return this.cache.getRange(key, inBlock, n, into).then((part) => part ?? all());
    }
    if (!whole && this.segmented && n < blockLen && !this.#inflight.has(key)) {
      return this.#segReader.range(id, index, key, blockLen, inBlock, n, into).then((part) => {
        if (part === undefined) return all();
        this.#prefetcher.behind(
          id,
          index,
          blockLen,
          key,
          () => this.randomFill.filling(this.#lists.ownerOf(id)),
        );
        return part;
      });
    }
    return all();
  }

  /**
   * Bytes `[off, off+len)` of `ino` without copying them when they lie in one block of one slice: a
   * view of the cached block (never changed) or the range read from the disk tier (into `into` if
   * given); else `undefined` (use {@linkcode readCommitted}). `whole` false: a random read.
   */
  async readView(
    ino: Ino,
    off: number,
    len: number,
    whole = true,
    into?: Uint8Array,
  ): Promise<Uint8Array | undefined> {
    const cs = this.chunkSize;
    const c = Math.floor(off / cs);
    if (len <= 0 || Math.floor((off + len - 1) / cs) !== c) return undefined;
    const base = c * cs;
    let seg: SliceRecord | undefined;
    for (const s of await this.segments(ino, c)) {
      if (base + s.pos + s.len <= off || base + s.pos >= off + len) continue;
      if (seg !== undefined) return undefined; // more than one segment
      seg = s;
    }
    if (seg === undefined || seg.id === 0) return undefined;
    if (off < base + seg.pos || off + len > base + seg.pos + seg.len) return undefined;
    const bs = this.blockSize;
    const inSlice = seg.off + (off - base - seg.pos);
    const index = Math.floor(inSlice / bs);
    const inBlock = inSlice - index * bs;
    if (inBlock + len > bs) return undefined;
    const blockLen = Math.min(bs, seg.size - index * bs);
    return await this.#blockRange(seg.id, index, blockLen, inBlock, len, whole, into);
  }

  /**
   * Reads committed data of `ino` in `[off, off+len)` into `out` (zeros for holes). `whole`
   * false: a random read (see {@linkcode readSlice}).
   */
  async readCommitted(
    ino: Ino,
    off: number,
    len: number,
    out: Uint8Array,
    whole = true,
  ): Promise<void> {
    const cs = this.chunkSize;
    const end = off + len;
    const tasks: Promise<void>[] = [];
    for (let c = Math.floor(off / cs); c * cs < end; c++) {
      const base = c * cs;
      const segs = await this.segments(ino, c);
      for (const s of segs) {
        if (s.id === 0) continue;
        const lo = Math.max(off, base + s.pos);
        const hi = Math.min(end, base + s.pos + s.len);
        if (hi <= lo) continue;
        tasks.push(
          this.readSlice(s.id, s.size, s.off + (lo - base - s.pos), hi - lo, out, lo - off, whole),
        );
      }
    }
    await Promise.all(tasks);
  }

  /**
   * Starts fetching the blocks of `[off, off+len)` of `ino` into the cache without waiting
   * (readahead, `core/_prefetch.ts`).
   */
  prefetch(ino: Ino, off: number, len: number): void {
    if (!this.#direct) this.#prefetcher.prefetch(ino, off, len); // local: the kernel reads ahead
  }

  /** Fetches the blocks of `[off, off+len)` of `ino` into the cache; returns how many it fetched. */
  warm(ino: Ino, off: number, len: number): Promise<number> {
    return warmBlocks(this, ino, off, len);
  }

  /** Deletes the blocks of freed slices, then forgets them in the metadata. */
  async deleteSlices(freed: readonly FreedSlice[]): Promise<void> {
    await deleteSlices(this, freed, (id) => this.#lists.forgetOwner(id));
  }

  /** Deletes the blocks of every slice left in the garbage list (e.g. after a crash). */
  collectGarbage(): Promise<number> {
    return collectGarbage(this.meta, (batch) => this.deleteSlices(batch));
  }
}
