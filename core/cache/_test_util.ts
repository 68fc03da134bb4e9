/**
 * Test helpers of the cache: deterministic blocks, temp directories, a look at the files and the
 * open descriptors under a cache directory.
 *
 * @module
 */

import { equal } from "node:assert/strict";
import { TieredCache, type TieredCacheOptions } from "./tiered_cache.ts";
import { SEGMENT } from "./_block_file.ts";

/** Deterministic bytes for a key, so any block returned can be checked. */
export function block(key: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = 0;
  for (let i = 0; i < key.length; i++) x = (x * 31 + key.charCodeAt(i)) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A seeded PRNG (mulberry32) giving floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** All files under `dir` (temp files included). */
export function files(dir: string): Array<{ path: string; size: number }> {
  const out: Array<{ path: string; size: number }> = [];
  for (const d of Deno.readDirSync(dir)) {
    const path = `${dir}/${d.name}`;
    if (d.isDirectory) out.push(...files(path));
    else if (d.isFile) out.push({ path, size: Deno.statSync(path).size });
  }
  return out;
}

/** Bytes of all files under `dir`. */
export function dirBytes(dir: string): number {
  return files(dir).reduce((n, f) => n + f.size, 0);
}

/** A cache with a memory tier and one disk tier in `dir` (no free-space reserve). */
export function openCache(
  dir: string,
  memoryBytes: number,
  capacityBytes: number,
  more: Omit<TieredCacheOptions, "memoryBytes" | "dirs"> = {},
): Promise<TieredCache> {
  return TieredCache.open({
    memoryBytes,
    dirs: [{ path: dir, capacityBytes, minFreeRatio: 0 }],
    ...more,
  });
}

/** Runs `fn` with a fresh temp directory, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-cache-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The checksummed segment of block files. */
export const SEG: number = SEGMENT;

/** Descriptors of this process open on files under `dir` (their link targets). */
export function openFiles(dir: string): string[] {
  const root = `${Deno.realPathSync(dir)}/`;
  const out: string[] = [];
  for (const d of Deno.readDirSync("/proc/self/fd")) {
    try {
      const target = Deno.readLinkSync(`/proc/self/fd/${d.name}`);
      if (target.startsWith(root)) out.push(target);
    } catch {
      // closed meanwhile (the descriptor of the listing itself)
    }
  }
  return out;
}

/** Where the data starts in the block file of `key` holding `size` bytes. */
export function dataOffset(key: string, size: number): number {
  return 20 + new TextEncoder().encode(key).length + 8 * Math.ceil(size / SEG);
}

/** The only cache file of `size` bytes under `dir`. */
export function fileOfSize(dir: string, size: number): string {
  const found = files(dir).filter((f) => f.size === size);
  equal(found.length, 1, `one file of ${size} bytes`);
  return found[0]!.path;
}

/** Flips a bit of the byte at `at` in the file at `path`. */
export async function flipByte(path: string, at: number): Promise<void> {
  const bytes = await Deno.readFile(path);
  bytes[at]! ^= 0x10;
  await Deno.writeFile(path, bytes);
}

/** A block of 3 segments and 1000 bytes. */
export const BIG: number = 3 * SEG + 1000;
/** Ranges of a {@linkcode BIG} block: boundaries, crossings, the short last one. */
export const RANGES: Array<[number, number]> = [
  [0, 1],
  [0, 4096],
  [SEG - 1, 2],
  [SEG, SEG],
  [SEG - 100, SEG + 200],
  [1000, 2 * SEG + 500],
  [3 * SEG, 1000],
  [3 * SEG - 1, 1001],
  [BIG - 1, 1],
  [0, BIG],
  [12345, 0],
];
