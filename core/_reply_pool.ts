/**
 * Reused buffers for large read replies. A sequential read from the disk cache tier reads up to
 * 1 MiB per FUSE request; a new array for each cost the daemon a quarter of its CPU on this
 * virtual machine (`memset` of fresh pages and their page faults, `perf` of a warm 1 GiB read).
 * `read` takes a buffer ({@linkcode takeReply}), the block layer reads into it when it can, and the
 * FUSE adapter gives it back ({@linkcode giveReply}) once the kernel has copied the reply: a buffer
 * is never reused while a reply still reads it.
 *
 * @example
 * ```ts
 * import { giveReply, takeReply } from "./_reply_pool.ts";
 * import { equal } from "node:assert/strict";
 *
 * const a = takeReply(1 << 20);
 * giveReply(a);
 * equal(takeReply(512 << 10).buffer, a.buffer); // the same memory again
 * ```
 *
 * @module
 */

/** The size of every pooled buffer: the largest read the kernel sends (`max_read`, 1 MiB). */
export const REPLY_BYTES = 1 << 20;
/** At most this many buffers wait for reuse (8 MiB). */
const KEPT = 8;
const free: ArrayBuffer[] = [];
/** Buffers of the pool, each while it is out. */
const out = new WeakSet<ArrayBuffer>();

/** `n` bytes (at most {@linkcode REPLY_BYTES}) of a pooled buffer; their content is undefined. */
export function takeReply(n: number): Uint8Array {
  if (n > REPLY_BYTES) throw new RangeError(`A reply of ${n} bytes is over ${REPLY_BYTES}`);
  const buf = free.pop() ?? new ArrayBuffer(REPLY_BYTES);
  out.add(buf);
  return new Uint8Array(buf, 0, n);
}

/**
 * Gives back the buffer under `bytes` if it came from {@linkcode takeReply} and is out; any other
 * bytes are left alone. Call it once nothing reads `bytes` any more.
 */
export function giveReply(bytes: Uint8Array): void {
  const buf = bytes.buffer;
  if (!(buf instanceof ArrayBuffer) || !out.has(buf)) return;
  out.delete(buf);
  if (free.length < KEPT) free.push(buf);
}
