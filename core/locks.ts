/**
 * Advisory locks: `flock(2)` and POSIX record locks (`fcntl` F_GETLK/F_SETLK/F_SETLKW).
 *
 * The {@linkcode LockManager} interface is what the core calls; {@linkcode LocalLocks} keeps the
 * locks of one mount in memory (the embedding API's default). `KvLocks` (`core/meta/kv_locks.ts`)
 * keeps them in the metadata engine, shared by every mount of the volume (what `slayerfs mount`
 * uses).
 *
 * @module
 */

import { Errno, FsError } from "./errno.ts";
import {
  F_RDLCK,
  F_UNLCK,
  F_WRLCK,
  type Ino,
  LOCK_EX,
  LOCK_NB,
  LOCK_SH,
  LOCK_UN,
} from "./types.ts";
import type { PosixLock } from "./types.ts";

/** Options of a lock request that may wait. */
export interface LockWaitOptions {
  /** The caller's pid, recorded with a flock (a POSIX lock carries its own). */
  pid?: number;
  /** Ends a wait with `EINTR` when aborted. */
  signal?: AbortSignal;
  /** Whether the caller was interrupted (a FUSE interrupt): checked while waiting, then `EINTR`. */
  interrupted?: () => boolean;
}

/** How often a wait checks {@linkcode LockWaitOptions.interrupted}, in ms. */
export const INTERRUPT_POLL_MS = 200;

/** Throws `EINTR` if the caller of a waiting request was interrupted. */
export function checkInterrupted(options: LockWaitOptions | undefined): void {
  if (options?.interrupted?.()) throw new FsError(Errno.EINTR, "Interrupted while waiting");
}

/** A lock a mount held when it lost them all (see {@linkcode LockManager.markLost}). */
export interface LostLock {
  /** The locked inode. */
  ino: Ino;
  /** The kernel's lock owner that held it. */
  owner: bigint;
  /** A `flock` or POSIX record locks. */
  kind: "flock" | "posix";
}

/** Where locks are kept. */
export interface LockManager {
  /** `flock`: take, convert or drop the lock of `owner` on `ino`. */
  flock(ino: Ino, owner: bigint, op: number, options?: LockWaitOptions): Promise<void>;
  /** The first lock conflicting with `lock`, or `lock` with type `F_UNLCK`. */
  getlk(ino: Ino, owner: bigint, lock: PosixLock): Promise<PosixLock>;
  /** Sets or clears a POSIX lock range. */
  setlk(
    ino: Ino,
    owner: bigint,
    lock: PosixLock,
    wait: boolean,
    options?: LockWaitOptions,
  ): Promise<void>;
  /** Drops every POSIX lock of `owner` on `ino` (close). */
  releasePosix(ino: Ino, owner: bigint): Promise<void>;
  /** Drops the flock of `owner` on `ino` (last close of the open file description). */
  releaseFlock(ino: Ino, owner: bigint): Promise<void>;
  /**
   * Every lock of this mount is gone (its session was cleaned up by another mount): forgets them
   * and returns what was held; later requests of those holders fail with `ENOLCK` until they
   * release (close); `sessionId`, if given, is the mount's new session from here on. Managers
   * whose locks cannot be lost leave it out.
   */
  markLost?(sessionId?: number): LostLock[];
  /** Drops every lock of this mount (a clean unmount); waiting requests fail with `EINTR`. */
  close?(): Promise<void>;
}

/**
 * Waits until `wake` is called, `ms` pass (if given) or `signal` aborts (then rejects with
 * `EINTR`).
 */
export function waitFor(
  register: (wake: () => void) => () => void,
  ms: number | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (signal?.aborted) return Promise.reject(new FsError(Errno.EINTR));
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = (err?: FsError) => {
      unregister();
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => done(new FsError(Errno.EINTR));
    const unregister = register(() => done());
    if (ms !== undefined) timer = setTimeout(() => done(), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

interface Range {
  owner: bigint;
  pid: number;
  type: number;
  start: number;
  end: number;
}

/** Requests waiting for a lock change on one inode. */
export class Waiters {
  #set = new Set<() => void>();
  /** Waits for {@linkcode Waiters.wake}, at most `ms` if given; `EINTR` when `signal` aborts. */
  wait(ms?: number, signal?: AbortSignal): Promise<void> {
    return waitFor(
      (wake) => {
        this.#set.add(wake);
        return () => this.#set.delete(wake);
      },
      ms,
      signal,
    );
  }
  /** Whether anyone waits. */
  get empty(): boolean {
    return this.#set.size === 0;
  }
  /** Wakes every waiter. */
  wake(): void {
    for (const w of [...this.#set]) w();
  }
}

/** Locks of one mount, in memory. */
export class LocalLocks implements LockManager {
  #flocks = new Map<Ino, Map<bigint, number>>();
  #posix = new Map<Ino, Range[]>();
  #waiters = new Map<Ino, Waiters>();

  #w(ino: Ino): Waiters {
    let w = this.#waiters.get(ino);
    if (!w) this.#waiters.set(ino, w = new Waiters());
    return w;
  }

  async flock(ino: Ino, owner: bigint, op: number, options?: LockWaitOptions): Promise<void> {
    const kind = op & (LOCK_SH | LOCK_EX | LOCK_UN);
    if (kind === LOCK_UN) return await this.releaseFlock(ino, owner);
    if (kind !== LOCK_SH && kind !== LOCK_EX) throw new FsError(Errno.EINVAL);
    for (;;) {
      let held = this.#flocks.get(ino);
      if (!held) this.#flocks.set(ino, held = new Map());
      let conflict = false;
      for (const [o, t] of held) {
        if (o !== owner && (kind === LOCK_EX || t === LOCK_EX)) conflict = true;
      }
      if (!conflict) {
        held.set(owner, kind);
        if (kind === LOCK_SH) this.#w(ino).wake(); // a downgrade may unblock others
        return;
      }
      if (op & LOCK_NB) throw new FsError(Errno.EAGAIN);
      // A conversion drops the old lock while waiting, as Linux does.
      if (held.delete(owner)) this.#w(ino).wake();
      await this.#w(ino).wait(options?.interrupted && INTERRUPT_POLL_MS, options?.signal);
      checkInterrupted(options);
    }
  }

  releaseFlock(ino: Ino, owner: bigint): Promise<void> {
    const held = this.#flocks.get(ino);
    if (held?.delete(owner)) {
      if (held.size === 0) this.#flocks.delete(ino);
      this.#w(ino).wake();
    }
    return Promise.resolve();
  }

  #conflict(ino: Ino, owner: bigint, lock: PosixLock): Range | undefined {
    for (const r of this.#posix.get(ino) ?? []) {
      if (r.owner === owner) continue;
      if (r.end < lock.start || r.start > lock.end) continue;
      if (r.type === F_WRLCK || lock.type === F_WRLCK) return r;
    }
    return undefined;
  }

  getlk(ino: Ino, owner: bigint, lock: PosixLock): Promise<PosixLock> {
    const r = this.#conflict(ino, owner, lock);
    if (!r) return Promise.resolve({ ...lock, type: F_UNLCK });
    return Promise.resolve({ type: r.type, start: r.start, end: r.end, pid: r.pid });
  }

  async setlk(
    ino: Ino,
    owner: bigint,
    lock: PosixLock,
    wait: boolean,
    options?: LockWaitOptions,
  ): Promise<void> {
    if (lock.start < 0 || lock.end < lock.start) throw new FsError(Errno.EINVAL);
    if (lock.type !== F_UNLCK && lock.type !== F_RDLCK && lock.type !== F_WRLCK) {
      throw new FsError(Errno.EINVAL);
    }
    for (;;) {
      if (lock.type === F_UNLCK || !this.#conflict(ino, owner, lock)) {
        this.#apply(ino, owner, lock);
        this.#w(ino).wake();
        return;
      }
      if (!wait) throw new FsError(Errno.EAGAIN);
      await this.#w(ino).wait(options?.interrupted && INTERRUPT_POLL_MS, options?.signal);
      checkInterrupted(options);
    }
  }

  /** Replaces `owner`'s locks in the range with `lock` (or removes them for F_UNLCK). */
  #apply(ino: Ino, owner: bigint, lock: PosixLock): void {
    const out: Range[] = [];
    for (const r of this.#posix.get(ino) ?? []) {
      if (r.owner !== owner || r.end < lock.start || r.start > lock.end) {
        out.push(r);
        continue;
      }
      if (r.start < lock.start) out.push({ ...r, end: lock.start - 1 });
      if (r.end > lock.end) out.push({ ...r, start: lock.end + 1 });
    }
    if (lock.type !== F_UNLCK) {
      let add: Range = { owner, pid: lock.pid, type: lock.type, start: lock.start, end: lock.end };
      // Merge adjacent ranges of the same owner and type.
      const merged: Range[] = [];
      for (const r of out) {
        if (
          r.owner === owner && r.type === add.type &&
          r.end + 1 >= add.start && add.end + 1 >= r.start
        ) {
          add = { ...add, start: Math.min(r.start, add.start), end: Math.max(r.end, add.end) };
        } else merged.push(r);
      }
      merged.push(add);
      this.#posix.set(ino, merged);
    } else if (out.length) {
      this.#posix.set(ino, out);
    } else {
      this.#posix.delete(ino);
    }
  }

  releasePosix(ino: Ino, owner: bigint): Promise<void> {
    const l = this.#posix.get(ino);
    if (!l) return Promise.resolve();
    const kept = l.filter((r) => r.owner !== owner);
    if (kept.length === l.length) return Promise.resolve();
    if (kept.length) this.#posix.set(ino, kept);
    else this.#posix.delete(ino);
    this.#w(ino).wake();
    return Promise.resolve();
  }
}
