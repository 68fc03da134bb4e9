/**
 * Test helpers for the core: a fresh volume on the memory engines.
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
