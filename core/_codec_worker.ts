/**
 * A codec worker: encodes and decodes blocks with the Wasm engine off the main thread.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { decodeBlock, encodeBlock } from "./block_codec.ts";
import type { BlockRecord } from "./block_codec.ts";
import { FsError } from "./errno.ts";

self.onmessage = (ev: MessageEvent) => {
  const { id, job } = ev.data as {
    id: number;
    job:
      | { op: "encode"; raw: Uint8Array; compress: boolean; dedup: boolean }
      | { op: "decode"; stored: Uint8Array; record: BlockRecord; rawLen: number; key: string };
  };
  try {
    if (job.op === "encode") {
      const enc = encodeBlock(job.raw, job.compress, job.dedup);
      // The data may be the raw input itself (incompressible): transfer whichever it is.
      self.postMessage({ id, ok: true, value: enc }, [enc.data.buffer as ArrayBuffer]);
    } else {
      const raw = decodeBlock(job.stored, job.record, job.rawLen, job.key);
      const own = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength
        ? raw
        : raw.slice();
      self.postMessage({ id, ok: true, value: own }, [own.buffer as ArrayBuffer]);
    }
  } catch (err) {
    self.postMessage({
      id,
      ok: false,
      error: { errno: err instanceof FsError ? err.errno : undefined, message: String(err) },
    });
  }
};
