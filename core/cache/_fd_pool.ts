/**
 * Open block files for ranged reads: descriptors opened with libc `open` (off the JS thread), kept
 * in an LRU of at most {@linkcode MAX_OPEN_FILES}, and read with `pread` (on the JS thread when
 * the page cache has the bytes, or when nothing else waits for the thread: `core/_io_gate.ts`); a descriptor leaves the
 * LRU when its file is evicted, deleted or found corrupt, and is closed once the reads using it end,
 * so that a descriptor number is never reused under a read. Without libc, {@linkcode seekReader}
 * reads through a Deno file handle.
 *
 * @example
 * ```ts
 * import { FdPool } from "./_fd_pool.ts";
 * import { tryLoadLibc } from "../libc.ts";
 * import { equal } from "node:assert/strict";
 *
 * const libc = tryLoadLibc();
 * if (libc !== null) {
 *   const path = await Deno.makeTempFile();
 *   await Deno.writeTextFile(path, "hello");
 *   const pool = new FdPool<string>(libc);
 *   const f = pool.acquire(path, path);
 *   const buf = new Uint8Array(4);
 *   equal(await pool.readerOf(await f.opening)(buf, 1), 4);
 *   pool.release(f);
 *   equal(new TextDecoder().decode(buf), "ello");
 *   pool.close();
 *   await Deno.remove(path);
 * }
 * ```
 *
 * @module
 */

import { LRUCache } from "lru-cache";
import type { LibC } from "../libc.ts";
import type { ReadAt } from "./_block_file.ts";
import { mayBlock } from "../_io_gate.ts";

/**
 * The most descriptors kept open: one per block of the files read at random (1,024 blocks: 4 GiB
 * of a file in 4 MiB blocks; a file read at random over more reopens blocks, one `open` each).
 */
export const MAX_OPEN_FILES = 1024;
/** Reads of up to this many bytes may wait for the disk on the JS thread (see `_io_gate.ts`). */
const MAX_BLOCKING_READ = 256 * 1024;
const O_RDONLY_CLOEXEC = 0o2000000; // O_RDONLY | O_CLOEXEC on Linux
const RWF_NOWAIT = 0x8;
const encoder = new TextEncoder();
const iovec = new BigUint64Array(2);

/** A file descriptor of the pool. */
export interface OpenFile<K> {
  /** What the file belongs to (the pool's key). */
  readonly key: K;
  /** Resolves to the descriptor, or -1 if `open` failed. */
  readonly opening: Promise<number>;
  /** The descriptor once open and until closed, else -1. */
  fd: number;
  /** Reads in flight on the descriptor. */
  users: number;
  /** Out of the LRU: closed when its last user is done. */
  retired: boolean;
}

/** An LRU of open read-only descriptors, one per key (a cached block). */
export class FdPool<K extends object | string> {
  readonly #lib: LibC;
  // lru-cache rather than a Map re-inserted on each hit: 13 ns against 41 ns per hit measured on
  // a Map-based LRU of blocks (Deno.bench, this machine), and eviction calls `dispose`.
  readonly #files = new LRUCache<K, OpenFile<K>>({
    max: MAX_OPEN_FILES,
    dispose: (f) => this.#retired(f),
  });
  #closed = false;

  /** A pool opening files through `lib`. */
  constructor(lib: LibC) {
    this.#lib = lib;
  }

  /**
   * The open file of `key` (at `path`) from the LRU, opened if needed; to be {@linkcode release}d
   * after use. After {@linkcode close} files are opened for one use and not kept.
   */
  acquire(key: K, path: string): OpenFile<K> {
    let f = this.#files.get(key);
    if (f === undefined && mayBlock()) {
      // Nothing else waits for this thread: open here (see `_io_gate.ts`).
      const fd = this.#lib.open(encoder.encode(`${path}\0`), O_RDONLY_CLOEXEC, 0);
      f = { key, opening: Promise.resolve(fd < 0 ? -1 : fd), fd, users: 0, retired: this.#closed };
      if (!this.#closed) this.#files.set(key, f);
    }
    if (f === undefined) {
      const opening = this.#lib.openAsync(encoder.encode(`${path}\0`), O_RDONLY_CLOEXEC, 0).then(
        (fd) => (file.fd = fd),
        () => -1,
      );
      const file: OpenFile<K> = { key, opening, fd: -1, users: 0, retired: this.#closed };
      f = file;
      if (!this.#closed) this.#files.set(key, f);
    }
    f.users++;
    return f;
  }

  /** Ends a use of `f`; closes it if it was retired meanwhile. */
  release(f: OpenFile<K>): void {
    f.users--;
    if (f.retired && f.users === 0) this.#closeFd(f);
  }

  /** Takes `f` out of the LRU; its descriptor is closed once no read uses it. */
  retire(f: OpenFile<K>): void {
    if (this.#files.peek(f.key) === f) this.#files.delete(f.key); // calls #retired
    else this.#retired(f);
  }

  /** Retires the open file of `key`, if any: its file is going. */
  forget(key: K): void {
    const f = this.#files.peek(key);
    if (f !== undefined) this.retire(f);
  }

  /** Retires every open file and stops keeping new ones. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#files.clear(); // calls #retired for each
  }

  /**
   * Reads through descriptor `fd`: `pread(2)` until the buffer is full or the file ends. What the
   * page cache holds is read at once on this thread (`preadv2` with `RWF_NOWAIT`, which never waits
   * for the disk): an off-thread call costs more than copying cached pages. The rest is read off
   * the thread.
   */
  readerOf(fd: number): ReadAt {
    const lib = this.#lib;
    return async (buf, pos) => {
      let off = 0;
      if (buf.length > 0) {
        iovec[0] = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
        iovec[1] = BigInt(buf.length);
        const n = Number(lib.preadv2(fd, iovec, 1, BigInt(pos), RWF_NOWAIT));
        if (n > 0) off = n; // -1 (EAGAIN: not cached; or an error the call below reports)
      }
      if (off < buf.length && buf.length <= MAX_BLOCKING_READ && mayBlock()) {
        // Nothing else waits for this thread: wait for the disk here (see `_io_gate.ts`).
        while (off < buf.length) {
          const rest = buf.subarray(off);
          const n = Number(lib.pread(fd, rest, BigInt(rest.length), BigInt(pos + off)));
          if (n <= 0) break; // an error: the call below reports it
          off += n;
        }
      }
      while (off < buf.length) {
        const rest = buf.subarray(off);
        const n = Number(await lib.preadAsync(fd, rest, BigInt(rest.length), BigInt(pos + off)));
        if (n < 0) throw new Error(`pread of ${buf.length - off} bytes at ${pos + off} failed`);
        if (n === 0) break;
        off += n;
      }
      return off;
    };
  }

  #retired(f: OpenFile<K>): void {
    f.retired = true;
    if (f.users === 0) this.#closeFd(f);
  }

  #closeFd(f: OpenFile<K>): void {
    if (f.fd >= 0) this.#lib.close(f.fd);
    f.fd = -1;
  }
}

/** Reads through a Deno file handle: seek, then read, one read at a time. */
export function seekReader(f: Deno.FsFile): ReadAt {
  let last: Promise<unknown> = Promise.resolve();
  return (buf, pos) => {
    const read = last.then(async () => {
      await f.seek(pos, Deno.SeekMode.Start);
      let off = 0;
      while (off < buf.length) {
        const n = await f.read(buf.subarray(off));
        if (n === null) break;
        off += n;
      }
      return off;
    });
    last = read.catch(() => {});
    return read;
  };
}
