/**
 * A codec worker: encodes and decodes blocks with the Wasm engine off the main thread.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { blockSums, decodeBlock, encodeBlock } from "./block_codec.ts";
import type { CodecJob } from "./block_codec.ts";
import { FsError } from "./errno.ts";

self.onmessage = (ev: MessageEvent) => {
  const { id, job } = ev.data as { id: number; job: CodecJob };
  try {
    if (job.op === "encode") {
      const enc = encodeBlock(job.raw, job.compress, job.dedup, job.segmented);
      if (job.sums) enc.sums = blockSums(job.raw, enc.record);
      // The input goes back too (the caller reuses it, core/_buffer_pool.ts); the data may be
      // the input itself (incompressible).
      enc.input = job.raw;
      const transfer = [enc.data.buffer as ArrayBuffer];
      if (job.raw.buffer !== enc.data.buffer) transfer.push(job.raw.buffer as ArrayBuffer);
      self.postMessage({ id, ok: true, value: enc }, transfer);
    } else {
      const raw = decodeBlock(job.stored, job.record, job.rawLen, job.key);
      const own = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength
        ? raw
        : raw.slice();
      const value = job.sums ? { raw: own, sums: blockSums(own, job.record) } : own;
      self.postMessage({ id, ok: true, value }, [own.buffer as ArrayBuffer]);
    }
  } catch (err) {
    self.postMessage({
      id,
      ok: false,
      error: { errno: err instanceof FsError ? err.errno : undefined, message: String(err) },
    });
  }
};

// The pool holds jobs back until this arrives (see CodecPool).
self.postMessage({ ready: true });
