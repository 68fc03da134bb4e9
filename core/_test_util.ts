/**
 * Test helpers for the core: a fresh volume on the memory engines, and test data.
 *
 * @module
 */

import { MemoryBlockStore, MemoryKvEngine } from "../backends/mod.ts";
import { formatVolume, Volume } from "./volume.ts";

/** A formatted volume on a memory KV engine and a memory block store. */
export async function memVolume(
  options: { blockSize?: number; chunkSize?: number; dedup?: boolean } = {},
): Promise<{ vol: Volume; kv: MemoryKvEngine; store: MemoryBlockStore }> {
  const kv = new MemoryKvEngine();
  const store = new MemoryBlockStore();
  await formatVolume(kv, { name: "test", storage: "mem://", ...options });
  const vol = await Volume.openWith(kv, store);
  return { vol, kv, store };
}

/** Compressible (text-like) and random 64 KiB stretches, alternating, from `seed`. */
export function mixedContent(size: number, seed = 12345): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = (i >> 16) % 2 === 0 ? 97 + ((x >>> 24) % 3) : x >>> 24;
  }
  return out;
}
