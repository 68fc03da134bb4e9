/**
 * How a block is stored: optionally LZ4-compressed, always with an XXH3-64 checksum of its raw
 * bytes, and (with dedup) a BLAKE3 content hash. The work runs in the Wasm block engine, on a pool
 * of workers for large blocks ({@linkcode CodecPool}) so the FUSE thread stays free.
 *
 * @module
 */

import {
  blake3,
  compressBlock,
  lz4DecompressInto,
  SAMPLE_SIZE,
  sampleShrinks,
  xxh3_64,
} from "../wasm/mod.ts";
import { Errno, FsError } from "./errno.ts";
import {
  decodeAllSegments,
  encodeSegments,
  SEGMENT,
  SEGMENT_ENTRY,
  tableSums,
} from "./_block_segments.ts";

/** Block record flag: the stored bytes are an LZ4 block. */
export const BLOCK_LZ4 = 1;
/** Block record flag: the block is content-addressed (its BLAKE3 hash names a shared blob). */
export const BLOCK_DEDUP = 2;
/** Block record flag: the stored bytes live in the metadata engine, not the block store. */
export const BLOCK_INLINE = 4;
/**
 * Block record flag: the bytes are a range of an object outside the volume (`slayerfs import`,
 * `core/import/`): fetched by a ranged GET that the object's ETag guards, no checksum of ours.
 */
export const BLOCK_EXTERNAL = 8;
/**
 * Block record flag: the block is stored in 64 KiB segments, each compressed (or not) on its
 * own, with the record's `segments` table giving their stored lengths and checksums
 * (`core/_block_segments.ts`). `BLOCK_LZ4` is set too when some segment is compressed.
 */
export const BLOCK_SEGMENTED = 16;

/** What the metadata records about one stored block. */
export interface BlockRecord {
  /** The `BLOCK_*` flags, or'd. */
  flags: number;
  /** Bytes of the stored object. */
  storedLen: number;
  /** XXH3-64 of the raw bytes. */
  checksum: bigint;
  /** BLAKE3 of the raw bytes (dedup blocks only). */
  hash?: Uint8Array;
  /** The stored bytes of an inline block, until they are committed to the metadata. */
  inline?: Uint8Array;
  /** `BLOCK_SEGMENTED` blocks: the segment table (`core/_block_segments.ts`). */
  segments?: Uint8Array;
}

/** An encoded block ready to store. */
export interface EncodedBlock {
  data: Uint8Array;
  record: BlockRecord;
  /** {@linkcode segmentSums} of the raw block, when asked for. */
  sums?: Uint8Array;
  /**
   * The raw input, given back by a worker it was transferred to ({@linkcode CodecPool.encode});
   * `data` may be a view of it (a block that does not compress).
   */
  input?: Uint8Array;
}

/** The segments a disk cache tier checksums one by one, so that it can read ranges (64 KiB). */
export const CACHE_SEGMENT = SEGMENT;

/** XXH3-64 of each {@linkcode CACHE_SEGMENT} of `data` (the last may be short), u64 LE each. */
export function segmentSums(data: Uint8Array): Uint8Array {
  const n = Math.ceil(data.byteLength / CACHE_SEGMENT);
  const out = new Uint8Array(8 * n);
  const v = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    v.setBigUint64(8 * i, xxh3_64(data.subarray(i * CACHE_SEGMENT, (i + 1) * CACHE_SEGMENT)), true);
  }
  return out;
}

/** {@linkcode segmentSums} of a raw block: its record's table when it has one. */
export function blockSums(raw: Uint8Array, record: BlockRecord): Uint8Array {
  return record.segments ? tableSums(record.segments) : segmentSums(raw);
}

/**
 * Encodes a block: compress (if asked and it helps), checksum, hash (if dedup). With `segmented`
 * (never with `dedup`), in the segmented format (`BLOCK_SEGMENTED`).
 */
export function encodeBlock(
  raw: Uint8Array,
  compress: boolean,
  dedup: boolean,
  segmented = false,
): EncodedBlock {
  if (segmented && !dedup) {
    // One pass in Wasm memory: the sample, the block's and each segment's hash, compression.
    const seg = encodeSegments(raw, compress, true);
    const flags = BLOCK_SEGMENTED | (seg.compressed ? BLOCK_LZ4 : 0);
    return {
      data: seg.data,
      record: {
        flags,
        storedLen: seg.data.byteLength,
        checksum: seg.checksum,
        segments: seg.table,
      },
    };
  }
  const checksum = xxh3_64(raw);
  let data = raw;
  let flags = 0;
  if (compress && looksCompressible(raw)) {
    const c = compressBlock(raw);
    if (c.compressed) {
      data = c.data;
      flags |= BLOCK_LZ4;
    }
  }
  const record: BlockRecord = { flags, storedLen: data.byteLength, checksum };
  if (dedup) {
    record.flags |= BLOCK_DEDUP;
    record.hash = blake3(raw);
  }
  return { data, record };
}

/**
 * Whether a block is worth compressing: large blocks are judged by a 64 KiB sample from their
 * middle, so incompressible data (media, model weights, encrypted files) costs one sample, not a
 * whole compression pass. (The segmented path applies the same rule in `encodeSegmented`.)
 */
function looksCompressible(raw: Uint8Array): boolean {
  if (raw.byteLength < 4 * SAMPLE_SIZE) return true;
  const at = Math.floor((raw.byteLength - SAMPLE_SIZE) / 2);
  const c = compressBlock(raw.subarray(at, at + SAMPLE_SIZE));
  return c.compressed && sampleShrinks(c.data.byteLength);
}

/**
 * Decodes a stored block to its `rawLen` raw bytes, verifying the checksum. Throws `EIO` (with
 * the block's key) on any mismatch: never wrong bytes.
 */
export function decodeBlock(
  stored: Uint8Array,
  record: BlockRecord,
  rawLen: number,
  key: string,
): Uint8Array {
  if (stored.byteLength !== record.storedLen) {
    throw new FsError(
      Errno.EIO,
      `Block "${key}" has ${stored.byteLength} bytes, expected ${record.storedLen}`,
    );
  }
  if (record.flags & BLOCK_EXTERNAL) return stored; // its ETag was checked by the fetch
  if (record.flags & BLOCK_SEGMENTED) {
    if (!record.segments) throw new FsError(Errno.EIO, `Block "${key}" has no segment table`);
    return decodeAllSegments(stored, record.segments, rawLen, key);
  }
  let raw = stored;
  if (record.flags & BLOCK_LZ4) {
    raw = new Uint8Array(rawLen);
    try {
      lz4DecompressInto(stored, raw);
    } catch (err) {
      throw new FsError(Errno.EIO, `Block "${key}" does not decompress: ${err}`, { cause: err });
    }
  } else if (stored.byteLength !== rawLen) {
    throw new FsError(Errno.EIO, `Block "${key}" has ${stored.byteLength} bytes, not ${rawLen}`);
  }
  if (xxh3_64(raw) !== record.checksum) {
    throw new FsError(Errno.EIO, `Block "${key}" fails its checksum`);
  }
  return raw;
}

const RECORD_FIXED = 13;

/** Encodes block records for the metadata (after the slice info header). */
export function encodeBlockRecords(records: readonly BlockRecord[]): Uint8Array {
  let size = 0;
  for (const r of records) {
    size += RECORD_FIXED + (r.hash ? 32 : 0);
    if (r.flags & BLOCK_SEGMENTED) size += 2 + r.segments!.byteLength;
  }
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  let o = 0;
  for (const r of records) {
    v.setUint8(o, r.flags);
    v.setUint32(o + 1, r.storedLen);
    v.setBigUint64(o + 5, r.checksum);
    o += RECORD_FIXED;
    if (r.flags & BLOCK_DEDUP) {
      out.set(r.hash!, o);
      o += 32;
    }
    if (r.flags & BLOCK_SEGMENTED) {
      v.setUint16(o, r.segments!.byteLength / SEGMENT_ENTRY);
      out.set(r.segments!, o + 2);
      o += 2 + r.segments!.byteLength;
    }
  }
  return out;
}

/** Decodes block records written by {@linkcode encodeBlockRecords}. */
export function decodeBlockRecords(buf: Uint8Array): BlockRecord[] {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: BlockRecord[] = [];
  let o = 0;
  while (o + RECORD_FIXED <= buf.byteLength) {
    const r: BlockRecord = {
      flags: v.getUint8(o),
      storedLen: v.getUint32(o + 1),
      checksum: v.getBigUint64(o + 5),
    };
    o += RECORD_FIXED;
    if (r.flags & BLOCK_DEDUP) {
      r.hash = buf.slice(o, o + 32);
      o += 32;
    }
    if (r.flags & BLOCK_SEGMENTED) {
      const n = o + 2 <= buf.byteLength ? v.getUint16(o) : 0;
      r.segments = buf.slice(o + 2, o + 2 + n * SEGMENT_ENTRY);
      o += 2 + n * SEGMENT_ENTRY;
    }
    out.push(r);
  }
  return out;
}

/** Hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** The bytes of a lowercase or uppercase hex string of even length ({@linkcode toHex} reversed). */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A job for a codec worker (`_codec_worker.ts`). */
export type CodecJob =
  | {
    op: "encode";
    raw: Uint8Array;
    compress: boolean;
    dedup: boolean;
    sums?: boolean;
    segmented?: boolean;
  }
  | {
    op: "decode";
    stored: Uint8Array;
    record: BlockRecord;
    rawLen: number;
    key: string;
    sums?: boolean;
  };

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** Blocks smaller than this are encoded and decoded inline (a worker round trip costs more). */
const INLINE_BELOW = 128 * 1024;

/**
 * A pool of workers running the block codec, sized to the cores. Buffers passed in are transferred
 * (the caller must not use them afterwards).
 */
export class CodecPool {
  #workers: Worker[] = [];
  #busy: number[] = [];
  /** Messages for each worker held back until it says it is ready (null once it has). */
  #waiting: ({ msg: unknown; transfer: ArrayBuffer[] }[] | null)[] = [];
  #pending = new Map<number, Pending & { worker: number }>();
  #nextId = 1;
  #closed = false;

  /** Starts `size` workers (default: the number of cores). 0 runs everything inline. */
  constructor(size = navigator.hardwareConcurrency ?? 2) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(new URL("./_codec_worker.ts", import.meta.url), { type: "module" });
      w.onmessage = (ev: MessageEvent) => {
        if ((ev.data as { ready?: boolean }).ready) {
          // A message posted while the worker's module still loads (the engine's top-level
          // await; longer when Deno type-checks it first) can be lost: jobs wait for this hello.
          for (const m of this.#waiting[i] ?? []) w.postMessage(m.msg, m.transfer);
          this.#waiting[i] = null;
          return;
        }
        const { id, ok, value, error } = ev.data as {
          id: number;
          ok: boolean;
          value: unknown;
          error: { errno?: number; message: string };
        };
        const p = this.#pending.get(id);
        if (!p) return;
        this.#pending.delete(id);
        this.#busy[p.worker]!--;
        if (ok) p.resolve(value);
        else {
          p.reject(
            error.errno ? new FsError(error.errno, error.message) : new Error(error.message),
          );
        }
      };
      w.onerror = (ev) => {
        ev.preventDefault();
        // The worker is gone (it catches every job's errors itself): never pick it again.
        this.#busy[i] = Infinity;
        this.#waiting[i] = null;
        for (const [id, p] of this.#pending) {
          if (p.worker !== i) continue;
          this.#pending.delete(id);
          p.reject(new FsError(Errno.EIO, `Codec worker failed: ${ev.message}`));
        }
      };
      this.#workers.push(w);
      this.#busy.push(0);
      this.#waiting.push([]);
    }
  }

  #run<T>(job: CodecJob, transfer: ArrayBuffer[]): Promise<T> {
    if (this.#closed) return Promise.reject(new FsError(Errno.EIO, "Codec pool is closed"));
    let best = 0;
    for (let i = 1; i < this.#busy.length; i++) if (this.#busy[i]! < this.#busy[best]!) best = i;
    if (this.#busy[best] === Infinity) {
      return Promise.reject(new FsError(Errno.EIO, "Every codec worker has failed"));
    }
    const id = this.#nextId++;
    this.#busy[best]!++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, worker: best });
      const waiting = this.#waiting[best];
      if (waiting) waiting.push({ msg: { id, job }, transfer });
      else this.#workers[best]!.postMessage({ id, job }, transfer);
    });
  }

  /**
   * Encodes a block (see {@linkcode encodeBlock}); `raw` is transferred for large blocks, and
   * comes back as the result's `input` (`data` may be a view of it) so that the caller can
   * reuse its buffer. With `sums`, the result also carries the raw block's {@linkcode
   * segmentSums} (for a disk cache).
   */
  encode(
    raw: Uint8Array,
    compress: boolean,
    dedup: boolean,
    sums = false,
    segmented = false,
  ): Promise<EncodedBlock> {
    if (this.#workers.length === 0 || raw.byteLength < INLINE_BELOW) {
      try {
        const enc = encodeBlock(raw, compress, dedup, segmented);
        if (sums) enc.sums = blockSums(raw, enc.record);
        enc.input = raw;
        return Promise.resolve(enc);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#run({ op: "encode", raw, compress, dedup, sums, segmented }, [
      raw.buffer as ArrayBuffer,
    ]);
  }

  /** Decodes a block (see {@linkcode decodeBlock}); `stored` is transferred for large blocks. */
  decode(
    stored: Uint8Array,
    record: BlockRecord,
    rawLen: number,
    key: string,
  ): Promise<Uint8Array> {
    if (this.#workers.length === 0 || rawLen < INLINE_BELOW) {
      try {
        return Promise.resolve(decodeBlock(stored, record, rawLen, key));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.#decodeInWorker(stored, record, rawLen, key, false);
  }

  /** {@linkcode decode}, also returning the raw block's {@linkcode segmentSums}. */
  async decodeWithSums(
    stored: Uint8Array,
    record: BlockRecord,
    rawLen: number,
    key: string,
  ): Promise<{ raw: Uint8Array; sums: Uint8Array }> {
    if (this.#workers.length === 0 || rawLen < INLINE_BELOW) {
      const raw = decodeBlock(stored, record, rawLen, key);
      return { raw, sums: blockSums(raw, record) };
    }
    return await this.#decodeInWorker(stored, record, rawLen, key, true);
  }

  /** A decode job; `stored` is transferred (copied first if it is a view of a larger buffer). */
  #decodeInWorker<T>(
    stored: Uint8Array,
    record: BlockRecord,
    rawLen: number,
    key: string,
    sums: boolean,
  ): Promise<T> {
    const own = stored.byteOffset === 0 && stored.byteLength === stored.buffer.byteLength
      ? stored
      : stored.slice();
    return this.#run({ op: "decode", stored: own, record, rawLen, key, sums }, [
      own.buffer as ArrayBuffer,
    ]);
  }

  /** Stops the workers; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
    for (const p of this.#pending.values()) p.reject(new FsError(Errno.EIO, "Codec pool closed"));
    this.#pending.clear();
  }
}
