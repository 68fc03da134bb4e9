// deno-lint-ignore-file
// @ts-nocheck AssemblyScript source, compiled by asc (not by Deno).

// XXH3-64 with seed 0 and the default 192-byte secret, written from the XXH3 specification.
// Inputs longer than 240 bytes use the stripe accumulator loop, vectorised with Wasm SIMD: the
// eight u64 accumulators live in four i64x2 registers.

const P32_1: u64 = 0x9e3779b1;
const P32_2: u64 = 0x85ebca77;
const P32_3: u64 = 0xc2b2ae3d;
const P64_1: u64 = 0x9e3779b185ebca87;
const P64_2: u64 = 0xc2b2ae3d27d4eb4f;
const P64_3: u64 = 0x165667b19e3779f9;
const P64_4: u64 = 0x85ebca77c2b2ae63;
const P64_5: u64 = 0x27d4eb2f165667c5;
const PMX_1: u64 = 0x165667919e3779f9;
const PMX_2: u64 = 0x9fb21c651e98df25;

const X3_SECRET_SIZE: u32 = 192;
const X3_STRIPE_LEN: u32 = 64;
const X3_STRIPES_PER_BLOCK: u32 = (X3_SECRET_SIZE - X3_STRIPE_LEN) / 8; // 16
const X3_BLOCK_LEN: u32 = X3_STRIPE_LEN * X3_STRIPES_PER_BLOCK; // 1024

const SECRET: usize = memory.data<u8>([
  0xb8,
  0xfe,
  0x6c,
  0x39,
  0x23,
  0xa4,
  0x4b,
  0xbe,
  0x7c,
  0x01,
  0x81,
  0x2c,
  0xf7,
  0x21,
  0xad,
  0x1c,
  0xde,
  0xd4,
  0x6d,
  0xe9,
  0x83,
  0x90,
  0x97,
  0xdb,
  0x72,
  0x40,
  0xa4,
  0xa4,
  0xb7,
  0xb3,
  0x67,
  0x1f,
  0xcb,
  0x79,
  0xe6,
  0x4e,
  0xcc,
  0xc0,
  0xe5,
  0x78,
  0x82,
  0x5a,
  0xd0,
  0x7d,
  0xcc,
  0xff,
  0x72,
  0x21,
  0xb8,
  0x08,
  0x46,
  0x74,
  0xf7,
  0x43,
  0x24,
  0x8e,
  0xe0,
  0x35,
  0x90,
  0xe6,
  0x81,
  0x3a,
  0x26,
  0x4c,
  0x3c,
  0x28,
  0x52,
  0xbb,
  0x91,
  0xc3,
  0x00,
  0xcb,
  0x88,
  0xd0,
  0x65,
  0x8b,
  0x1b,
  0x53,
  0x2e,
  0xa3,
  0x71,
  0x64,
  0x48,
  0x97,
  0xa2,
  0x0d,
  0xf9,
  0x4e,
  0x38,
  0x19,
  0xef,
  0x46,
  0xa9,
  0xde,
  0xac,
  0xd8,
  0xa8,
  0xfa,
  0x76,
  0x3f,
  0xe3,
  0x9c,
  0x34,
  0x3f,
  0xf9,
  0xdc,
  0xbb,
  0xc7,
  0xc7,
  0x0b,
  0x4f,
  0x1d,
  0x8a,
  0x51,
  0xe0,
  0x4b,
  0xcd,
  0xb4,
  0x59,
  0x31,
  0xc8,
  0x9f,
  0x7e,
  0xc9,
  0xd9,
  0x78,
  0x73,
  0x64,
  0xea,
  0xc5,
  0xac,
  0x83,
  0x34,
  0xd3,
  0xeb,
  0xc3,
  0xc5,
  0x81,
  0xa0,
  0xff,
  0xfa,
  0x13,
  0x63,
  0xeb,
  0x17,
  0x0d,
  0xdd,
  0x51,
  0xb7,
  0xf0,
  0xda,
  0x49,
  0xd3,
  0x16,
  0x55,
  0x26,
  0x29,
  0xd4,
  0x68,
  0x9e,
  0x2b,
  0x16,
  0xbe,
  0x58,
  0x7d,
  0x47,
  0xa1,
  0xfc,
  0x8f,
  0xf8,
  0xb8,
  0xd1,
  0x7a,
  0xd0,
  0x31,
  0xce,
  0x45,
  0xcb,
  0x3a,
  0x8f,
  0x95,
  0x16,
  0x04,
  0x28,
  0xaf,
  0xd7,
  0xfb,
  0xca,
  0xbb,
  0x4b,
  0x40,
  0x7e,
], 16);

/** Low 64 bits of the 128-bit product xor-ed with its high 64 bits. */
function mulFold64(a: u64, b: u64): u64 {
  const aLo = a & 0xffffffff;
  const aHi = a >> 32;
  const bLo = b & 0xffffffff;
  const bHi = b >> 32;
  const loLo = aLo * bLo;
  const hiLo = aHi * bLo;
  const loHi = aLo * bHi;
  const hiHi = aHi * bHi;
  const cross = (loLo >> 32) + (hiLo & 0xffffffff) + loHi;
  const upper = (hiLo >> 32) + (cross >> 32) + hiHi;
  const lower = (cross << 32) | (loLo & 0xffffffff);
  return lower ^ upper;
}

function xxh64Avalanche(h: u64): u64 {
  h ^= h >> 33;
  h *= P64_2;
  h ^= h >> 29;
  h *= P64_3;
  return h ^ (h >> 32);
}

function avalanche(h: u64): u64 {
  h ^= h >> 37;
  h *= PMX_1;
  return h ^ (h >> 32);
}

function rrmxmx(h: u64, len: u64): u64 {
  h ^= rotl<u64>(h, 49) ^ rotl<u64>(h, 24);
  h *= PMX_2;
  h ^= (h >> 35) + len;
  h *= PMX_2;
  return h ^ (h >> 28);
}

function mix16(p: usize, s: usize): u64 {
  return mulFold64(load<u64>(p) ^ load<u64>(s), load<u64>(p, 8) ^ load<u64>(s, 8));
}

function len0(): u64 {
  return xxh64Avalanche(load<u64>(SECRET, 56) ^ load<u64>(SECRET, 64));
}

function len1to3(p: usize, len: u32): u64 {
  const c1 = <u32> load<u8>(p);
  const c2 = <u32> load<u8>(p + (len >> 1));
  const c3 = <u32> load<u8>(p + len - 1);
  const combined: u32 = (c1 << 16) | (c2 << 24) | c3 | (len << 8);
  const bitflip = <u64> (load<u32>(SECRET) ^ load<u32>(SECRET, 4));
  return xxh64Avalanche(<u64> combined ^ bitflip);
}

function len4to8(p: usize, len: u32): u64 {
  const in1 = <u64> load<u32>(p);
  const in2 = <u64> load<u32>(p + len - 4);
  const bitflip = load<u64>(SECRET, 8) ^ load<u64>(SECRET, 16);
  const keyed = (in2 + (in1 << 32)) ^ bitflip;
  return rrmxmx(keyed, len);
}

function len9to16(p: usize, len: u32): u64 {
  const bitflip1 = load<u64>(SECRET, 24) ^ load<u64>(SECRET, 32);
  const bitflip2 = load<u64>(SECRET, 40) ^ load<u64>(SECRET, 48);
  const lo = load<u64>(p) ^ bitflip1;
  const hi = load<u64>(p + len - 8) ^ bitflip2;
  const acc = <u64> len + bswap<u64>(lo) + hi + mulFold64(lo, hi);
  return avalanche(acc);
}

function len17to128(p: usize, len: u32): u64 {
  let acc = <u64> len * P64_1;
  if (len > 32) {
    if (len > 64) {
      if (len > 96) {
        acc += mix16(p + 48, SECRET + 96);
        acc += mix16(p + len - 64, SECRET + 112);
      }
      acc += mix16(p + 32, SECRET + 64);
      acc += mix16(p + len - 48, SECRET + 80);
    }
    acc += mix16(p + 16, SECRET + 32);
    acc += mix16(p + len - 32, SECRET + 48);
  }
  acc += mix16(p, SECRET);
  acc += mix16(p + len - 16, SECRET + 16);
  return avalanche(acc);
}

function len129to240(p: usize, len: u32): u64 {
  let acc = <u64> len * P64_1;
  const rounds = len >> 4;
  for (let i: u32 = 0; i < 8; i++) acc += mix16(p + (i << 4), SECRET + (i << 4));
  acc = avalanche(acc);
  for (let i: u32 = 8; i < rounds; i++) acc += mix16(p + (i << 4), SECRET + ((i - 8) << 4) + 3);
  acc += mix16(p + len - 16, SECRET + 136 - 17);
  return avalanche(acc);
}

// Accumulators for the long loop, kept in four i64x2 globals between helper calls.
let a0: v128 = i64x2.splat(0);
let a1: v128 = i64x2.splat(0);
let a2: v128 = i64x2.splat(0);
let a3: v128 = i64x2.splat(0);

/**
 * Two 16-byte lanes of a stripe: acc[i ^ 1] += data[i]; acc[i] += lo32(dk[i]) * hi32(dk[i]) with
 * dk = data ^ key. The low and high halves of both lanes are gathered with one shuffle each, so
 * one extmul_low and one extmul_high produce the four products.
 */
function accPair(p: usize, s: usize, off: usize): void {
  const dA = v128.load(p + off);
  const dB = v128.load(p + off + 16);
  const kA = v128.xor(dA, v128.load(s + off));
  const kB = v128.xor(dB, v128.load(s + off + 16));
  const lo = i32x4.shuffle(kA, kB, 0, 2, 4, 6);
  const hi = i32x4.shuffle(kA, kB, 1, 3, 5, 7);
  const pA = i64x2.add(i64x2.extmul_low_i32x4_u(lo, hi), i64x2.shuffle(dA, dA, 1, 0));
  const pB = i64x2.add(i64x2.extmul_high_i32x4_u(lo, hi), i64x2.shuffle(dB, dB, 1, 0));
  if (off == 0) {
    a0 = i64x2.add(a0, pA);
    a1 = i64x2.add(a1, pB);
  } else {
    a2 = i64x2.add(a2, pA);
    a3 = i64x2.add(a3, pB);
  }
}

/** One 64-byte stripe at `p` with the secret at `s`. */
function accumulate512(p: usize, s: usize): void {
  accPair(p, s, 0);
  accPair(p, s, 32);
}

function scrambleLane(acc: v128, key: v128): v128 {
  acc = v128.xor(acc, i64x2.shr_u(acc, 47));
  acc = v128.xor(acc, key);
  return i64x2.mul(acc, i64x2.splat(P32_1));
}

function scramble(s: usize): void {
  a0 = scrambleLane(a0, v128.load(s));
  a1 = scrambleLane(a1, v128.load(s, 16));
  a2 = scrambleLane(a2, v128.load(s, 32));
  a3 = scrambleLane(a3, v128.load(s, 48));
}

function mergeAccs(start: u64): u64 {
  const s = SECRET + 11;
  let r = start;
  r += mulFold64(
    i64x2.extract_lane(a0, 0) ^ load<u64>(s, 0),
    i64x2.extract_lane(a0, 1) ^ load<u64>(s, 8),
  );
  r += mulFold64(
    i64x2.extract_lane(a1, 0) ^ load<u64>(s, 16),
    i64x2.extract_lane(a1, 1) ^ load<u64>(s, 24),
  );
  r += mulFold64(
    i64x2.extract_lane(a2, 0) ^ load<u64>(s, 32),
    i64x2.extract_lane(a2, 1) ^ load<u64>(s, 40),
  );
  r += mulFold64(
    i64x2.extract_lane(a3, 0) ^ load<u64>(s, 48),
    i64x2.extract_lane(a3, 1) ^ load<u64>(s, 56),
  );
  return avalanche(r);
}

/** Starts a long (> 240 bytes) hash. */
export function xxh3LongReset(): void {
  a0 = i64x2.replace_lane(i64x2.splat(P32_3), 1, P64_1);
  a1 = i64x2.replace_lane(i64x2.splat(P64_2), 1, P64_3);
  a2 = i64x2.replace_lane(i64x2.splat(P64_4), 1, P32_2);
  a3 = i64x2.replace_lane(i64x2.splat(P64_5), 1, P32_1);
}

/** Consumes `blocks` full 1024-byte blocks at `p` (never the block holding the last byte). */
export function xxh3LongBlocks(p: usize, blocks: u32): void {
  for (let n: u32 = 0; n < blocks; n++) {
    const b = p + n * X3_BLOCK_LEN;
    for (let s: u32 = 0; s < X3_STRIPES_PER_BLOCK; s++) {
      accumulate512(b + (s << 6), SECRET + (s << 3));
    }
    scramble(SECRET + X3_SECRET_SIZE - X3_STRIPE_LEN);
  }
}

/**
 * Finishes a long hash of `total` bytes: `tail` (1..1024) bytes at `p` follow the blocks already
 * consumed, and the 64 bytes before `p` must hold the input bytes before them (the last stripe
 * may reach back into them).
 */
export function xxh3LongFinish(p: usize, tail: u32, total: u32): u64 {
  const stripes = (tail - 1) / X3_STRIPE_LEN;
  for (let s: u32 = 0; s < stripes; s++) accumulate512(p + (s << 6), SECRET + (s << 3));
  accumulate512(p + tail - X3_STRIPE_LEN, SECRET + X3_SECRET_SIZE - X3_STRIPE_LEN - 7);
  return mergeAccs(<u64> total * P64_1);
}

function hashLong(p: usize, len: u32): u64 {
  xxh3LongReset();
  const blocks = (len - 1) / X3_BLOCK_LEN;
  xxh3LongBlocks(p, blocks);
  return xxh3LongFinish(p + blocks * X3_BLOCK_LEN, len - blocks * X3_BLOCK_LEN, len);
}

/** XXH3-64 (seed 0) of `len` bytes at `p`. */
export function xxh3(p: usize, len: u32): u64 {
  if (len <= 16) {
    if (len > 8) return len9to16(p, len);
    if (len >= 4) return len4to8(p, len);
    if (len > 0) return len1to3(p, len);
    return len0();
  }
  if (len <= 128) return len17to128(p, len);
  if (len <= 240) return len129to240(p, len);
  return hashLong(p, len);
}
