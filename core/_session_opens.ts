/**
 * The opens a `Vfs` records in its session (`U<ino><sid>`, `core/meta/sessions.ts`), so that an
 * unlink on any mount keeps a file open here until its last close here, and what this mount saw
 * of each file at its last open (for close-to-open coherence, {@linkcode SeenVersions}).
 *
 * Cost: only the first open of an inode in the session writes (folded into the create's
 * transaction for a new file, into the open's attribute read otherwise); the last close's forget
 * is batched with others for up to {@linkcode FORGET_DELAY_MS} (one transaction for many files,
 * as a `tar -x` closes them), and a reopen meanwhile costs nothing. A file unlinked here while
 * open is forgotten at once at its last close, so its blocks are freed then.
 *
 * @module
 */

import type { Meta } from "./meta/mod.ts";
import type { FreedSlice } from "./meta/mod.ts";
import type { Session } from "./session.ts";
import type { Attr, Ino } from "./types.ts";

/** How long the forget of a closed file may wait for others to batch with (ms). */
export const FORGET_DELAY_MS = 100;
/** The most forgets in one transaction. */
const FORGET_BATCH = 256;
/** Inodes looked at per page when cleaning up a dead session. */
const RECLAIM_PAGE = 1000;

/** The version of a file's contents and attributes, compared across opens. */
export function versionOf(a: Attr): string {
  return `${a.size}/${a.mtime.sec}.${a.mtime.nsec}/${a.ctime.sec}.${a.ctime.nsec}`;
}

/**
 * What this mount saw of each file (its version at its last open here, or after its last change
 * here), for at most `cap` files (the oldest are forgotten, which only costs a cache drop).
 */
export class SeenVersions {
  readonly #seen = new Map<Ino, string>();
  readonly #cap: number;

  /** Remembers up to `cap` files. */
  constructor(cap = 100_000) {
    this.#cap = cap;
  }

  /** Notes `a` as seen; returns whether it is what was seen before (the kernel's pages hold). */
  opened(a: Attr): boolean {
    const v = versionOf(a);
    const same = this.#seen.get(a.ino) === v;
    this.saw(a.ino, v);
    return same;
  }

  /** Notes a change made here (the kernel's pages of it are current). */
  changedHere(a: Attr): void {
    if (this.#seen.has(a.ino)) this.saw(a.ino, versionOf(a));
  }

  /** Whether `a` differs from what this mount saw of it (another mount changed it). */
  changedElsewhere(a: Attr): boolean {
    const v = this.#seen.get(a.ino);
    return v !== undefined && v !== versionOf(a);
  }

  /** Notes version `v` of `ino`. */
  saw(ino: Ino, v: string): void {
    this.#seen.delete(ino);
    this.#seen.set(ino, v);
    if (this.#seen.size > this.#cap) this.#seen.delete(this.#seen.keys().next().value!);
  }
}

/** The opens one `Vfs` records in its session. */
export class SessionOpens {
  readonly #meta: Meta;
  readonly #session: Session;
  readonly #freeQueue: { add(freed: FreedSlice[]): void };
  readonly #onError: (err: unknown) => void;
  /** Closed here, their forget not sent yet. */
  #pending = new Set<Ino>();
  /** Being forgotten by the transaction in flight. */
  #inflight = new Set<Ino>();
  #flushing: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Records in `session` and hooks into it: a dead session's cleanup forgets its opens
   * ({@linkcode reclaim}); a loss of this one records the inodes of `open` again
   * ({@linkcode recordAgain}). `freeQueue` takes the slices freed by files deleted at a close or
   * cleanup, `onError` the errors no request can report.
   */
  constructor(
    meta: Meta,
    session: Session,
    freeQueue: { add(freed: FreedSlice[]): void },
    onError: (err: unknown) => void,
    open: { inos(): Iterable<Ino> },
  ) {
    this.#meta = meta;
    this.#session = session;
    this.#freeQueue = freeQueue;
    this.#onError = onError;
    session.onCleanup((_kv, sid) => this.reclaim(sid));
    session.onLost(() => this.recordAgain([...open.inos()]));
  }

  /** The session id new opens are recorded under. */
  get sid(): number {
    return this.#session.id;
  }

  /**
   * Fresh attributes of `ino` for an open; the first open here (`openHere` false) records it in
   * the session in the same transaction.
   */
  async open(ino: Ino, openHere: boolean): Promise<Attr> {
    if (!openHere && !this.#pending.delete(ino)) {
      if (this.#inflight.has(ino)) await this.#flushing;
      return await this.#meta.openIn(ino, this.sid);
    }
    return await this.#meta.getattr(ino);
  }

  /**
   * After the last close of `ino` here: forgets the open, at once when `now` (the file was
   * unlinked here, so it is deleted now if open nowhere else), else batched.
   */
  async closed(ino: Ino, now: boolean): Promise<void> {
    if (now) {
      this.#pending.delete(ino);
      if (this.#inflight.has(ino)) await this.#flushing;
      const { freed } = await this.#meta.forgetOpens([ino], this.sid);
      this.#freeQueue.add(freed);
      return;
    }
    this.#pending.add(ino);
    if (this.#pending.size >= FORGET_BATCH) void this.flush().catch(this.#onError);
    else if (this.#timer === undefined) {
      const timer = this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.flush().catch(this.#onError);
      }, FORGET_DELAY_MS);
      Deno.unrefTimer(timer);
    }
  }

  /** Sends every pending forget. */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#pending.size) return;
    const inos = [...this.#pending].slice(0, FORGET_BATCH);
    for (const ino of inos) {
      this.#pending.delete(ino);
      this.#inflight.add(ino);
    }
    const sid = this.sid;
    this.#flushing = (async () => {
      try {
        const { freed } = await this.#meta.forgetOpens(inos, sid);
        this.#freeQueue.add(freed);
      } finally {
        this.#inflight.clear();
        this.#flushing = undefined;
      }
    })();
    await this.#flushing;
    if (this.#pending.size) await this.flush();
  }

  /**
   * Cleanup hook for dead session `sid`: forgets its opens, deleting the files it held open after
   * their unlink (unless open elsewhere).
   */
  async reclaim(sid: number): Promise<void> {
    let after: string | undefined;
    do {
      const page = await this.#meta.opensOf(sid, after, RECLAIM_PAGE);
      for (let i = 0; i < page.inos.length; i += FORGET_BATCH) {
        const { freed } = await this.#meta.forgetOpens(page.inos.slice(i, i + FORGET_BATCH), sid);
        this.#freeQueue.add(freed);
      }
      after = page.next;
    } while (after !== undefined);
  }

  /**
   * Lost hook: the old session's opens were (or are being) forgotten by a cleaner; records the
   * inodes still open here, and still there, under the new session.
   */
  async recordAgain(open: Iterable<Ino>): Promise<void> {
    this.#pending.clear();
    for (const ino of open) {
      await this.#meta.openIn(ino, this.sid).catch(() => {}); // gone: nothing to keep
    }
  }

  /** Sends the pending forgets and forgets every open still recorded (at unmount). */
  async close(open: Iterable<Ino>): Promise<void> {
    clearTimeout(this.#timer);
    for (const ino of open) this.#pending.add(ino);
    await this.flush();
    await this.reclaim(this.sid); // any left by a failed request
  }
}
