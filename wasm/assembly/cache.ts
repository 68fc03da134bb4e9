// deno-lint-ignore-file
// @ts-nocheck AssemblyScript source, compiled by asc (not by Deno).

// The cache index: 64-bit block key -> slot (tier, location, size) with S3-FIFO eviction.
//
// Memory (one Wasm instance per index, laid out by cacheInit after the static data):
//   buckets  u32[B]   open addressing, linear probing, record id (0 = empty); B = 1.25 max + 16
//   ghost    u16[G]   S3-FIFO ghost queue approximated by a direct-mapped table of fingerprints,
//                     G = max / 2
//   evicted  24 B * EVICT_CAP   records evicted by the last insert/evict call, read by the caller:
//     0 key u64 | 8 location u64 | 16 size u32 | 20 tier u32
//   records  28 B each, id >= 1, grown on demand up to maxEntries, freed ids on a free list:
//     0 key u64 | 8 location (40 bits) | 13 tier u8 | 14 flags u8 | 15 hits u8 | 16 size u32 |
//     20 prev u32 | 24 next u32
//     flags: bits 0-1 S3-FIFO frequency, bit 2 in main queue, bit 3 live. hits saturates at 255.
//
// S3-FIFO: new keys enter the small FIFO (10% of capacity); a key evicted from the small FIFO
// moves to the main FIFO if it was accessed since insertion, else it leaves and its fingerprint
// enters the ghost table. A key found in the ghost table on insert goes straight to main. The main
// FIFO reinserts entries with frequency > 0 (decrementing it) and evicts the first with 0. So a
// one-pass scan only churns the small FIFO and never pushes hot blocks out of main.

const REC: u32 = 28;
const O_KEY: u32 = 0;
const O_LOC: u32 = 8;
const O_TIER: u32 = 13;
const O_FLAGS: u32 = 14;
const O_HITS: u32 = 15;
const O_SIZE: u32 = 16;
const O_PREV: u32 = 20;
const O_NEXT: u32 = 24;
const LOC_MASK: u64 = 0xffffffffff;

const F_FREQ: u32 = 3;
const F_MAIN: u32 = 4;
const F_LIVE: u32 = 8;

const EVICT_CAP: u32 = 256;
const EVICT_REC: u32 = 24;

let maxEntries: u32 = 0;
let maxBytes: u64 = 0;
let smallEntries: u32 = 0;
let smallBytes: u64 = 0;

let buckets: usize = 0;
let nBuckets: u32 = 0;
let ghost: usize = 0;
let nGhost: u32 = 0;
let evictBuf: usize = 0;
let evictCount: u32 = 0;
let recBase: usize = 0;
let recNext: u32 = 1;
let recCapacity: u32 = 0; // ids below this are backed by memory
let freeHead: u32 = 0;

let count: u32 = 0;
let bytes: u64 = 0;
let sHead: u32 = 0;
let sTail: u32 = 0;
let sCount: u32 = 0;
let sBytes: u64 = 0;
let mHead: u32 = 0;
let mTail: u32 = 0;

function rec(id: u32): usize {
  return recBase + <usize> id * REC;
}

/** Maps 32 hash bits onto `[0, n)` without a division. */
function reduce(h: u32, n: u32): u32 {
  return <u32> ((<u64> h * <u64> n) >> 32);
}

/** Makes sure record ids below `ids` are backed by memory. Returns false if memory is exhausted. */
function reserve(ids: u32): bool {
  if (ids <= recCapacity) return true;
  let want = recCapacity + (recCapacity >> 2) + 1024;
  if (want < ids) want = ids;
  if (want > maxEntries + 1) want = maxEntries + 1;
  const end = <u64> rec(want);
  const have = <u64> memory.size() << 16;
  if (end > have) {
    const pages = <i32> ((end - have + 0xffff) >> 16);
    if (memory.grow(pages) < 0) return false;
  }
  recCapacity = want;
  return true;
}

/**
 * Lays out an index for `entries` entries and `capacity` bytes. `smallPercent` is the share of the
 * small FIFO (10 in the S3-FIFO paper). Returns 0, or -1 if memory cannot grow.
 */
export function cacheInit(entries: u32, capacity: u64, smallPercent: u32): i32 {
  maxEntries = entries;
  maxBytes = capacity;
  smallEntries = <u32> ((<u64> entries * smallPercent + 99) / 100);
  if (smallEntries == 0) smallEntries = 1;
  smallBytes = capacity / 100 * smallPercent + (capacity % 100) * smallPercent / 100;
  nBuckets = entries + (entries >> 2) + 16; // count may exceed entries by one before evicting
  nGhost = (entries >> 1) + 16;
  buckets = (__heap_base + 15) & ~15;
  ghost = buckets + (<usize> nBuckets << 2);
  evictBuf = (ghost + (<usize> nGhost << 1) + 15) & ~15;
  recBase = evictBuf + EVICT_CAP * EVICT_REC;
  recCapacity = 0;
  if (!reserve(1025)) return -1;
  return 0;
}

function home(key: u64): u32 {
  return reduce(<u32> ((key * 0x9e3779b97f4a7c15) >> 32), nBuckets);
}

function nextBucket(i: u32): u32 {
  i++;
  return i == nBuckets ? 0 : i;
}

/** Bucket index holding `key`, or -1. */
function findSlot(key: u64): i32 {
  let i = home(key);
  while (true) {
    const id = load<u32>(buckets + (<usize> i << 2));
    if (id == 0) return -1;
    if (load<u64>(rec(id), O_KEY) == key) return <i32> i;
    i = nextBucket(i);
  }
}

function find(key: u64): u32 {
  let i = home(key);
  while (true) {
    const id = load<u32>(buckets + (<usize> i << 2));
    if (id == 0) return 0;
    if (load<u64>(rec(id), O_KEY) == key) return id;
    i = nextBucket(i);
  }
}

/** Empties bucket `i`, shifting later entries of its probe run back (no tombstones). */
function deleteSlot(i: u32): void {
  let j = i;
  while (true) {
    j = nextBucket(j);
    const id = load<u32>(buckets + (<usize> j << 2));
    if (id == 0) break;
    const k = home(load<u64>(rec(id), O_KEY));
    const stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (!stays) {
      store<u32>(buckets + (<usize> i << 2), id);
      i = j;
    }
  }
  store<u32>(buckets + (<usize> i << 2), 0);
}

function ghostMix(key: u64): u64 {
  return key * 0xc2b2ae3d27d4eb4f;
}

function ghostSlot(m: u64): usize {
  return ghost + (<usize> reduce(<u32> (m >> 32), nGhost) << 1);
}

function ghostPut(key: u64): void {
  const m = ghostMix(key);
  store<u16>(ghostSlot(m), <u16> m | 1);
}

/** True if `key` was recently evicted from the small FIFO (and forgets it). */
function ghostTake(key: u64): bool {
  const m = ghostMix(key);
  const p = ghostSlot(m);
  if (load<u16>(p) != (<u16> m | 1)) return false;
  store<u16>(p, 0);
  return true;
}

function unlink(id: u32): void {
  const r = rec(id);
  const prev = load<u32>(r, O_PREV);
  const next = load<u32>(r, O_NEXT);
  const main = (load<u8>(r, O_FLAGS) & F_MAIN) != 0;
  if (prev != 0) store<u32>(rec(prev), next, O_NEXT);
  else if (main) mHead = next;
  else sHead = next;
  if (next != 0) store<u32>(rec(next), prev, O_PREV);
  else if (main) mTail = prev;
  else sTail = prev;
  if (!main) {
    sCount--;
    sBytes -= load<u32>(r, O_SIZE);
  }
}

function pushTail(id: u32, main: bool): void {
  const r = rec(id);
  let flags = <u32> load<u8>(r, O_FLAGS);
  flags = main ? flags | F_MAIN : flags & ~F_MAIN;
  store<u8>(r, <u8> flags, O_FLAGS);
  store<u32>(r, 0, O_NEXT);
  if (main) {
    store<u32>(r, mTail, O_PREV);
    if (mTail != 0) store<u32>(rec(mTail), id, O_NEXT);
    else mHead = id;
    mTail = id;
  } else {
    store<u32>(r, sTail, O_PREV);
    if (sTail != 0) store<u32>(rec(sTail), id, O_NEXT);
    else sHead = id;
    sTail = id;
    sCount++;
    sBytes += load<u32>(r, O_SIZE);
  }
}

function freeRec(id: u32): void {
  const r = rec(id);
  store<u8>(r, 0, O_FLAGS);
  store<u32>(r, freeHead, O_NEXT);
  freeHead = id;
}

/** Drops an unlinked record from the table and reports it in the eviction buffer. */
function evictRec(id: u32): void {
  const r = rec(id);
  const key = load<u64>(r, O_KEY);
  const size = load<u32>(r, O_SIZE);
  const e = evictBuf + evictCount * EVICT_REC;
  store<u64>(e, key, 0);
  store<u64>(e, load<u64>(r, O_LOC) & LOC_MASK, 8);
  store<u32>(e, size, 16);
  store<u32>(e, load<u8>(r, O_TIER), 20);
  evictCount++;
  deleteSlot(<u32> findSlot(key));
  count--;
  bytes -= size;
  freeRec(id);
}

function evictSmall(): bool {
  while (sHead != 0) {
    const id = sHead;
    const r = rec(id);
    unlink(id);
    const flags = <u32> load<u8>(r, O_FLAGS);
    if ((flags & F_FREQ) != 0) {
      store<u8>(r, <u8> (flags & ~F_FREQ), O_FLAGS);
      pushTail(id, true);
    } else {
      ghostPut(load<u64>(r, O_KEY));
      evictRec(id);
      return true;
    }
  }
  return false;
}

function evictMain(): bool {
  while (mHead != 0) {
    const id = mHead;
    const r = rec(id);
    unlink(id);
    const flags = <u32> load<u8>(r, O_FLAGS);
    if ((flags & F_FREQ) != 0) {
      store<u8>(r, <u8> (flags - 1), O_FLAGS);
      pushTail(id, true);
    } else {
      evictRec(id);
      return true;
    }
  }
  return false;
}

function evictOne(): void {
  if (sHead != 0 && (sBytes > smallBytes || sCount > smallEntries || mHead == 0)) {
    if (evictSmall()) return;
  }
  if (evictMain()) return;
  evictSmall();
}

/**
 * Evicts until the index is within both limits or the eviction buffer is full. Returns the number
 * of entries written to the buffer (call again while it equals the buffer capacity).
 */
export function cacheEvict(): u32 {
  return <u32> evictNow();
}

function evictNow(): i32 {
  evictCount = 0;
  while (evictCount < EVICT_CAP && (count > maxEntries || bytes > maxBytes) && count > 0) {
    evictOne();
  }
  return <i32> evictCount;
}

/** Record id of `key` counting an access, or 0. */
export function cacheGet(key: u64): u32 {
  const id = find(key);
  if (id != 0) {
    const r = rec(id);
    const flags = <u32> load<u8>(r, O_FLAGS);
    if ((flags & F_FREQ) != F_FREQ) store<u8>(r, <u8> (flags + 1), O_FLAGS);
    const hits = <u32> load<u8>(r, O_HITS);
    if (hits != 0xff) store<u8>(r, <u8> (hits + 1), O_HITS);
  }
  return id;
}

/** Record id of `key` without counting an access, or 0. */
export function cachePeek(key: u64): u32 {
  return find(key);
}

/**
 * Inserts or updates `key` (location below 2^40), then evicts until the index is within its limits
 * or the eviction buffer is full. Returns the number of evicted entries in the buffer (call
 * cacheEvict while it is EVICT_CAP), or -1 if memory could not grow.
 */
export function cacheInsert(key: u64, location: f64, size: u32, tier: u32): i32 {
  let id = find(key);
  if (id != 0) {
    const r = rec(id);
    const old = load<u32>(r, O_SIZE);
    bytes = bytes - old + size;
    if ((load<u8>(r, O_FLAGS) & F_MAIN) == 0) sBytes = sBytes - old + size;
    storeLocation(r, location);
    store<u32>(r, size, O_SIZE);
    store<u8>(r, <u8> tier, O_TIER);
    return evictNow();
  }
  if (freeHead != 0) {
    id = freeHead;
    freeHead = load<u32>(rec(id), O_NEXT);
  } else {
    if (!reserve(recNext + 1)) return -1;
    id = recNext++;
  }
  const r = rec(id);
  store<u64>(r, key, O_KEY);
  // location, tier, flags (live) and hits in one store
  store<u64>(
    r,
    (<u64> location & LOC_MASK) | (<u64> (tier & 0xff) << 40) | (<u64> F_LIVE << 48),
    O_LOC,
  );
  store<u32>(r, size, O_SIZE);
  pushTail(id, ghostTake(key));
  let i = home(key);
  while (load<u32>(buckets + (<usize> i << 2)) != 0) i = nextBucket(i);
  store<u32>(buckets + (<usize> i << 2), id);
  count++;
  bytes += size;
  return evictNow();
}

function storeLocation(r: usize, location: f64): void {
  const loc = <u64> location;
  store<u32>(r, <u32> loc, O_LOC);
  store<u8>(r, <u8> (loc >> 32), O_LOC + 4);
}

/** Removes `key`. Returns 1 if it was present. */
export function cacheRemove(key: u64): u32 {
  const slot = findSlot(key);
  if (slot < 0) return 0;
  const id = load<u32>(buckets + (<usize> slot << 2));
  unlink(id);
  deleteSlot(<u32> slot);
  count--;
  bytes -= load<u32>(rec(id), O_SIZE);
  freeRec(id);
  return 1;
}

/** Number of entries. */
export function cacheCount(): u32 {
  return count;
}

/** Sum of entry sizes. */
export function cacheBytes(): u64 {
  return bytes;
}

/** Address of record 0 (record `id` is at `base + 28 * id`). */
export function cacheRecBase(): usize {
  return recBase;
}

/** One past the highest record id ever used. */
export function cacheRecEnd(): u32 {
  return recNext;
}

/** Address of the eviction buffer. */
export function cacheEvictBuf(): usize {
  return evictBuf;
}
