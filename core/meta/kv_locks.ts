/**
 * `KvLocks`: `flock(2)` and POSIX record locks kept in the metadata engine, so every mount of a
 * volume (on any host) sees and respects the locks of the others.
 *
 * Decisions:
 * - One record per holder and inode (`L<ino:8>F…`, `L<ino:8>P…` in `keys.ts`); a holder is the
 *   mount's session id and the kernel's lock owner, so owners of different mounts never mix. A
 *   request reads every record of the inode (one prefix scan) and writes its own record in the
 *   same transaction, so two mounts can never both be granted conflicting locks.
 * - Each kind of record of an inode has a guard key (the prefix's own key, present while records
 *   are): every change reads and writes it, so two changes always conflict on one key even on an
 *   engine that checks conflicts only on the keys read, not on what a scan could have returned.
 * - The mount remembers which records it holds. A release of nothing (every `close` sends one)
 *   and an unlock of nothing cost no transaction; neither does a clean unmount with no locks.
 * - A request that must wait retries when this mount releases a lock on the inode (at once) and
 *   otherwise polls, 10 ms after the first conflict and doubling up to `maxPollMs` (200 ms), so a
 *   lock released by another mount is taken at most that long after. A FUSE interrupt (the
 *   waiting process got a signal) ends the wait with `EINTR` within a poll; so do an aborted
 *   `signal` and an unmount.
 * - {@linkcode KvLocks.getlk} reports the pid of a lock of another mount as 0: that pid means nothing on
 *   this host (the kernel would even translate it to an unrelated local process). JuiceFS does
 *   the same.
 * - {@linkcode releaseSessionLocks} deletes every record of a dead session (another mount's
 *   cleanup calls it); the dead mount, if it comes back, learns through
 *   {@linkcode KvLocks.markLost} and fails its holders' later requests with `ENOLCK`.
 *
 * @module
 */

import { Errno, FsError } from "../errno.ts";
import type { KvEngine, KvPair, KvTxn } from "../kv.ts";
import {
  checkInterrupted,
  type LockManager,
  type LockWaitOptions,
  type LostLock,
  Waiters,
} from "../locks.ts";
import { getLog } from "../log.ts";
import {
  F_RDLCK,
  F_UNLCK,
  F_WRLCK,
  type Ino,
  LOCK_EX,
  LOCK_NB,
  LOCK_SH,
  LOCK_UN,
} from "../types.ts";
import type { PosixLock } from "../types.ts";
import {
  flockKey,
  flockPrefix,
  lockInoOf,
  lockOwnerOf,
  lockPrefix,
  lockSessionOf,
  plockKey,
  plockPrefix,
  readU32,
  u32,
} from "./keys.ts";
import { bytesToByteString, byteStringToBytes } from "../_bytes.ts";

const log = getLog("locks");

const LOST = "This mount's locks were lost (its session expired)";

/** One range of a POSIX lock record. */
export interface LockRange {
  /** `F_RDLCK` or `F_WRLCK`. */
  type: number;
  /** The first byte. */
  start: number;
  /** The last byte (inclusive), `Infinity` for "to end of file". */
  end: number;
}

/** A POSIX lock record: the pid that last set it and the owner's ranges, sorted by start. */
interface PosixRecord {
  pid: number;
  ranges: LockRange[];
}

const F64 = new DataView(new ArrayBuffer(8));
const f64 = (n: number): string => {
  F64.setFloat64(0, n);
  let s = "";
  for (let i = 0; i < 8; i++) s += String.fromCharCode(F64.getUint8(i));
  return s;
};
const readF64 = (s: string, at: number): number => {
  for (let i = 0; i < 8; i++) F64.setUint8(i, s.charCodeAt(at + i));
  return F64.getFloat64(0);
};

const GUARD = new Uint8Array([1]);

/**
 * The lock records under `prefix` (one inode's flocks or POSIX locks), read with the prefix's own
 * key, the guard: every transaction that changes a record there writes the guard too (see
 * {@linkcode setGuard}), so two changes of one inode's locks always conflict on one key, even on an
 * engine whose conflict checks see only the keys read, not the keys a scan could have returned.
 */
async function readRecords(tx: KvTxn, prefix: string): Promise<KvPair[]> {
  await tx.get(prefix);
  return (await tx.scan(prefix)).filter(([k]) => k !== prefix);
}

/** Writes the guard of `prefix`: present while records remain there, deleted with the last. */
function setGuard(tx: KvTxn, prefix: string, records: number): void {
  if (records > 0) tx.set(prefix, GUARD);
  else tx.delete(prefix);
}

/** Deletes lock records (`keys`) and settles the guards of their inodes. */
async function deleteRecords(tx: KvTxn, keys: readonly string[]): Promise<void> {
  const prefixes = new Set<string>();
  for (const k of keys) {
    tx.delete(k);
    prefixes.add(k.slice(0, 10));
  }
  for (const p of prefixes) {
    await tx.get(p);
    const left = await tx.scan(p, { keysOnly: true, limit: 2 });
    setGuard(tx, p, left.filter(([k]) => k !== p).length);
  }
}

/** Encodes a flock record: its type (`LOCK_SH` 1, `LOCK_EX` 2) and pid. */
export const encodeFlock = (kind: number, pid: number): Uint8Array =>
  byteStringToBytes(String.fromCharCode(kind === LOCK_EX ? 2 : 1) + u32(pid >>> 0));

/** The type (`LOCK_SH` or `LOCK_EX`) of a flock record. */
const flockKindOf = (v: Uint8Array): number => v[0] === 2 ? LOCK_EX : LOCK_SH;

/** Encodes a POSIX lock record. */
export function encodePlock(r: PosixRecord): Uint8Array {
  let s = u32(r.pid >>> 0);
  for (const g of r.ranges) s += String.fromCharCode(g.type) + f64(g.start) + f64(g.end);
  return byteStringToBytes(s);
}

/** Decodes a POSIX lock record. */
export function decodePlock(v: Uint8Array): PosixRecord {
  const s = bytesToByteString(v);
  const ranges: LockRange[] = [];
  for (let at = 4; at + 17 <= s.length; at += 17) {
    ranges.push({ type: s.charCodeAt(at), start: readF64(s, at + 1), end: readF64(s, at + 9) });
  }
  return { pid: readU32(s, 0), ranges };
}

/**
 * One owner's ranges after setting `lock` over them (`F_UNLCK` removes): the parts outside it
 * stay, ranges of the same type that touch merge, sorted by start.
 */
export function setRange(ranges: readonly LockRange[], lock: LockRange): LockRange[] {
  const out: LockRange[] = [];
  for (const r of ranges) {
    if (r.end < lock.start || r.start > lock.end) {
      out.push(r);
      continue;
    }
    if (r.start < lock.start) out.push({ ...r, end: lock.start - 1 });
    if (r.end > lock.end) out.push({ ...r, start: lock.end + 1 });
  }
  if (lock.type !== F_UNLCK) {
    let add = { type: lock.type, start: lock.start, end: lock.end };
    const kept: LockRange[] = [];
    for (const r of out) {
      if (r.type === add.type && r.end + 1 >= add.start && add.end + 1 >= r.start) {
        add = { ...add, start: Math.min(r.start, add.start), end: Math.max(r.end, add.end) };
      } else kept.push(r);
    }
    kept.push(add);
    return kept.sort((a, b) => a.start - b.start);
  }
  return out.sort((a, b) => a.start - b.start);
}

const overlaps = (a: LockRange, b: LockRange) => a.start <= b.end && b.start <= a.end;
const conflicts = (a: LockRange, b: LockRange) =>
  overlaps(a, b) && (a.type === F_WRLCK || b.type === F_WRLCK);

/** Options of {@linkcode KvLocks}. */
export interface KvLocksOptions {
  /** This mount's session id (an integer below 2^53), stored with every lock it takes. */
  sessionId: number;
  /** The longest pause between two checks of a lock held by another mount (default 200 ms). */
  maxPollMs?: number;
}

/** What this mount holds: a record key and what it locks. */
interface Held {
  ino: Ino;
  owner: bigint;
  kind: "flock" | "posix";
}

/** Locks kept in the metadata engine, shared by every mount of the volume (module notes). */
export class KvLocks implements LockManager {
  readonly #kv: KvEngine;
  #sid: number;
  readonly #maxPollMs: number;
  /** Record keys this mount holds. */
  readonly #held = new Map<string, Held>();
  /** Record keys whose locks were lost (markLost), until their holder releases. */
  readonly #lost = new Set<string>();
  /** Requests of this mount waiting on an inode. */
  readonly #waiters = new Map<Ino, Waiters>();
  /** The tail of the requests on each record key: one request per record at a time. */
  readonly #queues = new Map<string, Promise<unknown>>();
  /** Bumped by markLost: a request that began before it must not keep what it took. */
  #epoch = 0;
  /** markLost's deletion of the records left under the lost session; requests wait for it. */
  #cleanup: Promise<void> | undefined;
  #closed = false;

  /** A lock manager for the mount of session `options.sessionId` over `kv`. */
  constructor(kv: KvEngine, options: KvLocksOptions) {
    if (!Number.isSafeInteger(options.sessionId) || options.sessionId < 0) {
      throw new RangeError(`Invalid session id ${options.sessionId}`);
    }
    this.#kv = kv;
    this.#sid = options.sessionId;
    this.#maxPollMs = options.maxPollMs ?? 200;
  }

  /** This mount's session id. */
  get sessionId(): number {
    return this.#sid;
  }

  /** How many lock records this mount holds. */
  get heldCount(): number {
    return this.#held.size;
  }

  /**
   * Takes on the lock records stored under this mount's session by an earlier process of it (a
   * smooth upgrade continues the session): they are released as this mount's own. Returns how
   * many.
   */
  async adopt(): Promise<number> {
    const sid = this.#sid;
    const pairs = await this.#kv.txn((tx) => tx.scan(lockPrefix, { keysOnly: true }), {
      readOnly: true,
    });
    let n = 0;
    for (const [k] of pairs) {
      if (k.length <= 10 || lockSessionOf(k) !== sid) continue;
      const kind = k[9] === "F" ? "flock" as const : "posix" as const;
      this.#held.set(k, { ino: lockInoOf(k), owner: lockOwnerOf(k), kind });
      n++;
    }
    return n;
  }

  /** Runs `fn` after the earlier requests on record `key` of this mount. */
  #serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#queues.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.#queues.set(key, tail);
    tail.then(() => {
      if (this.#queues.get(key) === tail) this.#queues.delete(key);
    });
    return run;
  }

  #wake(ino: Ino): void {
    this.#waiters.get(ino)?.wake();
  }

  /** Waits for a release on `ino` by this mount, or the next poll (attempt `n`). */
  async #pause(ino: Ino, n: number, options: LockWaitOptions | undefined): Promise<void> {
    let w = this.#waiters.get(ino);
    if (!w) this.#waiters.set(ino, w = new Waiters());
    const ms = Math.min(this.#maxPollMs, 10 * 2 ** Math.min(n, 16)) * (0.75 + Math.random() / 4);
    try {
      await w.wait(ms, options?.signal);
    } finally {
      if (w.empty && this.#waiters.get(ino) === w) this.#waiters.delete(ino);
    }
    if (this.#closed) throw new FsError(Errno.EINTR, "Unmounted while waiting for a lock");
    checkInterrupted(options);
  }

  #check(key: string): void {
    if (this.#closed) throw new FsError(Errno.EINTR, "The volume is unmounting");
    if (this.#lost.has(key)) {
      throw new FsError(Errno.ENOLCK, LOST);
    }
  }

  /**
   * Runs the transaction of one request on record `key`, then records what this mount holds
   * (`holds` from the transaction's result). A request that began before a markLost gives up
   * what it took and fails with `ENOLCK`.
   */
  async #txn<T>(
    key: string,
    held: Held,
    fn: (tx: KvTxn) => Promise<T>,
    holds: (result: T) => boolean | undefined,
  ): Promise<T> {
    const epoch = this.#epoch;
    const result = await this.#kv.txn(fn);
    const now = holds(result);
    if (epoch !== this.#epoch) {
      if (now) await this.#kv.txn((tx) => deleteRecords(tx, [key]));
      throw new FsError(Errno.ENOLCK, LOST);
    }
    if (now === true) this.#held.set(key, held);
    else if (now === false) this.#held.delete(key);
    return result;
  }

  async flock(ino: Ino, owner: bigint, op: number, options?: LockWaitOptions): Promise<void> {
    const kind = op & (LOCK_SH | LOCK_EX | LOCK_UN);
    if (kind === LOCK_UN) return await this.#releaseFlock(ino, owner, true);
    if (kind !== LOCK_SH && kind !== LOCK_EX) throw new FsError(Errno.EINVAL);
    if (this.#cleanup) await this.#cleanup;
    const key = flockKey(ino, this.#sid, owner);
    const value = encodeFlock(kind, options?.pid ?? 0);
    const held: Held = { ino, owner, kind: "flock" };
    for (let n = 0;; n++) {
      const r = await this.#serial(key, () => {
        this.#check(key);
        return this.#txn(key, held, async (tx) => {
          let conflict = false;
          let mine: Uint8Array | undefined;
          const prefix = flockPrefix(ino);
          const records = await readRecords(tx, prefix);
          for (const [k, v] of records) {
            if (k === key) mine = v;
            else if (kind === LOCK_EX || flockKindOf(v) === LOCK_EX) conflict = true;
          }
          const others = records.length - (mine ? 1 : 0);
          if (!conflict) {
            if (!mine || flockKindOf(mine) !== kind) {
              tx.set(key, value);
              setGuard(tx, prefix, others + 1);
            }
            return { granted: true, dropped: mine !== undefined && flockKindOf(mine) === LOCK_EX };
          }
          // A conversion that must wait drops the old lock while it waits, as Linux does.
          if (mine && !(op & LOCK_NB)) {
            tx.delete(key);
            setGuard(tx, prefix, others);
            return { granted: false, dropped: true };
          }
          return { granted: false, dropped: false };
        }, (r) => r.granted ? true : r.dropped ? false : undefined);
      });
      if (r.dropped) this.#wake(ino); // a downgrade or a dropped lock may unblock others
      if (r.granted) return;
      if (op & LOCK_NB) throw new FsError(Errno.EAGAIN);
      await this.#pause(ino, n, options);
    }
  }

  releaseFlock(ino: Ino, owner: bigint): Promise<void> {
    return this.#releaseFlock(ino, owner, false);
  }

  #releaseFlock(ino: Ino, owner: bigint, explicit: boolean): Promise<void> {
    return this.#release(flockKey(ino, this.#sid, owner), ino, explicit);
  }

  releasePosix(ino: Ino, owner: bigint): Promise<void> {
    return this.#release(plockKey(ino, this.#sid, owner), ino, false);
  }

  /** Deletes record `key` if this mount holds it; an `explicit` unlock of a lost lock fails. */
  #release(key: string, ino: Ino, explicit: boolean): Promise<void> {
    if (this.#lost.has(key)) {
      if (explicit) return Promise.reject(new FsError(Errno.ENOLCK, LOST));
      this.#lost.delete(key);
    }
    if (!this.#held.has(key)) return Promise.resolve();
    return this.#serial(key, async () => {
      const held = this.#held.get(key);
      if (!held) return;
      await this.#txn(key, held, (tx) => deleteRecords(tx, [key]), () => false);
      this.#wake(ino);
    });
  }

  async getlk(ino: Ino, owner: bigint, lock: PosixLock): Promise<PosixLock> {
    const key = plockKey(ino, this.#sid, owner);
    const sidPart = key.slice(10, 18);
    const prefix = plockPrefix(ino);
    const records = await this.#kv.txn((tx) => tx.scan(prefix), { readOnly: true });
    for (const [k, v] of records) {
      if (k === key || k === prefix) continue;
      const rec = decodePlock(v);
      for (const r of rec.ranges) {
        if (!conflicts(r, lock)) continue;
        // Another mount's pid means nothing here (module notes).
        const pid = k.slice(10, 18) === sidPart ? rec.pid : 0;
        return { type: r.type, start: r.start, end: r.end, pid };
      }
    }
    return { ...lock, type: F_UNLCK };
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
    if (this.#cleanup) await this.#cleanup;
    const key = plockKey(ino, this.#sid, owner);
    if (lock.type === F_UNLCK && !this.#held.has(key) && !this.#lost.has(key)) return;
    const held: Held = { ino, owner, kind: "posix" };
    for (let n = 0;; n++) {
      const granted = await this.#serial(key, () => {
        this.#check(key);
        if (lock.type === F_UNLCK && !this.#held.has(key)) return Promise.resolve(true);
        return this.#txn(key, held, async (tx) => {
          let mine: PosixRecord | undefined;
          const prefix = plockPrefix(ino);
          const records = await readRecords(tx, prefix);
          for (const [k, v] of records) {
            const rec = decodePlock(v);
            if (k === key) mine = rec;
            else if (lock.type !== F_UNLCK && rec.ranges.some((r) => conflicts(r, lock))) {
              return undefined;
            }
          }
          const ranges = setRange(mine?.ranges ?? [], lock);
          const others = records.length - (mine ? 1 : 0);
          if (ranges.length) tx.set(key, encodePlock({ pid: lock.pid, ranges }));
          else if (mine) tx.delete(key);
          if (ranges.length || mine) setGuard(tx, prefix, others + (ranges.length ? 1 : 0));
          return ranges.length > 0;
        }, (r) => r);
      });
      if (granted !== undefined) {
        this.#wake(ino); // an unlock or a downgrade may unblock others
        return;
      }
      if (!wait) throw new FsError(Errno.EAGAIN);
      await this.#pause(ino, n, options);
    }
  }

  /**
   * This mount's session was cleaned up by another mount, which deleted its lock records (see
   * {@linkcode releaseSessionLocks}): forgets every lock this mount held and returns them; the
   * holders' later lock and unlock requests fail with `ENOLCK` until they release (close).
   * Records of the lost session still there (written after the cleanup, or when no cleanup took
   * place) are deleted before the next request goes on.
   * `sessionId` replaces the session id from here on when the mount registered a new session.
   */
  markLost(sessionId?: number): LostLock[] {
    const lost: LostLock[] = [];
    for (const [key, h] of this.#held) {
      this.#lost.add(key);
      lost.push({ ...h });
    }
    this.#held.clear();
    this.#epoch++;
    // Records this mount wrote after the cleanup that took its locks would stay forever: delete
    // whatever is left under the lost session before the next request.
    const old = this.#sid;
    const prev = this.#cleanup;
    const cleanup = (async () => {
      await prev;
      await releaseSessionLocks(this.#kv, old).catch((error) =>
        log.error("Deleting the lost locks failed: {error}", { error })
      );
    })();
    this.#cleanup = cleanup;
    cleanup.then(() => {
      if (this.#cleanup === cleanup) this.#cleanup = undefined;
    });
    if (sessionId !== undefined) this.#sid = sessionId;
    if (lost.length) {
      log.warn("{count} locks lost: this mount's session expired", { count: lost.length });
    }
    for (const w of this.#waiters.values()) w.wake();
    return lost;
  }

  /** Deletes every lock record this mount holds (a clean unmount); idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#cleanup;
    for (const w of this.#waiters.values()) w.wake();
    const keys = [...this.#held.keys()];
    this.#held.clear();
    for (let i = 0; i < keys.length; i += 256) {
      const part = keys.slice(i, i + 256);
      await this.#kv.txn((tx) => deleteRecords(tx, part));
    }
  }
}

/**
 * Deletes every lock record of session `sid` (a dead mount's), in transactions of at most
 * `batch` records; returns how many it deleted. Safe to run while that session's mount is still
 * alive but cut off: when it comes back it must call {@linkcode KvLocks.markLost}.
 */
export async function releaseSessionLocks(kv: KvEngine, sid: number, batch = 512): Promise<number> {
  let deleted = 0;
  let after: string | undefined;
  for (;;) {
    const page = await kv.txn(async (tx) => {
      const keys = await tx.scan(lockPrefix, {
        keysOnly: true,
        limit: batch,
        ...(after !== undefined ? { startAfter: after } : {}),
      });
      const mine = keys.map(([k]) => k).filter((k) => k.length > 10 && lockSessionOf(k) === sid);
      await deleteRecords(tx, mine);
      return { last: keys.at(-1)?.[0], full: keys.length === batch, n: mine.length };
    });
    deleted += page.n;
    if (!page.full || page.last === undefined) return deleted;
    after = page.last;
  }
}

/** Every lock record of the volume, for tools: inode, session, kind. */
export async function listLocks(
  kv: KvEngine,
): Promise<Array<{ ino: Ino; sessionId: number; kind: "flock" | "posix" }>> {
  const pairs = await kv.txn((tx) => tx.scan(lockPrefix, { keysOnly: true }), { readOnly: true });
  return pairs.filter(([k]) => k.length > 10).map(([k]) => ({
    ino: lockInoOf(k),
    sessionId: lockSessionOf(k),
    kind: k[9] === "F" ? "flock" as const : "posix" as const,
  }));
}
