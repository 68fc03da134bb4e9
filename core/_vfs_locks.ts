/**
 * The lock requests of the {@linkcode Vfs}: a {@linkcode LockManager} plus the fence of handles
 * whose locks were lost.
 *
 * When a mount learns that its session was cleaned up by another mount (`markLost`), every lock
 * it held is gone and may already be held elsewhere. Each open handle through which one of those
 * locks was taken is then fenced until it is closed: its writes, `fsync`s, `fallocate`s and
 * `copy_file_range`s into it fail
 * with `EIO` (what the Linux NFS client returns for I/O under a lost lock: the data may no longer
 * be written safely) and its lock requests, unlocks included, with `ENOLCK` (the lock table
 * lost the lock). Handles that never locked anything go on as before.
 *
 * @module
 */

import { Errno, FsError } from "./errno.ts";
import type { LockManager, LostLock } from "./locks.ts";
import { getLog } from "./log.ts";
import { type Ctx, F_UNLCK, type Fh, type Ino, LOCK_UN, type PosixLock } from "./types.ts";

const log = getLog("locks");

const holderId = (kind: LostLock["kind"], ino: Ino, owner: bigint) => `${kind}:${ino}:${owner}`;

/** Lock requests through handles, and the fence of handles whose locks were lost. */
export class HandleLocks {
  /** Where the locks live. */
  readonly manager: LockManager;
  /** The holders each handle took a lock for (`holderId`). */
  readonly #taken = new Map<Fh, Set<string>>();
  /** Handles whose locks were lost: fenced until closed. */
  readonly #fenced = new Set<Fh>();

  /** Requests over `manager`. */
  constructor(manager: LockManager) {
    this.manager = manager;
  }

  #took(fh: Fh, kind: LostLock["kind"], ino: Ino, owner: bigint): void {
    let s = this.#taken.get(fh);
    if (!s) this.#taken.set(fh, s = new Set());
    s.add(holderId(kind, ino, owner));
  }

  #lockable(fh: Fh): void {
    if (this.#fenced.has(fh)) {
      throw new FsError(Errno.ENOLCK, "The locks of this file were lost (session expired)");
    }
  }

  /** Fails with `EIO` if `fh` is fenced: its data may no longer be written safely. */
  writable(fh: Fh): void {
    if (this.#fenced.has(fh)) {
      throw new FsError(Errno.EIO, "The locks of this file were lost (session expired)");
    }
  }

  /** `fcntl(F_GETLK)`. */
  getlk(ino: Ino, owner: bigint, lock: PosixLock): Promise<PosixLock> {
    return this.manager.getlk(ino, owner, lock);
  }

  /** `fcntl(F_SETLK/F_SETLKW)` through handle `fh`. */
  async setlk(
    ctx: Ctx,
    ino: Ino,
    fh: Fh,
    owner: bigint,
    lock: PosixLock,
    wait: boolean,
  ): Promise<void> {
    this.#lockable(fh);
    const opts = ctx.interrupted ? { interrupted: ctx.interrupted.bind(ctx) } : {};
    await this.manager.setlk(ino, owner, lock, wait, opts);
    if (lock.type !== F_UNLCK) this.#took(fh, "posix", ino, owner);
  }

  /** `flock(2)` through handle `fh`. */
  async flock(ctx: Ctx, ino: Ino, fh: Fh, owner: bigint, op: number): Promise<void> {
    this.#lockable(fh);
    await this.manager.flock(ino, owner, op, {
      pid: ctx.pid,
      ...(ctx.interrupted ? { interrupted: ctx.interrupted.bind(ctx) } : {}),
    });
    if ((op & LOCK_UN) === 0) this.#took(fh, "flock", ino, owner);
  }

  /** A close (FUSE flush) by `owner`: its POSIX locks on `ino` go. */
  flush(ino: Ino, owner: bigint): Promise<void> {
    return this.manager.releasePosix(ino, owner);
  }

  /** The last close of handle `fh`: forgets it; with `flockRelease`, drops its flock. */
  async release(ino: Ino, fh: Fh, owner: bigint, flockRelease: boolean): Promise<void> {
    this.#taken.delete(fh);
    this.#fenced.delete(fh);
    if (flockRelease) await this.manager.releaseFlock(ino, owner);
  }

  /**
   * Every lock of this mount was lost (see {@linkcode LockManager.markLost}): fences the handles
   * that took them; `sessionId`, if given, is the mount's new session. Returns how many handles
   * are fenced.
   */
  lost(sessionId?: number): number {
    const lost = this.manager.markLost?.(sessionId) ?? [];
    const ids = new Set(lost.map((l) => holderId(l.kind, l.ino, l.owner)));
    for (const [fh, s] of this.#taken) {
      for (const id of s) {
        if (ids.has(id)) {
          this.#fenced.add(fh);
          break;
        }
      }
    }
    if (this.#fenced.size) {
      log.warn("{handles} open files lost their locks: their writes fail with EIO until closed", {
        handles: this.#fenced.size,
      });
    }
    return this.#fenced.size;
  }
}
