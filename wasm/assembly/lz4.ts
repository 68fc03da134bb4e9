// deno-lint-ignore-file
// @ts-nocheck AssemblyScript source, compiled by asc (not by Deno).

// LZ4 block format, written from the format description:
//   sequence = token (literal length << 4 | match length - 4), [literal length bytes],
//              literals, offset (u16 LE, 1..65535), [match length bytes]
//   length fields that reach 15 continue with bytes, each added, until one is not 255.
//   The last sequence has literals only. The last 5 bytes are always literals and the last match
//   starts at least 12 bytes before the end of the block.

const LZ4_MIN_MATCH: u32 = 4;
const LAST_LITERALS: u32 = 5;
const MF_LIMIT: u32 = 12;
const MAX_OFFSET: u32 = 65535;
const SKIP_TRIGGER: u32 = 6;

const LZ4_HASH_LOG: u32 = 12;
const LZ4_HASH_SIZE: u32 = 1 << LZ4_HASH_LOG;
// Positions are stored as `base + offset in source`; entries below `base` belong to earlier calls
// and are ignored, so the table never needs clearing between calls (only when `base` wraps).
const LZ4_TABLE: usize = memory.data(LZ4_HASH_SIZE << 2, 16);
let lz4Base: u32 = 1;

/** Hash of the 5 low bytes of `v` (5 rather than 4 bytes finds longer matches on text). */
function lz4Hash(v: u64): u32 {
  return <u32> (((v << 24) * 889523592379) >> (64 - LZ4_HASH_LOG));
}

/** Worst-case compressed size of `n` input bytes. */
export function lz4Bound(n: u32): u32 {
  return n + n / 255 + 16;
}

/** Bytes equal at `a` and `b` (`b` < `a`), counting from 0, not reading at or past `limit` (from `a`). */
function matchLen(a: usize, b: usize, limit: usize): u32 {
  const start = a;
  // Most matches on text end within 8 bytes: one u64 compare first.
  if (a + 8 <= limit) {
    const diff = load<u64>(a) ^ load<u64>(b);
    if (diff != 0) return <u32> (ctz<u64>(diff) >> 3);
    a += 8;
    b += 8;
  }
  while (a + 16 <= limit) {
    const m = i8x16.bitmask(i8x16.eq(v128.load(a), v128.load(b)));
    if (m != 0xffff) return <u32> (a - start) + ctz<u32>(~m);
    a += 16;
    b += 16;
  }
  if (a + 8 <= limit) {
    const diff = load<u64>(a) ^ load<u64>(b);
    if (diff != 0) return <u32> (a - start) + (<u32> ctz<u64>(diff) >> 3);
    a += 8;
    b += 8;
  }
  while (a < limit && load<u8>(a) == load<u8>(b)) {
    a++;
    b++;
  }
  return <u32> (a - start);
}

function writeLength(op: usize, n: u32): usize {
  while (n >= 255) {
    store<u8>(op, 255);
    op++;
    n -= 255;
  }
  store<u8>(op, <u8> n);
  return op + 1;
}

/** Copies `n` bytes; the 16-byte step may write up to 15 bytes past `dst + n` (caller's margin). */
function wildCopy(dst: usize, src: usize, n: u32): void {
  const end = dst + n;
  do {
    v128.store(dst, v128.load(src));
    dst += 16;
    src += 16;
  } while (dst < end);
}

/**
 * Compresses `len` bytes at `src` into `dst` (capacity `cap`). Returns the compressed size, or 0
 * when `cap` is too small. `dst` needs 16 writable bytes past `cap` for the literal wild copy.
 */
export function lz4Compress(src: usize, len: u32, dst: usize, cap: u32): u32 {
  if (<u64> lz4Base + <u64> len + 1 >= 0xffffffff) {
    memory.fill(LZ4_TABLE, 0, LZ4_HASH_SIZE << 2);
    lz4Base = 1;
  }
  const tableBase = lz4Base;
  lz4Base += len + 1;

  const end = src + len;
  const dstEnd = dst + cap;
  let op = dst;
  let anchor = src;
  if (len >= MF_LIMIT + 1) {
    const ipLimit = end - MF_LIMIT; // last position where a match may start
    const matchLimit = end - LAST_LITERALS;
    let ip = src + 1;
    store<u32>(LZ4_TABLE + (lz4Hash(load<u64>(src)) << 2), tableBase);
    while (true) {
      // Find a match, stepping faster through data that does not match.
      let ref: usize = 0;
      let searches: u32 = 1 << SKIP_TRIGGER;
      while (ip <= ipLimit) {
        const seq8 = load<u64>(ip);
        const seq = <u32> seq8;
        const slot = LZ4_TABLE + (lz4Hash(seq8) << 2);
        const cand = load<u32>(slot);
        store<u32>(slot, tableBase + <u32> (ip - src));
        if (cand >= tableBase) {
          ref = src + (cand - tableBase);
          if (<u32> (ip - ref) <= MAX_OFFSET && load<u32>(ref) == seq) break;
        }
        ref = 0;
        ip += searches++ >> SKIP_TRIGGER;
      }
      if (ref == 0) break; // no match before ipLimit
      // Extend backwards over equal bytes not yet emitted.
      while (ip > anchor && ref > src && load<u8>(ip - 1) == load<u8>(ref - 1)) {
        ip--;
        ref--;
      }
      const mlen = LZ4_MIN_MATCH + matchLen(ip + LZ4_MIN_MATCH, ref + LZ4_MIN_MATCH, matchLimit);
      const lit = <u32> (ip - anchor);
      // token + literal length bytes + literals + offset + match length bytes
      if (<u64> (op - dst) + 1 + lit / 255 + 1 + lit + 2 + (mlen - LZ4_MIN_MATCH) / 255 + 1 > cap) {
        return 0;
      }
      const tokenPtr = op;
      op++;
      let token: u32 = 0;
      if (lit >= 15) {
        token = 15 << 4;
        op = writeLength(op, lit - 15);
      } else {
        token = lit << 4;
      }
      if (lit > 0) {
        if (op + lit + 16 <= dstEnd) wildCopy(op, anchor, lit);
        else memory.copy(op, anchor, lit);
        op += lit;
      }
      store<u16>(op, <u16> (ip - ref));
      op += 2;
      const ml = mlen - LZ4_MIN_MATCH;
      if (ml >= 15) {
        token |= 15;
        op = writeLength(op, ml - 15);
      } else {
        token |= ml;
      }
      store<u8>(tokenPtr, <u8> token);
      ip += mlen;
      anchor = ip;
      if (ip > ipLimit) break;
      // Index a position inside the match so that nearby repeats are found.
      store<u32>(LZ4_TABLE + (lz4Hash(load<u64>(ip - 2)) << 2), tableBase + <u32> (ip - 2 - src));
    }
  }
  // Last literals.
  const lit = <u32> (end - anchor);
  if (<u64> (op - dst) + 1 + lit / 255 + 1 + lit > cap) return 0;
  if (lit >= 15) {
    store<u8>(op, 15 << 4);
    op = writeLength(op + 1, lit - 15);
  } else {
    store<u8>(op, <u8> (lit << 4));
    op++;
  }
  memory.copy(op, anchor, lit);
  op += lit;
  return <u32> (op - dst);
}

// Match copies with offsets 1..15: one swizzle of the 16 bytes at `ref` by row `offset` (lane i
// takes byte i % offset) gives 16 bytes of the repeating pattern, stored every PATTERN_STEP[offset]
// bytes (the largest multiple of the offset that is <= 16). Writes only, at memset speed.
// deno-fmt-ignore
const PATTERN_IDX: usize = memory.data<u8>([
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
  0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0,
  0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3,
  0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0,
  0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3,
  0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0, 1,
  0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 6,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2, 3, 4,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 1, 2,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0, 1,
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 0,
]);
// deno-fmt-ignore
const PATTERN_STEP: usize = memory.data<u8>([0, 16, 16, 15, 16, 15, 12, 14, 16, 9, 10, 11, 12, 13, 14, 15]);

/** Literals and non-overlapping matches at least this long are copied with `memory.copy`. */
const BULK_COPY: u32 = 256;

/**
 * Copies the match of `ml` bytes at distance `offset` (1 <= offset <= bytes already written) to
 * `op`, as LZ4 defines it (byte by byte, so short offsets repeat). May write up to 32 bytes past
 * `op + ml` (the caller's margin).
 */
function copyMatch(op: usize, offset: u32, ml: u32): void {
  const mend = op + ml;
  let ref = op - offset;
  if (offset < 16) {
    // Lanes at and past `offset` read bytes not yet written; the swizzle never selects them.
    const v = i8x16.swizzle(v128.load(ref), v128.load(PATTERN_IDX + (offset << 4)));
    const step = <usize> load<u8>(PATTERN_STEP + offset);
    do {
      v128.store(op, v);
      v128.store(op + step, v);
      op += step << 1;
    } while (op < mend);
  } else if (ml <= 32) {
    // offset >= 16: each load reads bytes written before it.
    v128.store(op, v128.load(ref));
    v128.store(op, v128.load(ref, 16), 16);
  } else if (offset >= ml && ml >= BULK_COPY) {
    memory.copy(op, ref, ml);
  } else {
    if (offset >= 64) {
      while (op + 64 <= mend) {
        const a = v128.load(ref);
        const b = v128.load(ref, 16);
        const c = v128.load(ref, 32);
        const d = v128.load(ref, 48);
        v128.store(op, a);
        v128.store(op, b, 16);
        v128.store(op, c, 32);
        v128.store(op, d, 48);
        op += 64;
        ref += 64;
      }
    }
    while (op < mend) {
      v128.store(op, v128.load(ref));
      op += 16;
      ref += 16;
    }
  }
}

/**
 * Decompresses the block of `len` bytes at `src` into `dst` (capacity `cap`). Returns the number
 * of bytes written, or a negative number if the block is malformed or does not fit. Never reads
 * outside `[src, src + len)` nor writes outside `[dst, dst + cap)`.
 */
export function lz4Decompress(src: usize, len: u32, dst: usize, cap: u32): i32 {
  let ip = src;
  const iend = src + len;
  let op = dst;
  const oend = dst + cap;
  if (len == 0) return -1;
  // The fast path needs 32 readable bytes after the token and 64 writable ones (0: never).
  const ilimit: usize = len >= 33 ? iend - 32 : 0;
  const olimit: usize = cap >= 64 ? oend - 64 : 0;
  while (true) {
    if (ip >= iend) return -2;
    const token = <u32> load<u8>(ip);
    ip++;
    let lit = token >> 4;
    if (token < 0xf0 && ip <= ilimit && op <= olimit) {
      // Fast path: short literals (<= 14) with room in both buffers for a 16-byte copy; then a
      // short match (<= 18 bytes) with a valid offset is copied with fixed-size moves. Longer
      // matches and invalid offsets go on to the general match code below.
      v128.store(op, v128.load(ip));
      ip += lit;
      op += lit;
      const offset = <u32> load<u16>(ip);
      if ((token & 15) != 15 && offset - 1 < <u32> (op - dst)) {
        ip += 2;
        const ref = op - offset;
        if (offset >= 16) {
          v128.store(op, v128.load(ref));
          store<u16>(op, load<u16>(ref, 16), 16);
        } else if (offset >= 8) {
          store<u64>(op, load<u64>(ref));
          store<u64>(op, load<u64>(ref, 8), 8);
          store<u16>(op, load<u16>(ref, 16), 16);
        } else {
          const v = i8x16.swizzle(v128.load(ref), v128.load(PATTERN_IDX + (offset << 4)));
          v128.store(op, v);
          v128.store(op + <usize> load<u8>(PATTERN_STEP + offset), v);
        }
        op += (token & 15) + LZ4_MIN_MATCH;
        continue;
      }
    } else {
      // Literals.
      if (lit == 15) {
        let b: u32 = 255;
        while (b == 255) {
          if (ip >= iend) return -3;
          b = load<u8>(ip);
          ip++;
          lit += b;
          if (lit > cap) return -4;
        }
      }
      if (lit > <u32> (iend - ip) || lit > <u32> (oend - op)) return -5;
      if (lit < BULK_COPY && ip + lit + 16 <= iend && op + lit + 16 <= oend) {
        wildCopy(op, ip, lit);
      } else {
        memory.copy(op, ip, lit);
      }
      ip += lit;
      op += lit;
      if (ip == iend) break; // the last sequence has no match
    }
    // Match.
    if (<u32> (iend - ip) < 2) return -6;
    const offset = <u32> load<u16>(ip);
    ip += 2;
    if (offset == 0 || offset > <u32> (op - dst)) return -7;
    let ml = token & 15;
    if (ml == 15) {
      let b: u32 = 255;
      while (b == 255) {
        if (ip >= iend) return -8;
        b = load<u8>(ip);
        ip++;
        ml += b;
        if (ml > cap) return -9;
      }
    }
    ml += LZ4_MIN_MATCH;
    if (ml > <u32> (oend - op)) return -10;
    const mend = op + ml;
    if (mend + 32 <= oend) {
      if (offset >= 16 && ml <= 32) {
        const ref = op - offset;
        v128.store(op, v128.load(ref));
        v128.store(op, v128.load(ref, 16), 16);
      } else {
        copyMatch(op, offset, ml);
      }
    } else {
      // Near the end of the output: the fast copy up to 32 bytes before it, then byte by byte.
      if (<u32> (oend - op) > 64) {
        const n = <u32> (oend - op) - 32;
        copyMatch(op, offset, n);
        op += n;
      }
      let ref = op - offset;
      while (op < mend) {
        store<u8>(op, load<u8>(ref));
        op++;
        ref++;
      }
    }
    op = mend;
  }
  return <i32> (op - dst);
}
