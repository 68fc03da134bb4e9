/**
 * The typed adapter: a `struct fuse_lowlevel_ops` table whose callbacks drive an
 * {@linkcode FsOps}.
 *
 * Every slot but `init` comes from the operation table in `_ops.ts`, and every request runs
 * through one dispatcher here: the entry copies what it needs out of the request (names, write
 * data, `fi` fields; those pointers die when the callback returns) and starts its `FsOps` method,
 * and the callback returns at once. The reply is sent when the promise settles, so requests run
 * concurrently. Every request gets exactly one reply: a value becomes the entry's `fuse_reply_*`,
 * an {@linkcode FsError} becomes `fuse_reply_err(errno)`, anything else `EIO`, and a missing
 * method `ENOSYS` (logged once per operation). `forget` and `forget_multi` answer
 * `fuse_reply_none`.
 *
 * A request that has not settled `deadlineMs` after it arrived (60 s by default; lock waits
 * excepted) is answered `EIO` within a tenth of that (at most 1 s) after it: however the store
 * retries, an application waits at most about that long. Its work goes on, and its late result is
 * dropped. (The tick leaves the block layer, which fails a fetch at the deadline itself, time to
 * give the error that names the block.)
 *
 * Every `EIO` or `ENOSPC` that reaches the application is logged as one error line (the
 * operation, the inode, the error with its cause), at most one per operation per second; the
 * next line counts those left out.
 *
 * All replies are made on the JS thread from small scratch buffers that C copies during the call;
 * memory C keeps (the ops table, the readdir buffer) comes from libc `malloc`.
 *
 * @module
 */

import { Errno, errnoName, toErrno } from "../core/errno.ts";
import type { FsOps } from "../core/fs_ops.ts";
import type { LibC } from "../core/libc.ts";
import { getLog } from "../core/log.ts";
import { type AnyNoReplyOp, type AnyRequestOp, OPERATIONS, type OpHost, type Req } from "./_ops.ts";
import { DirBuffer, readCtx, ReplyStructs } from "./_structs.ts";
import { CONN_INFO, FUSE_CAP, type FuseLib, OPS_SIZE, OPS_SLOT } from "./libfuse.ts";
import { type InitInfo, readInitInfo } from "./_takeover.ts";

const log = getLog("fuse");

/** Options of the adapter (the caching and capability choices of a mount). */
export interface AdapterOptions {
  /** Seconds the kernel may cache attributes (default 1). */
  attrTimeout?: number;
  /** Seconds the kernel may cache a name → inode entry (default 1). */
  entryTimeout?: number;
  /** Seconds the kernel may cache a failed lookup (default `entryTimeout`; 0 disables). */
  negativeTimeout?: number;
  /** Ask for `FUSE_CAP_WRITEBACK_CACHE` (default false). */
  writebackCache?: boolean;
  /**
   * Send `flock(2)` to the filesystem (`FUSE_CAP_FLOCK_LOCKS`; needed for locks shared between
   * hosts). Default false: the kernel keeps flocks itself. With it, the kernel drops a flock only
   * in the RELEASE it sends after `close(2)` has returned, so a flock can outlive its close for a
   * moment — the kernel's own flocks are released inside `close(2)`.
   */
  flockLocks?: boolean;
  /** The `-o max_read=` value, if one was given (init must repeat it). */
  maxRead?: number;
  /** Make thread-safe callbacks (needed when libfuse threads call them). */
  threadSafe?: boolean;
  /** Called once the kernel's INIT request has been answered by `init`, with what it offered. */
  onInit?: (offered: InitInfo | undefined) => void;
  /**
   * Milliseconds after which a request still running is answered `EIO` (default 60,000; 0: no
   * deadline). Lock waits (`setlk` with sleep, `flock`) are exempt.
   */
  deadlineMs?: number;
  /**
   * Called for every answered request (metrics): the operation, its time in milliseconds from
   * arrival to reply, whether it failed, and the value it answered (read bytes, write count).
   */
  onOp?: OpObserver;
}

/** See {@linkcode AdapterOptions.onOp}. */
export type OpObserver = (op: string, ms: number, error: boolean, value?: unknown) => void;

/** `FUSE_NOTIFY_STORE`: the kernel's code of a page-cache store notification. */
const NOTIFY_STORE = 4;

/** The default of {@linkcode AdapterOptions.deadlineMs}. */
export const DEFAULT_DEADLINE_MS = 60_000;

/** A request under the deadline: what answering it at the deadline needs. */
interface Watched {
  req: Req;
  op: string;
  ino: unknown;
  t0: number;
}

/** Error lines of one operation: when the last was written, how many were left out since. */
interface Reported {
  at: number;
  skipped: number;
}

type Ptr = Deno.PointerValue;
/** One callback argument after `req`, untyped: the trampolines pass up to eight through. */
type A = unknown;

const MAX_READAHEAD = 1 << 20;
const MAX_BACKGROUND = 64;
const CONGESTION_THRESHOLD = 48;

/** void (*init)(void *userdata, struct fuse_conn_info *conn) */
const INIT_DEF = { parameters: ["pointer", "pointer"], result: "void" } as const;

/** Counters of one FUSE operation (see {@linkcode FuseAdapter.opStats}). */
export interface OpStat {
  /** Requests answered. */
  count: number;
  /** Requests answered with an error. */
  errors: number;
  /** Summed time from each request's arrival on the JS thread to its reply, in microseconds. */
  totalUs: number;
}

/**
 * Owns the `fuse_lowlevel_ops` table and its callbacks for one session.
 *
 * Create it, pass {@linkcode FuseAdapter.table} and {@linkcode OPS_SIZE} to `fuse_session_new`,
 * and call {@linkcode FuseAdapter.close} only after libfuse can no longer call back (after the
 * session loop ended); replies of requests still running after `close` are dropped.
 */
export class FuseAdapter {
  /** Pointer to the libc-allocated `struct fuse_lowlevel_ops`. */
  readonly table: Deno.PointerObject;

  readonly #fuse: FuseLib;
  readonly #libc: LibC;
  readonly #ops: FsOps;
  readonly #host: OpHost;
  readonly #dir: DirBuffer;
  readonly #writeback: boolean;
  readonly #flockLocks: boolean;
  readonly #maxRead: number | undefined;
  readonly #onInit: ((offered: InitInfo | undefined) => void) | undefined;
  readonly #callbacks: Deno.UnsafeCallback[] = [];
  readonly #logged = new Set<string>();
  #closed = false;
  #pending = 0;
  readonly #opStats = new Map<string, OpStat>();
  #idleWaiters: (() => void)[] = [];
  readonly #deadlineMs: number;
  /** How often requests are checked against the deadline, and the grace after it. */
  readonly #tick: number;
  /** Requests under the deadline by arrival: the first ones are due first. */
  readonly #watched = new Map<number, Watched>();
  #nextWatch = 1;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  readonly #reported = new Map<string, Reported>();
  readonly #onOp: OpObserver | undefined;

  /** The FUSE session the table serves, once created (for notifications to the kernel). */
  session: Deno.PointerObject | null = null;

  /** Builds the ops table for `ops`. */
  constructor(fuse: FuseLib, libc: LibC, ops: FsOps, options: AdapterOptions = {}) {
    this.#fuse = fuse;
    this.#libc = libc;
    this.#ops = ops;
    const attrTimeout = options.attrTimeout ?? 1;
    const entryTimeout = options.entryTimeout ?? 1;
    const structs = new ReplyStructs(attrTimeout);
    this.#dir = new DirBuffer(fuse, libc, structs, entryTimeout);
    this.#host = {
      fuse,
      libc,
      ops,
      structs,
      dir: this.#dir,
      attrTimeout,
      entryTimeout,
      negativeTimeout: options.negativeTimeout ?? entryTimeout,
      hold: (sent, bytes) => this.#hold(sent, bytes),
      invalidateAttr: (ino) => {
        // Attributes only (offset -1): no page is touched, so this cannot wait on a request.
        if (this.session) {
          this.#fuse.fuse_lowlevel_notify_inval_inode(this.session, BigInt(ino), -1n, 0n);
        }
      },
    };
    this.#writeback = options.writebackCache ?? false;
    this.#flockLocks = options.flockLocks ?? false;
    this.#maxRead = options.maxRead;
    this.#onInit = options.onInit;
    this.#onOp = options.onOp;
    this.#deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    if (!(this.#deadlineMs >= 0)) throw new RangeError(`Invalid deadline ${this.#deadlineMs} ms`);
    this.#tick = Math.max(10, Math.min(1000, this.#deadlineMs / 10));
    const table = libc.calloc(1n, BigInt(OPS_SIZE));
    if (table === null) throw new Error("Cannot allocate the fuse_lowlevel_ops table");
    this.table = table;
    this.#fill(options.threadSafe ?? false);
  }

  /** Requests started and not yet settled (one answered at its deadline may still run). */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Per operation: requests answered, errors among them, and the summed time from the request's
   * arrival on the JS thread to its reply, in microseconds (for `slayerfs status`).
   */
  opStats(): Record<string, OpStat> {
    return Object.fromEntries([...this.#opStats].map(([k, v]) => [k, { ...v }]));
  }

  #record(op: string, t0: number, error: boolean, value?: unknown): void {
    let st = this.#opStats.get(op);
    if (st === undefined) this.#opStats.set(op, st = { count: 0, errors: 0, totalUs: 0 });
    st.count++;
    if (error) st.errors++;
    const ms = performance.now() - t0;
    st.totalUs += Math.round(ms * 1000);
    this.#onOp?.(op, ms, error, value);
  }

  /** Resolves when no request is pending (or at once if none is). */
  idle(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Closes all callbacks and frees the table and buffers. Idempotent. Later completions of
   * pending requests are dropped (the session they belong to is gone).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.session = null;
    clearInterval(this.#sweeper);
    this.#watched.clear();
    for (const cb of this.#callbacks) cb.close();
    this.#callbacks.length = 0;
    this.#libc.free(this.table);
    this.#dir.free();
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  /** Lets the process exit although thread-safe callbacks stay open (for a leaked session). */
  unref(): void {
    for (const cb of this.#callbacks) cb.unref();
  }

  // ---- the table and the dispatcher -----------------------------------------------------------

  #fill(threadSafe: boolean): void {
    const slots = new BigUint64Array(
      Deno.UnsafePointerView.getArrayBuffer(this.table, OPS_SIZE),
    );
    const set = (
      slot: keyof typeof OPS_SLOT,
      definition: Deno.UnsafeCallbackDefinition,
      fn: Deno.UnsafeCallbackFunction,
    ) => {
      const cb = threadSafe
        ? Deno.UnsafeCallback.threadSafe(definition, fn)
        : new Deno.UnsafeCallback(definition, fn);
      this.#callbacks.push(cb);
      slots[OPS_SLOT[slot]] = BigInt(Deno.UnsafePointer.value(cb.pointer));
    };
    set("init", INIT_DEF, (_userdata, conn) => this.#init(conn as Ptr));
    for (const [key, op] of Object.entries(OPERATIONS)) {
      const slot = key as keyof typeof OPS_SLOT;
      if (op === undefined) continue;
      // One trampoline per slot, made once: a request allocates no closure of its own here.
      set(
        slot,
        op.def,
        "run" in op
          ? (req, a, b) => this.#noReply(slot, op, req as Req, a, b)
          : (req, a, b, c, d, e, f, g, i) =>
            this.#dispatch(slot, op, req as Req, a, b, c, d, e, f, g, i),
      );
    }
  }

  /**
   * Runs one request: ENOSYS without the method, else starts the call and replies once it
   * settles, or EIO at its deadline. A throw or rejection becomes `fuse_reply_err` (an
   * {@linkcode FsError}'s errno, otherwise EIO) unless the entry answers the error itself.
   */
  #dispatch(
    name: string,
    op: AnyRequestOp,
    req: Req,
    a: A,
    b: A,
    c: A,
    d: A,
    e: A,
    f: A,
    g: A,
    i: A,
  ): void {
    if (!this.#ops[op.method]) {
      this.#enosys(req, name);
      return;
    }
    const host = this.#host;
    const t0 = performance.now();
    let promise: Promise<unknown>;
    try {
      promise = op.call(host, readCtx(this.#fuse, req), a, b, c, d, e, f, g, i);
    } catch (err) {
      this.#record(name, t0, true);
      this.#fail(req, name, a, err);
      return;
    }
    this.#pending++;
    const watch = this.#deadlineMs > 0 && op.waits !== true ? this.#watch(req, name, a, t0) : 0;
    promise.then(
      (value) => {
        this.#settled();
        if (this.#closed || (watch !== 0 && !this.#watched.delete(watch))) return;
        this.#record(name, t0, false, value);
        try {
          op.reply(host, req, value, a, b, c, d, e, f, g, i);
        } catch (err) {
          this.#fail(req, name, a, err);
        }
      },
      (err) => {
        this.#settled();
        if (this.#closed || (watch !== 0 && !this.#watched.delete(watch))) return;
        this.#record(name, t0, true);
        if (op.error !== undefined && op.error(host, req, toErrno(err))) return;
        this.#fail(req, name, a, err);
      },
    );
  }

  /** Puts a request under the deadline; returns its id (it is answered by whoever removes it). */
  #watch(req: Req, op: string, ino: unknown, t0: number): number {
    const id = this.#nextWatch++;
    this.#watched.set(id, { req, op, ino, t0 });
    if (this.#sweeper === undefined) {
      // One timer for all: requests share one deadline, so they fall due in arrival order.
      const sweeper = setInterval(() => this.#sweep(), this.#tick);
      Deno.unrefTimer(sweeper);
      this.#sweeper = sweeper;
    }
    return id;
  }

  /** Answers EIO to every request a tick past its deadline. */
  #sweep(): void {
    const now = performance.now();
    for (const [id, w] of this.#watched) {
      if (now - w.t0 < this.#deadlineMs + this.#tick) break;
      this.#watched.delete(id);
      this.#record(w.op, w.t0, true);
      const s = this.#deadlineMs / 1000;
      this.#fail(
        w.req,
        w.op,
        w.ino,
        new Error(`Not finished within the ${s} s deadline (io_deadline)`),
      );
    }
    if (this.#watched.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /** Runs a request that expects no reply (`forget`): errors are logged, then `reply_none`. */
  #noReply(name: string, op: AnyNoReplyOp, req: Req, a: A, b: A): void {
    try {
      op.run(this.#host, a, b);
    } catch (err) {
      this.#logOnce("forget", "error", "Operation {op} failed: {error}", { op: name, error: err });
    }
    if (!this.#closed) this.#fuse.fuse_reply_none(req);
  }

  #logOnce(
    key: string,
    level: "warn" | "error",
    message: string,
    properties: Record<string, unknown>,
  ): void {
    if (this.#logged.has(key)) return;
    this.#logged.add(key);
    log[level](message, properties);
  }

  #replyErr(req: Req, errno: number): void {
    if (this.#closed) return;
    this.#fuse.fuse_reply_err(req, errno);
  }

  #enosys(req: Req, op: string): void {
    this.#logOnce(`enosys:${op}`, "warn", "Operation {op} is not implemented, answering ENOSYS", {
      op,
    });
    this.#replyErr(req, Errno.ENOSYS);
  }

  #fail(req: Req, op: string, ino: unknown, err: unknown): void {
    const errno = toErrno(err);
    if (errno === Errno.EIO || errno === Errno.ENOSPC) this.#report(op, ino, errno, err);
    this.#replyErr(req, errno);
  }

  /** Logs an error that reaches the application: one line per operation per second at most. */
  #report(op: string, ino: unknown, errno: number, error: unknown): void {
    const now = performance.now();
    const last = this.#reported.get(op);
    if (last !== undefined && now - last.at < 1000) {
      last.skipped++;
      return;
    }
    const skipped = last?.skipped ?? 0;
    this.#reported.set(op, { at: now, skipped: 0 });
    const props = {
      op,
      ino: typeof ino === "bigint" || typeof ino === "number" ? Number(ino) : "?",
      errno: errnoName(errno),
      error,
      skipped,
    };
    if (skipped === 0) log.error("{op} of inode {ino} answered {errno}: {error}", props);
    else log.error("{op} of inode {ino} answered {errno}: {error} ({skipped} more since)", props);
  }

  #settled(): void {
    if (--this.#pending === 0 && this.#idleWaiters.length > 0) {
      for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  /**
   * Puts `bytes` into the kernel's page cache of `ino` at `offset` (`FUSE_NOTIFY_STORE`), from a
   * worker thread (the kernel may wait there for a read the JS thread answers); resolves to 0,
   * or -1 when the kernel refused it (no such inode in its cache, or the connection is gone).
   * Counted as pending like a reply, so that a session ends only after its stores.
   */
  storePages(ino: number | bigint, offset: number, bytes: Uint8Array): Promise<number> {
    const se = this.session;
    if (se === null || this.#closed) return Promise.resolve(-107); // ENOTCONN
    // Written to /dev/fuse directly (libfuse's fuse_lowlevel_notify_store crashed once, in
    // fuse_send_msg, when called from a worker thread): two iovecs, then at byte 64 the
    // fuse_out_header (len, error = FUSE_NOTIFY_STORE, unique 0) and fuse_notify_store_out
    // (nodeid, offset, size, padding). 128 bytes, so that V8 keeps them off its heap.
    const msg = new Uint8Array(128);
    const dv = new DataView(msg.buffer);
    const base = Deno.UnsafePointer.value(Deno.UnsafePointer.of(msg));
    dv.setBigUint64(0, BigInt(base) + 64n, true); // iov[0].iov_base
    dv.setBigUint64(8, 40n, true); // iov[0].iov_len
    dv.setBigUint64(16, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes))), true);
    dv.setBigUint64(24, BigInt(bytes.byteLength), true);
    dv.setUint32(64, 40 + bytes.byteLength, true);
    dv.setInt32(68, NOTIFY_STORE, true);
    dv.setBigUint64(80, BigInt(ino), true);
    dv.setBigUint64(88, BigInt(offset), true);
    dv.setUint32(96, bytes.byteLength, true);
    const fd = this.#fuse.fuse_session_fd(se);
    const sent = this.#libc.writevAsync(fd, msg, 2).then((n) => Number(n) < 0 ? -1 : 0);
    this.#hold(sent.finally(() => void msg), bytes);
    return sent;
  }

  /** Counts a reply sent from a worker thread as pending; `bytes` stay referenced until sent. */
  #hold(sent: Promise<unknown>, bytes: Uint8Array): void {
    this.#pending++;
    sent.finally(() => {
      void bytes;
      this.#settled();
    });
  }

  // ---- init -----------------------------------------------------------------------------------

  #init(conn: Ptr): void {
    let offered: InitInfo | undefined;
    try {
      if (conn === null) return;
      const dv = new DataView(Deno.UnsafePointerView.getArrayBuffer(conn, 40));
      offered = readInitInfo(dv); // for a later takeover of this connection (_takeover.ts)
      const capable = dv.getUint32(CONN_INFO.capable, true);
      let want = dv.getUint32(CONN_INFO.want, true);
      const ops = this.#ops;
      want |= FUSE_CAP.ASYNC_READ | FUSE_CAP.ATOMIC_O_TRUNC | FUSE_CAP.PARALLEL_DIROPS |
        FUSE_CAP.READDIRPLUS | FUSE_CAP.ASYNC_DIO;
      const toggle = (cap: number, on: boolean) => {
        want = on ? want | cap : want & ~cap;
      };
      toggle(FUSE_CAP.POSIX_LOCKS, ops.getlk !== undefined && ops.setlk !== undefined);
      toggle(FUSE_CAP.FLOCK_LOCKS, this.#flockLocks && ops.flock !== undefined);
      toggle(FUSE_CAP.WRITEBACK_CACHE, this.#writeback);
      // The kernel clears set-user/group-ID bits itself (by a setattr) when we do not claim this.
      toggle(FUSE_CAP.HANDLE_KILLPRIV, false);
      toggle(FUSE_CAP.SPLICE_READ | FUSE_CAP.SPLICE_WRITE | FUSE_CAP.SPLICE_MOVE, false);
      want &= capable;
      dv.setUint32(CONN_INFO.want, want >>> 0, true);
      dv.setUint32(CONN_INFO.maxReadahead, MAX_READAHEAD, true);
      dv.setUint32(CONN_INFO.maxBackground, MAX_BACKGROUND, true);
      dv.setUint32(CONN_INFO.congestionThreshold, CONGESTION_THRESHOLD, true);
      if (this.#maxRead !== undefined) dv.setUint32(CONN_INFO.maxRead, this.#maxRead, true);
    } catch (err) {
      this.#logOnce("init", "error", "The init callback failed: {error}", { error: err });
    } finally {
      this.#onInit?.(offered);
    }
  }
}
