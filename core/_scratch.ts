/**
 * Reused 64 KiB buffers for reads whose bytes are copied out at once: a random read of a segment
 * from a local file (the `file://` store, a disk cache tier) reads the segment to verify its
 * checksum but returns only the few KiB asked for; the window a random read hands the kernel's page
 * cache (`_read_around.ts`) is read into one. A new 64 KiB array per read costs more than
 * the read on a virtual machine: zeroed, freshly mapped pages (page faults), then garbage.
 *
 * A buffer must go back ({@linkcode giveScratch}) only once nothing refers to it any more and no
 * read into it is still running (a read cut short by a deadline keeps its buffer).
 *
 * @example
 * ```ts
 * import { giveScratch, SCRATCH_BYTES, takeScratch } from "./_scratch.ts";
 * import { equal } from "node:assert/strict";
 *
 * const b = takeScratch();
 * equal(b.byteLength, SCRATCH_BYTES);
 * giveScratch(b);
 * equal(takeScratch(), b); // the same buffer again
 * ```
 *
 * @module
 */

/** The size of every scratch buffer: one segment. */
export const SCRATCH_BYTES = 64 * 1024;
/** At most this many buffers wait for reuse (1 MiB). */
const KEPT = 16;
const free: Uint8Array[] = [];

/** A scratch buffer of {@linkcode SCRATCH_BYTES} (its bytes are whatever the last user left). */
export function takeScratch(): Uint8Array {
  return free.pop() ?? new Uint8Array(SCRATCH_BYTES);
}

/** Returns a buffer from {@linkcode takeScratch} for reuse. */
export function giveScratch(buf: Uint8Array): void {
  if (buf.byteLength === SCRATCH_BYTES && free.length < KEPT && !free.includes(buf)) {
    free.push(buf);
  }
}
