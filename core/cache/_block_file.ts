/**
 * The on-disk format of a cached block file and its per-segment checksums (see "Files" in the
 * design notes of `mod.ts`): a 20-byte header, the key, a table of XXH3-64s (one per 64 KiB
 * segment of the data), then the data. Pure encoding, decoding and verification, plus reading a
 * file's header and writing a file (temp file, then rename).
 *
 * @example
 * ```ts
 * import { decodeBlockFile, encodePrefix } from "./_block_file.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * const key = new TextEncoder().encode("chunks/0/0/1_0_3");
 * const data = new Uint8Array([1, 2, 3]);
 * const file = new Uint8Array([...encodePrefix(key, data), ...data]);
 * const got = decodeBlockFile(file, "chunks/0/0/1_0_3");
 * deepEqual(typeof got === "string" ? got : got.data, data);
 * ```
 *
 * @module
 */

import { xxh3_64 } from "../../wasm/mod.ts";
import { giveScratch, SCRATCH_BYTES, takeScratch } from "../_scratch.ts";
import { CACHE_SEGMENT, segmentSums } from "../block_codec.ts";
import { PRIVATE_FILE_MODE } from "../_private_fs.ts";

/** Bytes of the fixed header of a block file. */
export const HEADER = 20;
const MAGIC = 0x32434653; // "SFC2" little endian
/** Bytes of a checksummed segment of the data (a power of two). */
export const SEGMENT: number = CACHE_SEGMENT;
const SEGMENT_SHIFT = 31 - Math.clz32(SEGMENT);
/** The longest key a block file holds, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 4096;
const MAX_NAME = 200;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Where the data of a block file starts, its length and the checksums of its segments. */
export interface BlockTable {
  /** Where the data starts in the file. */
  readonly dataOffset: number;
  /** Bytes of data. */
  readonly dataLength: number;
  /** XXH3-64 of each segment, u64 little endian. */
  readonly sums: DataView;
}

/** Reads up to `buf.length` bytes at `pos`, fewer only at end of file; rejects on an error. */
export type ReadAt = (buf: Uint8Array, pos: number) => Promise<number>;

/**
 * The file name of a key: bytes other than `A-Z a-z 0-9 . _ -` escaped as `%XX` (a leading `.`
 * too, so that only temp files start with a dot), `/` written as `+`; long names are cut and end
 * with the key's hash.
 */
export function fileName(key: string, hash: bigint): string {
  let out = "";
  for (const b of encoder.encode(key)) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9_-]/.test(c) || (c === "." && out !== "")) out += c;
    else if (c === "/") out += "+";
    else out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  if (out.length > MAX_NAME) out = `${out.slice(0, MAX_NAME - 17)}~${hash.toString(16)}`;
  return out;
}

/** The path of a key's file under a cache directory: `<dir>/<first 2 hex digits of hash>/<name>`. */
export function filePath(dir: string, e: { key: string; hash: bigint }): string {
  const sub = (e.hash >> 56n).toString(16).padStart(2, "0");
  return `${dir}/${sub}/${fileName(e.key, e.hash)}`;
}

function segmentCount(dataLength: number): number {
  return Math.ceil(dataLength / SEGMENT);
}

/** Where the data starts in a block file. */
export function dataOffsetFor(keyLength: number, dataLength: number): number {
  return HEADER + keyLength + 8 * segmentCount(dataLength);
}

/** Where the data starts in a sound block file of `fileSize` bytes (inverts the file layout). */
export function dataOffsetOf(keyLength: number, fileSize: number): number {
  const rest = Math.max(0, fileSize - HEADER - keyLength); // 8 bytes per segment + the data
  return HEADER + keyLength + 8 * Math.ceil(rest / (SEGMENT + 8));
}

/**
 * The header, key and checksum table of a block file holding `data`. `sums` are the segments'
 * checksums if the caller already has them ({@linkcode segmentSums}, e.g. from a codec worker).
 */
export function encodePrefix(
  keyBytes: Uint8Array,
  data: Uint8Array,
  sums?: Uint8Array,
): Uint8Array {
  const n = segmentCount(data.byteLength);
  const head = new Uint8Array(dataOffsetFor(keyBytes.length, data.byteLength));
  const v = new DataView(head.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint16(4, keyBytes.length, true);
  v.setUint8(6, SEGMENT_SHIFT);
  v.setUint32(8, data.byteLength, true);
  head.set(keyBytes, HEADER);
  const table = HEADER + keyBytes.length;
  head.set(sums?.byteLength === 8 * n ? sums : segmentSums(data), table);
  v.setBigUint64(12, xxh3_64(head), true); // over the prefix with this field still zero
  return head;
}

/** The lengths a block file header declares, or why it is not valid. */
function parseHeader(
  buf: Uint8Array,
): { keyLength: number; dataLength: number; dataOffset: number } | string {
  if (buf.length < HEADER) return `file of ${buf.length} bytes is shorter than its header`;
  const v = new DataView(buf.buffer, buf.byteOffset, HEADER);
  if (v.getUint32(0, true) !== MAGIC) return "bad magic";
  if (v.getUint8(6) !== SEGMENT_SHIFT || v.getUint8(7) !== 0) return "unknown segment size";
  const keyLength = v.getUint16(4, true);
  if (keyLength > MAX_KEY_BYTES) return `key of ${keyLength} bytes`;
  const dataLength = v.getUint32(8, true);
  return { keyLength, dataLength, dataOffset: dataOffsetFor(keyLength, dataLength) };
}

/**
 * The key and checksum table of a block file from its bytes up to its data (at least), or why
 * they are not valid. The table is copied, not a view of `buf`.
 */
export function decodePrefix(buf: Uint8Array): { key: string; table: BlockTable } | string {
  const head = parseHeader(buf);
  if (typeof head === "string") return head;
  const { keyLength, dataLength, dataOffset } = head;
  if (buf.length < dataOffset) return `file of ${buf.length} bytes is shorter than its header`;
  const prefix = buf.slice(0, dataOffset);
  const v = new DataView(prefix.buffer);
  const stored = v.getBigUint64(12, true);
  v.setBigUint64(12, 0n, true);
  if (xxh3_64(prefix) !== stored) return "header checksum mismatch";
  let key: string;
  try {
    key = decoder.decode(prefix.subarray(HEADER, HEADER + keyLength));
  } catch {
    return "key is not UTF-8";
  }
  const sums = new DataView(prefix.buffer, HEADER + keyLength, dataOffset - HEADER - keyLength);
  return { key, table: { dataOffset, dataLength, sums } };
}

/** Why `data` (segments `first`, `first + 1`... of a block) does not match `table`, if not. */
export function verifySegments(
  table: BlockTable,
  data: Uint8Array,
  first: number,
): string | undefined {
  for (let at = 0, i = first; at < data.length; at += SEGMENT, i++) {
    if (xxh3_64(data.subarray(at, at + SEGMENT)) !== table.sums.getBigUint64(8 * i, true)) {
      return `checksum mismatch in segment ${i}`;
    }
  }
  return undefined;
}

/** The data and table of a whole cached block file, or why it is not valid. */
export function decodeBlockFile(
  buf: Uint8Array,
  key: string,
): { data: Uint8Array; table: BlockTable } | string {
  const got = decodePrefix(buf);
  if (typeof got === "string") return got;
  const { dataOffset, dataLength } = got.table;
  if (buf.length !== dataOffset + dataLength) {
    return `size ${buf.length} does not match header (${dataOffset + dataLength})`;
  }
  if (got.key !== key) return `file holds key "${got.key}"`;
  const data = buf.subarray(dataOffset);
  const why = verifySegments(got.table, data, 0);
  return why ?? { data, table: got.table };
}

/**
 * Bytes `[offset, offset + length)` of the data of a block file through `readAt`, verified: only
 * the segments covering the range are read, with the header and table in parallel when `table`
 * is not known yet (`size` is then the file size). Returns the bytes and the table if it was read,
 * or why the file is not valid; a RangeError beyond the end of the data. A range within one
 * segment is read into a reused scratch buffer (`core/_scratch.ts`) and copied out (into `into`,
 * `length` bytes, when given: the bytes returned are then `into`); a larger range of whole
 * segments is read straight into `into`, if given.
 */
export async function readSegments(
  readAt: ReadAt,
  file: { key: string; size: number; table: BlockTable | undefined },
  offset: number,
  length: number,
  into?: Uint8Array,
): Promise<{ data: Uint8Array; table?: BlockTable } | string> {
  const table = file.table;
  const dataOffset = table?.dataOffset ?? dataOffsetOf(encoder.encode(file.key).length, file.size);
  const dataLength = table?.dataLength ?? file.size - dataOffset;
  if (offset + length > dataLength) {
    throw new RangeError(
      `Range ${offset}+${length} is beyond block "${file.key}" of ${dataLength} bytes`,
    );
  }
  if (length === 0) return { data: new Uint8Array(0) };
  const first = Math.floor(offset / SEGMENT);
  const start = first * SEGMENT;
  const end = Math.min(dataLength, Math.ceil((offset + length) / SEGMENT) * SEGMENT);
  const scratch = end - start <= SCRATCH_BYTES ? takeScratch() : undefined;
  const direct = !scratch && into !== undefined && start === offset && end - start === length;
  try {
    const buf = scratch?.subarray(0, end - start) ?? (direct ? into : new Uint8Array(end - start));
    const got = await readVerified(readAt, buf, dataOffset, start, table, file.key, dataLength);
    if (typeof got === "string") return got;
    const at = offset - start;
    const part = buf.subarray(at, at + length);
    if (scratch && into) into.set(part);
    // `into` itself when it holds the bytes, so that a caller can tell and skip a copy.
    const data = into && (scratch || direct) ? into : scratch ? part.slice() : part;
    return got.table !== undefined ? { data, table: got.table } : { data };
  } finally {
    // Every read into it has ended (settleReads waits for each).
    if (scratch) giveScratch(scratch);
  }
}

/** Reads `buf` (data from `start`) and, without `table`, the header and table, and verifies. */
async function readVerified(
  readAt: ReadAt,
  buf: Uint8Array,
  dataOffset: number,
  start: number,
  table: BlockTable | undefined,
  key: string,
  dataLength: number,
): Promise<{ table?: BlockTable } | string> {
  const first = start / SEGMENT;
  const prefix = table === undefined ? new Uint8Array(dataOffset) : undefined;
  const reads = [readAt(buf, dataOffset + start)];
  if (prefix !== undefined) reads.push(readAt(prefix, 0));
  const got = await settleReads(reads);
  if (typeof got === "string") return got;
  if (got[0]! < buf.length || (prefix !== undefined && got[1]! < prefix.length)) {
    return "file is shorter than its header says";
  }
  if (prefix !== undefined) {
    const head = decodePrefix(prefix);
    if (typeof head === "string") return head;
    if (head.key !== key) return `file holds key "${head.key}"`;
    if (head.table.dataLength !== dataLength) return "size does not match header";
    table = head.table;
  }
  const why = verifySegments(table!, buf, first);
  if (why !== undefined) return why;
  return prefix !== undefined ? { table: table! } : {};
}

/** How many bytes each read got, or why one failed; waits for every read to end. */
async function settleReads(reads: Promise<number>[]): Promise<number[] | string> {
  const got: number[] = [];
  let why: string | undefined;
  for (const r of await Promise.allSettled(reads)) {
    if (r.status === "fulfilled") got.push(r.value);
    else why ??= `cannot read it: ${r.reason instanceof Error ? r.reason.message : r.reason}`;
  }
  return why ?? got;
}

/** The key, size and mtime of a cached block file, if its header, key and table are sound. */
export async function readHeader(
  path: string,
): Promise<{ key: string; size: number; mtime: number } | undefined> {
  const f = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(HEADER);
    if (!(await readFull(f, head))) return undefined;
    const h = parseHeader(head);
    if (typeof h === "string") return undefined;
    const prefix = new Uint8Array(h.dataOffset);
    prefix.set(head);
    if (!(await readFull(f, prefix.subarray(HEADER)))) return undefined;
    const got = decodePrefix(prefix);
    if (typeof got === "string") return undefined;
    const size = h.dataOffset + h.dataLength;
    const st = await f.stat();
    if (st.size !== size) return undefined;
    return { key: got.key, size, mtime: st.mtime?.getTime() ?? 0 };
  } finally {
    f.close();
  }
}

async function readFull(f: Deno.FsFile, buf: Uint8Array): Promise<boolean> {
  let off = 0;
  while (off < buf.length) {
    const n = await f.read(buf.subarray(off));
    if (n === null) return false;
    off += n;
  }
  return true;
}

/**
 * Writes the block file of `data` at `path` (whose folder exists): to a `.`-prefixed temp file in
 * the same folder, then renamed over `path`, with no fsync. `sums` as for
 * {@linkcode encodePrefix}.
 */
export async function writeBlockFile(
  path: string,
  keyBytes: Uint8Array,
  data: Uint8Array,
  sums?: Uint8Array,
): Promise<void> {
  const head = encodePrefix(keyBytes, data, sums);
  const tmp = `${path.slice(0, path.lastIndexOf("/"))}/.${crypto.randomUUID()}.tmp`;
  try {
    const f = await Deno.open(tmp, { write: true, createNew: true, mode: PRIVATE_FILE_MODE });
    try {
      await writeAll(f, head);
      await writeAll(f, data);
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

async function writeAll(f: Deno.FsFile, buf: Uint8Array): Promise<void> {
  let off = 0;
  while (off < buf.length) off += await f.write(buf.subarray(off));
}
