// deno-lint-ignore-file
// @ts-nocheck AssemblyScript source, compiled by asc (not by Deno).

// The segmented block format of core/_block_segments.ts in one pass over Wasm memory: each 64 KiB
// segment is hashed (XXH3-64) and LZ4-compressed where it lies, so the host copies a block in
// once and the result out once (instead of once per hash and once per compression).
//   table entry (10 bytes per segment): u16 stored length (0: stored raw), u64 XXH3-64 of the raw
//   segment, little-endian.

const SEG_SIZE: u32 = 65536;
const SEG_ENTRY: usize = 10;
const SEG_HASH_BLOCKS: u32 = SEG_SIZE / X3_BLOCK_LEN; // 64

/**
 * Encodes the `len` bytes at `src` segment by segment: writes the table at `table` (10 bytes per
 * segment) followed by the XXH3-64 of the whole block (u64 LE), and, with `compress`, the stored
 * segments back to back at `dst` (room for `len + 16` bytes): LZ4 where it makes a segment
 * smaller, else the raw bytes. Returns the stored length (`len` when no segment is compressed, and
 * then `dst` need not be used: without `compress` it is not written).
 */
export function segEncode(src: usize, len: u32, dst: usize, table: usize, compress: u32): u32 {
  const n = (len + SEG_SIZE - 1) / SEG_SIZE;
  // The whole-block hash streams over the same segments: its accumulators are kept in locals
  // while each segment's own hash uses the globals.
  const blocks = len > SEG_SIZE ? (len - 1) / X3_BLOCK_LEN : 0;
  xxh3LongReset();
  let w0 = a0;
  let w1 = a1;
  let w2 = a2;
  let w3 = a3;
  let o: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const p = src + <usize> (i * SEG_SIZE);
    const slen = min(SEG_SIZE, len - i * SEG_SIZE);
    const e = table + <usize> i * SEG_ENTRY;
    store<u64>(e, xxh3(p, slen), 2);
    const b0 = i * SEG_HASH_BLOCKS;
    if (blocks > b0) {
      a0 = w0;
      a1 = w1;
      a2 = w2;
      a3 = w3;
      xxh3LongBlocks(p, min(SEG_HASH_BLOCKS, blocks - b0));
      w0 = a0;
      w1 = a1;
      w2 = a2;
      w3 = a3;
    }
    let stored: u32 = 0;
    if (compress) {
      // Capacity one byte short of the segment: the encoder gives up when it cannot shrink it.
      stored = lz4Compress(p, slen, dst + o, slen - 1);
      if (stored == 0) memory.copy(dst + o, p, slen);
      o += stored == 0 ? slen : stored;
    }
    store<u16>(e, <u16> stored);
  }
  let whole: u64;
  if (blocks > 0) {
    a0 = w0;
    a1 = w1;
    a2 = w2;
    a3 = w3;
    whole = xxh3LongFinish(src + <usize> (blocks * X3_BLOCK_LEN), len - blocks * X3_BLOCK_LEN, len);
  } else {
    whole = n == 0 ? xxh3(src, 0) : load<u64>(table, 2);
  }
  store<u64>(table + <usize> n * SEG_ENTRY, whole);
  return compress ? o : len;
}

let segErrSegment: u32 = 0;
let segErrCode: i32 = 0;

/** The segment of the last failed {@link segDecode}. */
export function segErrorSegment(): u32 {
  return segErrSegment;
}

/** The LZ4 decoder's reason code of the last failed {@link segDecode} (0: another cause). */
export function segErrorCode(): i32 {
  return segErrCode;
}

function segFail(i: u32, kind: i32, code: i32): i32 {
  segErrSegment = i;
  segErrCode = code;
  return -kind;
}

/**
 * Decodes and verifies segments `first..last` of a block of `rawLen` bytes whose table is at
 * `table`, from their stored bytes (`len` bytes at `src`, back to back), writing the raw bytes
 * back to back at `dst` (`dst == src` is allowed when every one of them is stored raw: they are
 * then only verified). Returns the raw bytes written, or a negative reason: -1 the stored bytes
 * end inside a segment, -2 a segment does not decompress to its size (code in
 * {@link segErrorCode}), -3 a segment fails its checksum, -4 bytes are left after the last
 * segment; the segment is in {@link segErrorSegment}.
 */
export function segDecode(
  src: usize,
  len: u32,
  table: usize,
  rawLen: u32,
  first: u32,
  last: u32,
  dst: usize,
): i32 {
  let ip: u32 = 0;
  let op = dst;
  for (let i = first; i <= last; i++) {
    const e = table + <usize> i * SEG_ENTRY;
    const code = <u32> load<u16>(e);
    const slen = min(SEG_SIZE, rawLen - i * SEG_SIZE);
    const stl = code == 0 ? slen : code;
    if (<u64> ip + <u64> stl > <u64> len) return segFail(i, 1, 0);
    const p = src + <usize> ip;
    ip += stl;
    if (code != 0) {
      const r = lz4Decompress(p, stl, op, slen);
      if (r != <i32> slen) return segFail(i, 2, r < 0 ? r : 0);
    } else if (op != p) {
      memory.copy(op, p, slen);
    }
    if (xxh3(op, slen) != load<u64>(e, 2)) return segFail(i, 3, 0);
    op += slen;
  }
  if (ip != len) return segFail(last, 4, 0);
  return <i32> (op - dst);
}
