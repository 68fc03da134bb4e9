/**
 * Locks through libc: flock and fcntl record locks; the calls that may block also run on a
 * worker thread (`_libc_worker.ts`), one call per worker, so a test can wait on a lock while it
 * releases the lock from elsewhere.
 *
 * @module
 */

import { F_GETLK, F_SETLK, F_SETLKW, SEEK_SET } from "./_libc_consts.ts";
import { check, libc, LibcError } from "./_libc_ffi.ts";

/** `flock(2)`; use `LOCK_NB` here, or {@link flockAsync} for a lock that may wait. */
export function flock(fd: number, op: number): void {
  check("flock", libc().flock(fd, op));
}

/** A POSIX record lock (`struct flock`). `len` 0 means "to EOF". */
export interface RecordLock {
  /** `l_type`: `F_RDLCK`, `F_WRLCK` or `F_UNLCK`. */
  type: number;
  /** `l_whence`: what `start` is relative to (default `SEEK_SET`). */
  whence?: number;
  /** `l_start`: the first byte. */
  start: number;
  /** `l_len`: the length in bytes, 0 for "to EOF". */
  len: number;
  /** `l_pid`: the holder (set by `F_GETLK`). */
  pid?: number;
}

/** Encodes a `struct flock` (32 bytes: type@0 i16, whence@2 i16, start@8, len@16, pid@24). */
export function encodeFlock(l: RecordLock): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setInt16(0, l.type, true);
  v.setInt16(2, l.whence ?? SEEK_SET, true);
  v.setBigInt64(8, BigInt(l.start), true);
  v.setBigInt64(16, BigInt(l.len), true);
  v.setInt32(24, l.pid ?? 0, true);
  return b;
}

/** Decodes a `struct flock`. */
export function decodeFlock(b: Uint8Array<ArrayBuffer>): Required<RecordLock> {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    type: v.getInt16(0, true),
    whence: v.getInt16(2, true),
    start: Number(v.getBigInt64(8, true)),
    len: Number(v.getBigInt64(16, true)),
    pid: v.getInt32(24, true),
  };
}

/** `fcntl(fd, F_GETLK)`: the first lock that would conflict with `l`, or type F_UNLCK. */
export function getlk(fd: number, l: RecordLock): Required<RecordLock> {
  const b = encodeFlock(l);
  check("fcntl(F_GETLK)", libc().fcntl(fd, F_GETLK, b));
  return decodeFlock(b);
}

/** `fcntl(fd, F_SETLK)`: sets (or with F_UNLCK clears) a lock, failing with EAGAIN on conflict. */
export function setlk(fd: number, l: RecordLock): void {
  check("fcntl(F_SETLK)", libc().fcntl(fd, F_SETLK, encodeFlock(l)));
}

/** `fcntl(fd, F_SETLKW)` run on a worker thread: resolves once the lock is granted. */
export function setlkwAsync(fd: number, l: RecordLock): Promise<void> {
  return runBlocking("fcntl(F_SETLKW)", { fn: "fcntl", args: [fd, F_SETLKW, encodeFlock(l)] });
}

/** `flock(2)` run on a worker thread: resolves once the lock is granted. */
export function flockAsync(fd: number, op: number): Promise<void> {
  return runBlocking("flock", { fn: "flock", args: [fd, op] });
}

/** getpid(2). */
export function getpid(): number {
  return libc().getpid();
}

/** A blocking call for `_libc_worker.ts` to run on its thread. */
export interface BlockingCall {
  /** The function: `flock(fd, op)` or `fcntl(fd, cmd, struct flock *)`. */
  fn: "flock" | "fcntl";
  /** Its arguments. */
  args: [number, number] | [number, number, Uint8Array<ArrayBuffer>];
}

/** The worker's answer: the call's return value and, when negative, the errno of that thread. */
export interface BlockingReply {
  /** The return value. */
  ret: number;
  /** The errno (0 when the call succeeded). */
  errno: number;
}

async function runBlocking(call: string, msg: BlockingCall): Promise<void> {
  const worker = new Worker(new URL("./_libc_worker.ts", import.meta.url), { type: "module" });
  try {
    const reply = await new Promise<BlockingReply>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<BlockingReply>) => resolve(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`${call} worker failed: ${e.message}`));
      };
      worker.postMessage(msg);
    });
    if (reply.ret < 0) throw new LibcError(call, reply.errno);
  } finally {
    worker.terminate();
  }
}
