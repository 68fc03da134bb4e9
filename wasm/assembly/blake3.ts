// deno-lint-ignore-file
// @ts-nocheck AssemblyScript source, compiled by asc (not by Deno).

// BLAKE3 (unkeyed hash mode, 32-byte output) over a whole buffer.
//
// The input is split into 1024-byte chunks. All chunks but the last are full and not the root, so
// they are hashed four at a time with Wasm SIMD (one chunk per lane, `hash4Chunks`); the rest go
// through the scalar `compressBlock`. Chaining values are merged into the left-balanced tree with a
// stack: after chunk number `n` (1-based) is pushed, the top two entries are merged once per
// trailing zero bit of `n`. The last chunk is merged with everything left on the stack, and the
// final compression gets the ROOT flag.

// The key words (the IV in hash mode), a zero-padded last block and the chaining value stack
// (54 levels cover 2^64 bytes; 64 leaves room for the four CVs that hash4Chunks writes at once).
const KEY: usize = memory.data(32, 16);
const BLOCK: usize = memory.data(64, 16);
const CV: usize = memory.data(32, 16);
const FOUR: usize = memory.data(128, 16);
const STACK: usize = memory.data(64 * 32, 16);

let sp: u32 = 0;
let keyReady = false;

function initKey(): void {
  store<u32>(KEY, IV0, 0);
  store<u32>(KEY, IV1, 4);
  store<u32>(KEY, IV2, 8);
  store<u32>(KEY, IV3, 12);
  store<u32>(KEY, IV4, 16);
  store<u32>(KEY, IV5, 20);
  store<u32>(KEY, IV6, 24);
  store<u32>(KEY, IV7, 28);
  keyReady = true;
}

/** Pushes the CV of chunk number `total` (1-based) and merges completed subtrees. */
function pushChunkCv(cv: usize, total: u64): void {
  memory.copy(STACK + (sp << 5), cv, 32);
  sp++;
  while ((total & 1) == 0) {
    const left = STACK + ((sp - 2) << 5);
    compressBlock(KEY, left, 0, B3_BLOCK_LEN, PARENT, left);
    sp--;
    total >>= 1;
  }
}

/** Hashes the chunk of `len` bytes at `p` (chunk number `counter`) into the CV at `out`. */
function hashChunk(p: usize, len: u32, counter: u64, rootIfLast: u32, out: usize): void {
  memory.copy(out, KEY, 32);
  // Number of blocks: at least one (an empty input is one empty block).
  const blocks: u32 = len == 0 ? 1 : (len + B3_BLOCK_LEN - 1) / B3_BLOCK_LEN;
  for (let b: u32 = 0; b < blocks; b++) {
    let flags: u32 = b == 0 ? CHUNK_START : 0;
    let blockPtr = p + (b << 6);
    let blockLen: u32 = B3_BLOCK_LEN;
    if (b == blocks - 1) {
      flags |= CHUNK_END | rootIfLast;
      blockLen = len - (b << 6);
      if (blockLen < B3_BLOCK_LEN) {
        memory.fill(BLOCK, 0, 64);
        memory.copy(BLOCK, blockPtr, blockLen);
        blockPtr = BLOCK;
      }
    }
    compressBlock(out, blockPtr, counter, blockLen, flags, out);
  }
}

/** Writes the 32-byte BLAKE3 hash of `len` bytes at `input` to `out`. */
export function blake3Hash(input: usize, len: u32, out: usize): void {
  if (!keyReady) initKey();
  sp = 0;
  const chunks: u32 = len == 0 ? 1 : (len + B3_CHUNK_LEN - 1) / B3_CHUNK_LEN;
  const full: u32 = chunks - 1; // chunks before the last one, all full and never the root
  let c: u32 = 0;
  for (; c + 4 <= full; c += 4) {
    hash4Chunks(input + (c << 10), c, FOUR);
    pushChunkCv(FOUR, <u64> c + 1);
    pushChunkCv(FOUR + 32, <u64> c + 2);
    pushChunkCv(FOUR + 64, <u64> c + 3);
    pushChunkCv(FOUR + 96, <u64> c + 4);
  }
  for (; c < full; c++) {
    hashChunk(input + (c << 10), B3_CHUNK_LEN, c, 0, CV);
    pushChunkCv(CV, <u64> c + 1);
  }
  const lastLen = len - (full << 10);
  if (sp == 0) {
    hashChunk(input + (full << 10), lastLen, full, ROOT, out);
    return;
  }
  hashChunk(input + (full << 10), lastLen, full, 0, CV);
  memory.copy(STACK + (sp << 5), CV, 32);
  sp++;
  while (sp > 2) {
    const left = STACK + ((sp - 2) << 5);
    compressBlock(KEY, left, 0, B3_BLOCK_LEN, PARENT, left);
    sp--;
  }
  compressBlock(KEY, STACK, 0, B3_BLOCK_LEN, PARENT | ROOT, out);
}
