/**
 * The encoding of a block for the store (`DataEngine.putBlock`, `core/data.ts`), in a buffer of
 * a {@linkcode BufferPool} rather than a new copy per block.
 *
 * A large block (128 KiB and more) is encoded by a codec worker, to which its buffer is
 * transferred, so the worker gets a copy (the caller's block stays readable: pending writes are
 * read back from it). That copy is made in a pooled buffer, which the worker sends back with the
 * result: given back to the pool at once when the stored data is a new array (the block
 * compressed), or once the store has the data when it is the buffer itself (it did not); dropped
 * (its place freed for a new buffer) when a worker or the put failed, since a store may still
 * read it then. The pool bounds these copies, and `take` waiting for a buffer is back pressure
 * on the writers.
 *
 * @module
 */

import type { CodecPool, EncodedBlock } from "./block_codec.ts";
import { BufferPool } from "./_buffer_pool.ts";

/** Blocks encoded on workers from this size up (below, inline and not copied). */
const WORKER_MIN = 128 * 1024;

/**
 * The pool of a volume's encode copies: one buffer per upload a file may have in flight, and
 * two more (one per codec worker at work meanwhile).
 */
export function encodePool(blockSize: number, uploadConcurrency: number): BufferPool {
  return new BufferPool(blockSize, uploadConcurrency + 2);
}

/** What to encode a block as. */
export interface EncodeAs {
  compress: boolean;
  dedup: boolean;
  sums: boolean;
  segmented: boolean;
}

/**
 * Encodes `raw` (which stays the caller's) for the store. Call `release(true)` once the store
 * has the data, `release(false)` if storing it failed.
 */
export async function encodeForStore(
  codec: CodecPool,
  pool: BufferPool,
  raw: Uint8Array,
  as: EncodeAs,
): Promise<{ enc: EncodedBlock; release: (stored: boolean) => void }> {
  const big = raw.byteLength >= WORKER_MIN;
  const encode = (input: Uint8Array) =>
    codec.encode(input, as.compress, as.dedup, as.sums, as.segmented);
  if (!big || raw.byteLength > pool.size) {
    return { enc: await encode(big ? raw.slice() : raw), release: () => {} };
  }
  const input = (await pool.take()).subarray(0, raw.byteLength);
  input.set(raw);
  let enc: EncodedBlock;
  try {
    enc = await encode(input);
  } catch (err) {
    pool.drop(); // lost with the worker
    throw err;
  }
  const back = enc.input;
  if (back === undefined) {
    pool.drop();
    return { enc, release: () => {} };
  }
  if (enc.data.buffer !== back.buffer) {
    pool.give(back);
    return { enc, release: () => {} };
  }
  let done = false;
  return {
    enc,
    release: (stored) => {
      if (done) return;
      done = true;
      if (stored) pool.give(back);
      else pool.drop();
    },
  };
}
