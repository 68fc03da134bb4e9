/**
 * Mount sessions: each mount of a volume registers a session in the metadata engine
 * (`S<sid>`, `core/meta/sessions.ts`) with its host, pid, mountpoint, version and start time,
 * and beats a heartbeat in it every fifth of its timeout (default 60 s, as JuiceFS). Every live
 * mount, at each beat, looks for sessions whose heartbeat is older than their timeout and cleans
 * them up: it marks the session expired, runs the cleanup hooks ({@linkcode Session.onCleanup}:
 * the `Vfs` deletes the files the dead mount held open after their unlink; a lock manager
 * releases its locks), then deletes the record. A mount that finds its own session expired or
 * gone (it was cut off, or paused, longer than its timeout) registers a new one and runs the lost
 * hooks ({@linkcode Session.onLost}) so that whatever the old session held (locks, opens) is
 * known to be lost.
 *
 * Decisions:
 * - Heartbeats are wall-clock times (ms since the epoch) of the mount's own host, compared with
 *   the cleaner's clock: hosts need synchronized clocks (NTP), as with JuiceFS; the timeout should
 *   be far larger than their skew.
 * - Each session records its own timeout, so mounts with different `--session-timeout` judge
 *   each other by the dead one's setting.
 * - Cleanup is expire, hooks, delete: an expired session never beats again, so a mount that was
 *   only slow cannot keep using what its cleaner is releasing. Hooks must be idempotent: a
 *   cleaner that dies midway leaves the session expired, and the next one runs them again.
 * - At start, a session of this host (same boot id and pid namespace) whose process is gone is
 *   cleaned at once, without waiting for its timeout: a remount after a kill -9 frees its files.
 *
 * @module
 */

import type { KvEngine } from "./kv.ts";
import { getLog } from "./log.ts";
import {
  beat,
  deleteSession,
  expireSession,
  getSession,
  listSessions,
  registerSession,
  resumeSession,
  type SessionInfo,
  type SessionRecord,
} from "./meta/sessions.ts";

export type { SessionInfo, SessionRecord };

/** The default session timeout (ms): a mount silent this long is taken for dead. */
export const DEFAULT_SESSION_TIMEOUT_MS = 60_000;

/** Cleans up what dead session `sid` held; must be idempotent. */
export type CleanupHook = (kv: KvEngine, sid: number) => Promise<void> | void;

/** Told that this mount's session `lost` was taken for dead; it now runs as `current`. */
export type LostHook = (lost: number, current: number) => Promise<void> | void;

/** Options of {@linkcode Session.register}. */
export interface SessionOptions {
  /** The mountpoint (or a label of the embedding program). */
  mountpoint: string;
  /** The SlayerFS version. */
  version: string;
  /** A mount silent this long (ms) is taken for dead (default {@linkcode DEFAULT_SESSION_TIMEOUT_MS}). */
  timeoutMs?: number;
  /** Called with errors of the background beats and cleanups (default: logged). */
  onError?: (err: unknown) => void;
}

/** A session record with its timeout, as stored by this version. */
type Stored = SessionRecord & { timeoutMs?: number };

const log = getLog("session");

/** This host's boot id and this process's pid namespace (empty when unknown). */
function bootOf(): string {
  try {
    const boot = Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim();
    return `${boot}/${Deno.readLinkSync("/proc/self/ns/pid")}`;
  } catch {
    return "";
  }
}

/** Whether process `pid` of this host and namespace runs (a zombie does not). */
function processAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/s.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

/** Whether `rec` is stale at `now`: its heartbeat is older than its timeout. */
export function isStale(rec: SessionRecord, now: number, fallbackTimeoutMs: number): boolean {
  const timeout = (rec as Stored).timeoutMs ?? fallbackTimeoutMs;
  return rec.expired === true || rec.heartbeat + timeout < now;
}

/** One mount's session. Create it with {@linkcode Session.register}. */
export class Session {
  /** The engine the session lives in. */
  readonly kv: KvEngine;
  /** A mount silent this long (ms) is taken for dead. */
  readonly timeoutMs: number;
  /** What the session says of this mount. */
  readonly info: SessionInfo;
  #id: number;
  #cleanup: CleanupHook[] = [];
  #lost: LostHook[] = [];
  #onError: (err: unknown) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | undefined;
  #closed = false;
  #cleaning = new Set<number>();

  private constructor(kv: KvEngine, id: number, info: SessionInfo, opts: SessionOptions) {
    this.kv = kv;
    this.#id = id;
    this.info = info;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
    this.#onError = opts.onError ??
      ((error) => log.warn("Session {sid}: {error}", { sid: this.#id, error }));
  }

  /** Registers a new session of this process in `kv` (call {@linkcode start} to beat it). */
  static async register(kv: KvEngine, opts: SessionOptions): Promise<Session> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw new RangeError(`Session timeout ${timeoutMs} is not positive`);
    const info: SessionInfo & { timeoutMs: number } = {
      host: Deno.hostname(),
      pid: Deno.pid,
      mountpoint: opts.mountpoint,
      version: opts.version,
      started: Date.now(),
      boot: bootOf(),
      timeoutMs,
    };
    const id = await kv.txn((tx) => registerSession(tx, info, Date.now()));
    return new Session(kv, id, info, opts);
  }

  /**
   * Continues session `id` in this process: the smooth upgrade of a mount, whose new daemon
   * keeps what the old one held under the session (locks, files open after their unlink). The
   * record must be live (not expired); it is updated with this process's pid, start and version.
   * Throws if the session is gone or expired.
   */
  static async resume(kv: KvEngine, id: number, opts: SessionOptions): Promise<Session> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
    const info: SessionInfo & { timeoutMs: number } = {
      host: Deno.hostname(),
      pid: Deno.pid,
      mountpoint: opts.mountpoint,
      version: opts.version,
      started: Date.now(),
      boot: bootOf(),
      timeoutMs,
    };
    const ok = await kv.txn((tx) => resumeSession(tx, id, info, Date.now()));
    if (!ok) throw new Error(`Session ${id} is gone or expired: it cannot be continued`);
    return new Session(kv, id, info, opts);
  }

  /** Every session record of the volume in `kv`, by id (live and stale). */
  static list(kv: KvEngine): Promise<SessionRecord[]> {
    return kv.txn((tx) => listSessions(tx), { readOnly: true });
  }

  /** The current session id (it changes when the session was lost and registered anew). */
  get id(): number {
    return this.#id;
  }

  /** How often the session beats (ms): a fifth of its timeout, at most 12 s. */
  get intervalMs(): number {
    return Math.min(12_000, Math.max(50, this.timeoutMs / 5));
  }

  /**
   * Adds a hook run for each dead session before its record goes (e.g. a lock manager's
   * `releaseSessionLocks(kv, sid)`); returns a function that removes it.
   */
  onCleanup(hook: CleanupHook): () => void {
    this.#cleanup.push(hook);
    return () => void (this.#cleanup = this.#cleanup.filter((h) => h !== hook));
  }

  /**
   * Adds a hook run when this mount finds its session taken for dead (after it registered anew);
   * returns a function that removes it.
   */
  onLost(hook: LostHook): () => void {
    this.#lost.push(hook);
    return () => void (this.#lost = this.#lost.filter((h) => h !== hook));
  }

  /**
   * Starts beating in the background (the timer does not keep the process alive), after cleaning
   * the sessions of this host whose processes are gone.
   */
  async start(): Promise<void> {
    if (this.#closed || this.#timer !== undefined) return;
    await this.cleanDeadLocal().catch(this.#onError);
    const tick = () => {
      this.#running = this.tick().catch(this.#onError).finally(() => {
        this.#running = undefined;
        if (!this.#closed) {
          const timer = this.#timer = setTimeout(tick, this.intervalMs);
          Deno.unrefTimer(timer);
        }
      });
    };
    const timer = this.#timer = setTimeout(tick, this.intervalMs);
    Deno.unrefTimer(timer);
  }

  /** One round: beat, then clean up stale sessions. */
  async tick(): Promise<void> {
    await this.beat();
    await this.cleanStale();
  }

  /**
   * Beats the heartbeat. If the session is gone or expired, registers a new one and runs the
   * lost hooks. Returns whether the session was still alive.
   */
  async beat(): Promise<boolean> {
    if (this.#closed) return true;
    const sid = this.#id;
    if (await this.kv.txn((tx) => beat(tx, sid, Date.now()))) return true;
    const id = await this.kv.txn((tx) => registerSession(tx, this.info, Date.now()));
    this.#id = id;
    log.warn(
      "Session {sid} was taken for dead (silent longer than {timeout} s): running as session " +
        "{id}; what it held (locks, files unlinked while open) may be gone",
      { sid, id, timeout: this.timeoutMs / 1000 },
    );
    for (const hook of this.#lost) {
      try {
        await hook(sid, id);
      } catch (err) {
        this.#onError(err);
      }
    }
    return false;
  }

  /** Cleans up every other session that is stale at `now`; returns their ids. */
  async cleanStale(now: number = Date.now()): Promise<number[]> {
    const recs = await Session.list(this.kv);
    const stale = recs.filter((r) => r.id !== this.#id && isStale(r, now, this.timeoutMs));
    const done: number[] = [];
    for (const rec of stale) {
      try {
        if (await this.clean(rec.id, now)) done.push(rec.id);
      } catch (err) {
        this.#onError(err); // left expired: the next round tries again
      }
    }
    return done;
  }

  /** Cleans up the sessions of this host and namespace whose processes are gone. */
  async cleanDeadLocal(): Promise<number[]> {
    if (!this.info.boot) return [];
    const recs = await Session.list(this.kv);
    const done: number[] = [];
    for (const rec of recs) {
      if (rec.id === this.#id || rec.boot !== this.info.boot || rec.host !== this.info.host) {
        continue;
      }
      if (processAlive(rec.pid)) continue;
      if (await this.clean(rec.id, Date.now(), true)) done.push(rec.id);
    }
    return done;
  }

  /**
   * Cleans up session `sid` if it is stale at `now` (or `force`): expires it, runs the cleanup
   * hooks, deletes its record. Returns whether it is gone.
   */
  async clean(sid: number, now: number = Date.now(), force = false): Promise<boolean> {
    if (sid === this.#id || this.#cleaning.has(sid)) return false;
    this.#cleaning.add(sid);
    try {
      const expired = await this.kv.txn(async (tx) => {
        const rec = await getSession(tx, sid);
        if (!rec) return false;
        const timeout = (rec as Stored).timeoutMs ?? this.timeoutMs;
        return await expireSession(tx, sid, now - timeout, force);
      });
      if (!expired) return false;
      log.info("Cleaning up dead session {sid}", { sid });
      for (const hook of this.#cleanup) await hook(this.kv, sid);
      await this.kv.txn((tx) => Promise.resolve(deleteSession(tx, sid)));
      return true;
    } finally {
      this.#cleaning.delete(sid);
    }
  }

  /** Stops beating and deletes the session's record (a clean unmount); idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#running;
    await this.kv.txn((tx) => Promise.resolve(deleteSession(tx, this.#id)));
  }
}
