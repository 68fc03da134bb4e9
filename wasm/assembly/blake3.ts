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

// Chunks consumed so far by the current hash.
let chunkCounter: u64 = 0;

function addChunks(input: usize, count: u32): void {
  let c: u32 = 0;
  for (; c + 4 <= count; c += 4) {
    hash4Chunks(input + (c << 10), chunkCounter, FOUR);
    pushChunkCv(FOUR, ++chunkCounter);
    pushChunkCv(FOUR + 32, ++chunkCounter);
    pushChunkCv(FOUR + 64, ++chunkCounter);
    pushChunkCv(FOUR + 96, ++chunkCounter);
  }
  for (; c < count; c++) {
    hashChunk(input + (c << 10), B3_CHUNK_LEN, chunkCounter, 0, CV);
    pushChunkCv(CV, ++chunkCounter);
  }
}

/** Starts a new hash. */
export function blake3Reset(): void {
  if (!keyReady) initKey();
  sp = 0;
  chunkCounter = 0;
}

/** Consumes `count` full chunks at `input`; more input (the last chunk) must follow. */
export function blake3Update(input: usize, count: u32): void {
  addChunks(input, count);
}

/** Consumes the rest of the input (`len` bytes at `input`) and writes the 32-byte hash to `out`. */
export function blake3Finish(input: usize, len: u32, out: usize): void {
  const chunks: u32 = len == 0 ? 1 : (len + B3_CHUNK_LEN - 1) / B3_CHUNK_LEN;
  const full: u32 = chunks - 1; // chunks before the last one, all full and never the root
  addChunks(input, full);
  const last = input + (full << 10);
  const lastLen = len - (full << 10);
  if (sp == 0) {
    hashChunk(last, lastLen, chunkCounter, ROOT, out);
    return;
  }
  hashChunk(last, lastLen, chunkCounter, 0, CV);
  memory.copy(STACK + (sp << 5), CV, 32);
  sp++;
  while (sp > 2) {
    const left = STACK + ((sp - 2) << 5);
    compressBlock(KEY, left, 0, B3_BLOCK_LEN, PARENT, left);
    sp--;
  }
  compressBlock(KEY, STACK, 0, B3_BLOCK_LEN, PARENT | ROOT, out);
}

/** Writes the 32-byte BLAKE3 hash of `len` bytes at `input` to `out`. */
export function blake3Hash(input: usize, len: u32, out: usize): void {
  blake3Reset();
  blake3Finish(input, len, out);
}
