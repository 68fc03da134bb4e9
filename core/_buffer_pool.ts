/**
 * A bounded pool of block-sized buffers, reused instead of allocating a fresh one per block.
 *
 * At most `max` buffers exist at once (taken or free): {@linkcode BufferPool.take} waits while
 * all of them are taken, so the pool bounds the memory of what it serves, and it is a queue
 * of back pressure too. A buffer may travel to a worker and back (transferred twice): the pool
 * counts buffers, it does not track their identity. A buffer that does not come back (a worker
 * failed, a store may still be reading it after an error) is {@linkcode BufferPool.drop}ped: its
 * place is free again and a new buffer is made when one is needed.
 *
 * Why: a fresh 4 MiB `Uint8Array` per block is memory the kernel has to fault in (about 2 s per
 * GiB on a small VM) and, once garbage, stays resident until the next collection of the isolate
 * that holds it, in whichever malloc arena it came from; a stream of blocks made the daemon's
 * RSS grow by hundreds of MiB (issue #13, bench/README.md "Peak memory").
 *
 * @module
 */

/** A bounded pool of buffers of `size` bytes. */
export class BufferPool {
  /** Bytes of each buffer. */
  readonly size: number;
  /** The most buffers that exist at once. */
  readonly max: number;
  #free: ArrayBuffer[] = [];
  #taken = 0;
  #made = 0;
  #waiters: Array<() => void> = [];

  /** A pool of at most `max` buffers of `size` bytes (none made until taken). */
  constructor(size: number, max: number) {
    if (!(size > 0) || !(max >= 1)) throw new RangeError(`Bad buffer pool ${size} x ${max}`);
    this.size = size;
    this.max = max;
  }

  /** Buffers taken and not given back or dropped. */
  get taken(): number {
    return this.#taken;
  }

  /** Buffers in existence: taken plus free (never more than {@linkcode max}). */
  get live(): number {
    return this.#taken + this.#free.length;
  }

  /** Buffers made since the pool was created (reuse keeps this low). */
  get made(): number {
    return this.#made;
  }

  /** A buffer of {@linkcode size} bytes (old contents), waiting while {@linkcode max} are taken. */
  async take(): Promise<Uint8Array> {
    while (this.#taken >= this.max) await new Promise<void>((r) => this.#waiters.push(r));
    this.#taken++;
    const free = this.#free.pop();
    if (free) return new Uint8Array(free);
    this.#made++;
    return new Uint8Array(this.size);
  }

  /** Gives back a buffer taken from this pool (or a view of one: its whole buffer is kept). */
  give(buf: Uint8Array): void {
    if (buf.buffer.byteLength !== this.size || buf.buffer instanceof SharedArrayBuffer) {
      throw new RangeError(`Not a buffer of this pool (${buf.buffer.byteLength} bytes)`);
    }
    if (this.#taken === 0) throw new RangeError("More buffers given back than taken");
    this.#taken--;
    this.#free.push(buf.buffer);
    this.#waiters.shift()?.();
  }

  /** Forgets a taken buffer that will not come back; its place is free for a new one. */
  drop(): void {
    if (this.#taken === 0) throw new RangeError("More buffers dropped than taken");
    this.#taken--;
    this.#waiters.shift()?.();
  }
}
