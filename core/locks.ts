/**
 * Advisory locks: `flock(2)` and POSIX record locks (`fcntl` F_GETLK/F_SETLK/F_SETLKW).
 *
 * The {@linkcode LockManager} interface is what the core calls; {@linkcode LocalLocks} keeps the
 * locks of one mount in memory. A metadata-engine-backed manager (shared by every host that mounts
 * the volume) implements the same interface later.
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

/** Where locks are kept. */
export interface LockManager {
  /** `flock`: take, convert or drop the lock of `owner` on `ino`. */
  flock(ino: Ino, owner: bigint, op: number): Promise<void>;
  /** The first lock conflicting with `lock`, or `lock` with type `F_UNLCK`. */
  getlk(ino: Ino, owner: bigint, lock: PosixLock): PosixLock;
  /** Sets or clears a POSIX lock range. */
  setlk(ino: Ino, owner: bigint, lock: PosixLock, wait: boolean): Promise<void>;
  /** Drops every POSIX lock of `owner` on `ino` (close). */
  releasePosix(ino: Ino, owner: bigint): void;
  /** Drops the flock of `owner` on `ino` (last close of the open file description). */
  releaseFlock(ino: Ino, owner: bigint): void;
}

interface Range {
  owner: bigint;
  pid: number;
  type: number;
  start: number;
  end: number;
}

class Waiters {
  #list: Array<() => void> = [];
  wait(): Promise<void> {
    return new Promise((r) => this.#list.push(r));
  }
  wake(): void {
    const l = this.#list;
    this.#list = [];
    for (const r of l) r();
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

  async flock(ino: Ino, owner: bigint, op: number): Promise<void> {
    const kind = op & (LOCK_SH | LOCK_EX | LOCK_UN);
    if (kind === LOCK_UN) return this.releaseFlock(ino, owner);
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
      await this.#w(ino).wait();
    }
  }

  releaseFlock(ino: Ino, owner: bigint): void {
    const held = this.#flocks.get(ino);
    if (held?.delete(owner)) {
      if (held.size === 0) this.#flocks.delete(ino);
      this.#w(ino).wake();
    }
  }

  #conflict(ino: Ino, owner: bigint, lock: PosixLock): Range | undefined {
    for (const r of this.#posix.get(ino) ?? []) {
      if (r.owner === owner) continue;
      if (r.end < lock.start || r.start > lock.end) continue;
      if (r.type === F_WRLCK || lock.type === F_WRLCK) return r;
    }
    return undefined;
  }

  getlk(ino: Ino, owner: bigint, lock: PosixLock): PosixLock {
    const r = this.#conflict(ino, owner, lock);
    if (!r) return { ...lock, type: F_UNLCK };
    return { type: r.type, start: r.start, end: r.end, pid: r.pid };
  }

  async setlk(ino: Ino, owner: bigint, lock: PosixLock, wait: boolean): Promise<void> {
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
      await this.#w(ino).wait();
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

  releasePosix(ino: Ino, owner: bigint): void {
    const l = this.#posix.get(ino);
    if (!l) return;
    const kept = l.filter((r) => r.owner !== owner);
    if (kept.length === l.length) return;
    if (kept.length) this.#posix.set(ino, kept);
    else this.#posix.delete(ino);
    this.#w(ino).wake();
  }
}
