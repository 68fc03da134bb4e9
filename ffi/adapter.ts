/**
 * The typed adapter: a `struct fuse_lowlevel_ops` table whose callbacks drive an
 * {@linkcode FsOps}.
 *
 * Each callback copies what it needs out of the request (names, write data, `fi` fields; those
 * pointers die when the callback returns), starts the matching `FsOps` method and returns at once.
 * The reply is sent when the promise settles, so requests run concurrently. Every request gets
 * exactly one reply: a value becomes `fuse_reply_*`, an {@linkcode FsError} becomes
 * `fuse_reply_err(errno)`, anything else `EIO` (logged once per operation), and a missing method
 * `ENOSYS` (logged once per operation). `forget`/`forget_multi` answer `fuse_reply_none`.
 *
 * All replies are made on the JS thread from small scratch buffers that C copies during the call;
 * memory C keeps (the ops table, the readdir buffer) comes from libc `malloc`.
 *
 * @module
 */

import { Errno, FsError, toErrno } from "../core/errno.ts";
import type { FsOps } from "../core/fs_ops.ts";
import type {
  Attr,
  Ctx,
  DirEntry,
  Fh,
  Ino,
  Opened,
  PosixLock,
  SetAttr,
  StatFs,
} from "../core/types.ts";
import { bytesToName } from "../core/types.ts";
import type { LibC } from "../core/libc.ts";
import {
  CONN_INFO,
  ENTRY,
  FILE_INFO,
  FLOCK,
  FORGET_DATA,
  FUSE_CAP,
  FUSE_CTX,
  FUSE_SET_ATTR,
  type FuseLib,
  OPS_SIZE,
  OPS_SLOT,
  STAT,
  STATVFS,
} from "./libfuse.ts";

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
  /** Called once the kernel's INIT request has been answered by `init`. */
  onInit?: () => void;
}

type Ptr = Deno.PointerValue;
type Req = Deno.PointerObject;

const BIG_32 = 4294967296;
const MAX_READAHEAD = 1 << 20;
const MAX_BACKGROUND = 64;
const CONGESTION_THRESHOLD = 48;
const BLKSIZE = 4096;
/** Read replies of at least this many bytes are sent from a worker thread. */
const ASYNC_REPLY_BYTES = 256 * 1024;

/** Callback signatures, one per `fuse_lowlevel_ops` slot SlayerFS fills. */
const DEFS = {
  /** void (*init)(void *userdata, struct fuse_conn_info *conn) */
  init: { parameters: ["pointer", "pointer"], result: "void" },
  /** void (*lookup)(fuse_req_t req, fuse_ino_t parent, const char *name) */
  lookup: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*forget)(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) */
  forget: { parameters: ["pointer", "u64", "u64"], result: "void" },
  /** void (*getattr)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) */
  getattr: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*setattr)(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) */
  setattr: { parameters: ["pointer", "u64", "pointer", "i32", "pointer"], result: "void" },
  /** void (*readlink)(fuse_req_t req, fuse_ino_t ino) */
  readlink: { parameters: ["pointer", "u64"], result: "void" },
  /** void (*mknod)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) */
  mknod: { parameters: ["pointer", "u64", "pointer", "u32", "u64"], result: "void" },
  /** void (*mkdir)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) */
  mkdir: { parameters: ["pointer", "u64", "pointer", "u32"], result: "void" },
  /** void (*unlink)(fuse_req_t req, fuse_ino_t parent, const char *name); also rmdir, removexattr */
  nameOp: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*symlink)(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) */
  symlink: { parameters: ["pointer", "pointer", "u64", "pointer"], result: "void" },
  /** void (*rename)(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) */
  rename: { parameters: ["pointer", "u64", "pointer", "u64", "pointer", "u32"], result: "void" },
  /** void (*link)(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) */
  link: { parameters: ["pointer", "u64", "u64", "pointer"], result: "void" },
  /** void (*open)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi); also flush, release, opendir, releasedir */
  fiOp: { parameters: ["pointer", "u64", "pointer"], result: "void" },
  /** void (*read)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi); also readdir(plus) */
  read: { parameters: ["pointer", "u64", "usize", "i64", "pointer"], result: "void" },
  /** void (*write)(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) */
  write: { parameters: ["pointer", "u64", "pointer", "usize", "i64", "pointer"], result: "void" },
  /** void (*fsync)(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi); also fsyncdir */
  fsync: { parameters: ["pointer", "u64", "i32", "pointer"], result: "void" },
  /** void (*statfs)(fuse_req_t req, fuse_ino_t ino) */
  statfs: { parameters: ["pointer", "u64"], result: "void" },
  /** void (*setxattr)(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) */
  setxattr: {
    parameters: ["pointer", "u64", "pointer", "pointer", "usize", "i32"],
    result: "void",
  },
  /** void (*getxattr)(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) */
  getxattr: { parameters: ["pointer", "u64", "pointer", "usize"], result: "void" },
  /** void (*listxattr)(fuse_req_t req, fuse_ino_t ino, size_t size) */
  listxattr: { parameters: ["pointer", "u64", "usize"], result: "void" },
  /** void (*access)(fuse_req_t req, fuse_ino_t ino, int mask) */
  access: { parameters: ["pointer", "u64", "i32"], result: "void" },
  /** void (*create)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) */
  create: { parameters: ["pointer", "u64", "pointer", "u32", "pointer"], result: "void" },
  /** void (*getlk)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock) */
  getlk: { parameters: ["pointer", "u64", "pointer", "pointer"], result: "void" },
  /** void (*setlk)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock, int sleep) */
  setlk: { parameters: ["pointer", "u64", "pointer", "pointer", "i32"], result: "void" },
  /** void (*forget_multi)(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) */
  forgetMulti: { parameters: ["pointer", "usize", "pointer"], result: "void" },
  /** void (*flock)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op) */
  flock: { parameters: ["pointer", "u64", "pointer", "i32"], result: "void" },
  /** void (*fallocate)(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi) */
  fallocate: { parameters: ["pointer", "u64", "i32", "i64", "i64", "pointer"], result: "void" },
  /** void (*copy_file_range)(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags) */
  copyFileRange: {
    parameters: ["pointer", "u64", "i64", "pointer", "u64", "i64", "pointer", "usize", "i32"],
    result: "void",
  },
  /** void (*lseek)(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi) */
  lseek: { parameters: ["pointer", "u64", "i64", "i32", "pointer"], result: "void" },
} as const satisfies Record<string, Deno.UnsafeCallbackDefinition>;

type Def = typeof DEFS;
type Fn<K extends keyof Def> = Deno.UnsafeCallbackFunction<
  Def[K]["parameters"],
  Def[K]["result"]
>;

/** Writes a non-negative integer (or any integer via BigInt) as a little-endian 64-bit value. */
function set64(dv: DataView, off: number, n: number): void {
  if (n >= 0 && n <= Number.MAX_SAFE_INTEGER) {
    dv.setUint32(off, n >>> 0, true);
    dv.setUint32(off + 4, Math.floor(n / BIG_32), true);
  } else if (n === Infinity) {
    dv.setBigInt64(off, 0x7fffffffffffffffn, true);
  } else {
    dv.setBigInt64(off, BigInt(Math.trunc(n)), true);
  }
}

/** Reads a signed 64-bit little-endian value as a number. */
function get64(dv: DataView, off: number): number {
  return Number(dv.getBigInt64(off, true));
}

/** Fills a `struct stat` at `base` of `dv` from `attr` (the rest must already be zero). */
function writeStat(dv: DataView, base: number, attr: Attr): void {
  set64(dv, base + STAT.ino, attr.ino);
  set64(dv, base + STAT.nlink, attr.nlink);
  dv.setUint32(base + STAT.mode, attr.mode, true);
  dv.setUint32(base + STAT.uid, attr.uid, true);
  dv.setUint32(base + STAT.gid, attr.gid, true);
  set64(dv, base + STAT.rdev, attr.rdev);
  set64(dv, base + STAT.size, attr.size);
  set64(dv, base + STAT.blksize, BLKSIZE);
  set64(dv, base + STAT.blocks, Math.ceil(attr.size / 512));
  set64(dv, base + STAT.atime, attr.atime.sec);
  set64(dv, base + STAT.atime + 8, attr.atime.nsec);
  set64(dv, base + STAT.mtime, attr.mtime.sec);
  set64(dv, base + STAT.mtime + 8, attr.mtime.nsec);
  set64(dv, base + STAT.ctime, attr.ctime.sec);
  set64(dv, base + STAT.ctime + 8, attr.ctime.nsec);
}

/** Reads supplementary groups of `pid` from `/proc/PID/status`, falling back to `[gid]`. */
function readGroups(pid: number, gid: number): number[] {
  try {
    const text = Deno.readTextFileSync(`/proc/${pid}/status`);
    const line = text.split("\n").find((l) => l.startsWith("Groups:"));
    if (line === undefined) return [gid];
    const groups = line.slice(7).trim().split(/\s+/).filter((s) => s !== "").map(Number);
    return groups.includes(gid) ? groups : [gid, ...groups];
  } catch {
    return [gid];
  }
}

class RequestCtx implements Ctx {
  readonly uid: number;
  readonly gid: number;
  readonly pid: number;
  readonly umask: number;
  #groups: readonly number[] | undefined;

  constructor(uid: number, gid: number, pid: number, umask: number) {
    this.uid = uid;
    this.gid = gid;
    this.pid = pid;
    this.umask = umask;
  }

  groups(): readonly number[] {
    return this.#groups ??= readGroups(this.pid, this.gid);
  }
}

/** Counters of one FUSE operation (see {@linkcode FuseAdapter.opStats}). */
export interface OpStat {
  count: number;
  errors: number;
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
  readonly #attrTimeout: number;
  readonly #entryTimeout: number;
  readonly #negativeTimeout: number;
  readonly #writeback: boolean;
  readonly #flockLocks: boolean;
  readonly #maxRead: number | undefined;
  readonly #onInit: (() => void) | undefined;
  readonly #callbacks: Deno.UnsafeCallback[] = [];
  readonly #logged = new Set<string>();
  #closed = false;
  #pending = 0;
  readonly #opStats = new Map<string, OpStat>();
  #idleWaiters: (() => void)[] = [];

  // Scratch memory for replies: C copies it during each (synchronous) reply call.
  readonly #entry = new Uint8Array(ENTRY.SIZE);
  readonly #entryDv = new DataView(this.#entry.buffer);
  readonly #stat = new Uint8Array(STAT.SIZE);
  readonly #statDv = new DataView(this.#stat.buffer);
  readonly #fi = new Uint8Array(FILE_INFO.SIZE);
  readonly #fiDv = new DataView(this.#fi.buffer);
  readonly #name = new Uint8Array(8192);
  #dirBuf: Deno.PointerObject | null = null;
  #dirBufSize = 0;

  /** Builds the ops table for `ops`. */
  constructor(fuse: FuseLib, libc: LibC, ops: FsOps, options: AdapterOptions = {}) {
    this.#fuse = fuse;
    this.#libc = libc;
    this.#ops = ops;
    this.#attrTimeout = options.attrTimeout ?? 1;
    this.#entryTimeout = options.entryTimeout ?? 1;
    this.#negativeTimeout = options.negativeTimeout ?? this.#entryTimeout;
    this.#writeback = options.writebackCache ?? false;
    this.#flockLocks = options.flockLocks ?? false;
    this.#maxRead = options.maxRead;
    this.#onInit = options.onInit;
    const table = libc.calloc(1n, BigInt(OPS_SIZE));
    if (table === null) throw new Error("Cannot allocate the fuse_lowlevel_ops table");
    this.table = table;
    this.#fill(options.threadSafe ?? false);
  }

  /** Requests started and not yet answered. */
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

  #record(op: string, t0: number, error: boolean): void {
    let st = this.#opStats.get(op);
    if (st === undefined) this.#opStats.set(op, st = { count: 0, errors: 0, totalUs: 0 });
    st.count++;
    if (error) st.errors++;
    st.totalUs += Math.round((performance.now() - t0) * 1000);
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
    for (const cb of this.#callbacks) cb.close();
    this.#callbacks.length = 0;
    this.#libc.free(this.table);
    if (this.#dirBuf !== null) this.#libc.free(this.#dirBuf);
    this.#dirBuf = null;
    for (const w of this.#idleWaiters.splice(0)) w();
  }

  /** Lets the process exit although thread-safe callbacks stay open (for a leaked session). */
  unref(): void {
    for (const cb of this.#callbacks) cb.unref();
  }

  // ---- plumbing -------------------------------------------------------------------------------

  #fill(threadSafe: boolean): void {
    const slots = new BigUint64Array(
      Deno.UnsafePointerView.getArrayBuffer(this.table, OPS_SIZE),
    );
    const set = <K extends keyof Def>(slot: keyof typeof OPS_SLOT, def: K, fn: Fn<K>) => {
      const definition = DEFS[def] as Def[K];
      const cb = threadSafe
        ? Deno.UnsafeCallback.threadSafe(definition, fn)
        : new Deno.UnsafeCallback(definition, fn);
      this.#callbacks.push(cb as unknown as Deno.UnsafeCallback);
      slots[OPS_SLOT[slot]] = BigInt(Deno.UnsafePointer.value(cb.pointer));
    };
    set("init", "init", (_userdata, conn) => this.#init(conn));
    set("lookup", "lookup", (req, parent, name) => this.#lookup(req!, parent, name));
    set("forget", "forget", (req, ino, n) => this.#forget(req!, ino, n));
    set("getattr", "getattr", (req, ino, fi) => this.#getattr(req!, ino, fi));
    set("setattr", "setattr", (req, ino, a, s, fi) => this.#setattr(req!, ino, a, s, fi));
    set("readlink", "readlink", (req, ino) => this.#readlink(req!, ino));
    set("mknod", "mknod", (req, p, name, mode, rdev) => this.#mknod(req!, p, name, mode, rdev));
    set("mkdir", "mkdir", (req, p, name, mode) => this.#mkdir(req!, p, name, mode));
    set("unlink", "nameOp", (req, p, name) => this.#unlink(req!, p, name));
    set("rmdir", "nameOp", (req, p, name) => this.#rmdir(req!, p, name));
    set("symlink", "symlink", (req, link, p, name) => this.#symlink(req!, link, p, name));
    set("rename", "rename", (req, p, n, np, nn, f) => this.#rename(req!, p, n, np, nn, f));
    set("link", "link", (req, ino, np, nn) => this.#link(req!, ino, np, nn));
    set("open", "fiOp", (req, ino, fi) => this.#open(req!, ino, fi, false));
    set("read", "read", (req, ino, size, off, fi) => this.#read(req!, ino, size, off, fi));
    set("write", "write", (req, ino, b, size, off, fi) => this.#write(req!, ino, b, size, off, fi));
    set("flush", "fiOp", (req, ino, fi) => this.#flush(req!, ino, fi));
    set("release", "fiOp", (req, ino, fi) => this.#release(req!, ino, fi));
    set("fsync", "fsync", (req, ino, ds, fi) => this.#fsync(req!, ino, ds, fi, false));
    set("opendir", "fiOp", (req, ino, fi) => this.#open(req!, ino, fi, true));
    set("readdir", "read", (req, ino, size, off, fi) => this.#readdir(req!, ino, size, off, fi, 0));
    set(
      "readdirplus",
      "read",
      (req, ino, size, off, fi) => this.#readdir(req!, ino, size, off, fi, 1),
    );
    set("releasedir", "fiOp", (req, ino, fi) => this.#releasedir(req!, ino, fi));
    set("fsyncdir", "fsync", (req, ino, ds, fi) => this.#fsync(req!, ino, ds, fi, true));
    set("statfs", "statfs", (req, ino) => this.#statfs(req!, ino));
    set("setxattr", "setxattr", (req, ino, n, v, s, f) => this.#setxattr(req!, ino, n, v, s, f));
    set("getxattr", "getxattr", (req, ino, name, size) => this.#getxattr(req!, ino, name, size));
    set("listxattr", "listxattr", (req, ino, size) => this.#listxattr(req!, ino, size));
    set("removexattr", "nameOp", (req, ino, name) => this.#removexattr(req!, ino, name));
    set("access", "access", (req, ino, mask) => this.#access(req!, ino, mask));
    set("create", "create", (req, p, name, mode, fi) => this.#create(req!, p, name, mode, fi));
    set("getlk", "getlk", (req, ino, fi, lock) => this.#getlk(req!, ino, fi, lock));
    set("setlk", "setlk", (req, ino, fi, lock, sl) => this.#setlk(req!, ino, fi, lock, sl));
    set("forget_multi", "forgetMulti", (req, count, data) => this.#forgetMulti(req!, count, data));
    set("flock", "flock", (req, ino, fi, op) => this.#flock(req!, ino, fi, op));
    set(
      "fallocate",
      "fallocate",
      (req, ino, m, o, l, fi) => this.#fallocate(req!, ino, m, o, l, fi),
    );
    set(
      "copy_file_range",
      "copyFileRange",
      (req, i1, o1, f1, i2, o2, f2, len, fl) =>
        this.#copyFileRange(req!, i1, o1, f1, i2, o2, f2, len, fl),
    );
    set("lseek", "lseek", (req, ino, off, wh, fi) => this.#lseek(req!, ino, off, wh, fi));
  }

  #logOnce(key: string, message: string, err?: unknown): void {
    if (this.#logged.has(key)) return;
    this.#logged.add(key);
    if (err === undefined) console.error(`slayerfs: ${message}`);
    else console.error(`slayerfs: ${message}:`, err);
  }

  #replyErr(req: Req, errno: number): void {
    if (this.#closed) return;
    this.#fuse.fuse_reply_err(req, errno);
  }

  #enosys(req: Req, op: string): void {
    this.#logOnce(`enosys:${op}`, `Operation "${op}" is not implemented, answering ENOSYS`);
    this.#replyErr(req, Errno.ENOSYS);
  }

  #fail(req: Req, op: string, err: unknown): void {
    if (!(err instanceof FsError)) {
      this.#logOnce(`eio:${op}`, `Operation "${op}" failed, answering EIO`, err);
    }
    this.#replyErr(req, toErrno(err));
  }

  #settled(): void {
    if (--this.#pending === 0 && this.#idleWaiters.length > 0) {
      for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  /**
   * Starts `call` (unless the method is missing) and replies with `reply` when it settles.
   * `reply` must make its `fuse_reply_*` call last, so that a throw means no reply was sent.
   */
  #run<T>(
    req: Req,
    op: string,
    call: (() => Promise<T>) | null,
    reply: (value: T) => void,
    onError?: (errno: number) => boolean,
  ): void {
    if (call === null) {
      this.#enosys(req, op);
      return;
    }
    const t0 = performance.now();
    let promise: Promise<T>;
    try {
      promise = call();
    } catch (err) {
      this.#record(op, t0, true);
      this.#fail(req, op, err);
      return;
    }
    this.#pending++;
    promise.then(
      (value) => {
        this.#settled();
        if (this.#closed) return;
        this.#record(op, t0, false);
        try {
          reply(value);
        } catch (err) {
          this.#fail(req, op, err);
        }
      },
      (err) => {
        this.#settled();
        if (this.#closed) return;
        this.#record(op, t0, true);
        if (onError !== undefined && onError(toErrno(err))) return;
        this.#fail(req, op, err);
      },
    );
  }

  #ctx(req: Req): Ctx {
    const p = this.#fuse.fuse_req_ctx(req);
    if (p === null) return new RequestCtx(0, 0, 0, 0o022);
    const v = new Deno.UnsafePointerView(p);
    return new RequestCtx(
      v.getUint32(FUSE_CTX.uid),
      v.getUint32(FUSE_CTX.gid),
      v.getUint32(FUSE_CTX.pid),
      v.getUint32(FUSE_CTX.umask),
    );
  }

  /** Copies a NUL-terminated C string into a byte-string name. */
  #cstr(p: Ptr): string {
    if (p === null) return "";
    const len = Number(this.#libc.strlen(p));
    if (len === 0) return "";
    return bytesToName(new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, len)));
  }

  /** Encodes a byte-string name NUL-terminated into the name scratch buffer. */
  #cname(name: string): Uint8Array {
    const buf = this.#name;
    if (name.length >= buf.length) throw new FsError(Errno.ENAMETOOLONG, "Name too long");
    for (let i = 0; i < name.length; i++) buf[i] = name.charCodeAt(i);
    buf[name.length] = 0;
    return buf;
  }

  #fh(fi: Ptr): Fh | undefined {
    if (fi === null) return undefined;
    return Number(new Deno.UnsafePointerView(fi).getBigUint64(FILE_INFO.fh)) as Fh;
  }

  #fhOf(fi: Ptr): Fh {
    return this.#fh(fi) ?? (0 as Fh);
  }

  #lockOwner(fi: Ptr): bigint {
    if (fi === null) return 0n;
    return new Deno.UnsafePointerView(fi).getBigUint64(FILE_INFO.lockOwner);
  }

  #fillEntry(attr: Attr | null, timeout: number): Uint8Array {
    const e = this.#entry;
    e.fill(0);
    if (attr !== null) {
      set64(this.#entryDv, ENTRY.ino, attr.ino);
      set64(this.#entryDv, ENTRY.generation, 1);
      writeStat(this.#entryDv, ENTRY.attr, attr);
      this.#entryDv.setFloat64(ENTRY.attrTimeout, this.#attrTimeout, true);
    }
    this.#entryDv.setFloat64(ENTRY.entryTimeout, timeout, true);
    return e;
  }

  #fillFi(opened: Opened, dir: boolean): Uint8Array {
    const fi = this.#fi;
    fi.fill(0);
    set64(this.#fiDv, FILE_INFO.fh, opened.fh);
    let bits = 0;
    if (opened.directIo) bits |= FILE_INFO.DIRECT_IO;
    if (opened.keepCache) {
      bits |= dir ? FILE_INFO.KEEP_CACHE | FILE_INFO.CACHE_READDIR : FILE_INFO.KEEP_CACHE;
    }
    this.#fiDv.setUint32(FILE_INFO.bits, bits, true);
    return fi;
  }

  #replyEntry = (req: Req) => (attr: Attr): void => {
    const e = this.#fillEntry(attr, this.#entryTimeout);
    this.#fuse.fuse_reply_entry(req, e);
  };

  #replyAttr = (req: Req) => (attr: Attr): void => {
    this.#stat.fill(0);
    writeStat(this.#statDv, 0, attr);
    this.#fuse.fuse_reply_attr(req, this.#stat, this.#attrTimeout);
  };

  #replyOk = (req: Req) => (): void => {
    this.#fuse.fuse_reply_err(req, 0);
  };

  // ---- init and forget ------------------------------------------------------------------------

  #init(conn: Ptr): void {
    try {
      if (conn === null) return;
      const dv = new DataView(Deno.UnsafePointerView.getArrayBuffer(conn, 40));
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
      this.#logOnce("init", "The init callback failed", err);
    } finally {
      this.#onInit?.();
    }
  }

  #forget(req: Req, ino: number | bigint, nlookup: number | bigint): void {
    try {
      this.#ops.forget?.(Number(ino) as Ino, Number(nlookup));
    } catch (err) {
      this.#logOnce("forget", 'Operation "forget" failed', err);
    }
    if (!this.#closed) this.#fuse.fuse_reply_none(req);
  }

  #forgetMulti(req: Req, count: number | bigint, data: Ptr): void {
    try {
      const n = Number(count);
      const forget = this.#ops.forget;
      if (forget !== undefined && data !== null && n > 0) {
        const dv = new DataView(
          Deno.UnsafePointerView.getArrayBuffer(data, n * FORGET_DATA.SIZE),
        );
        for (let i = 0; i < n; i++) {
          const base = i * FORGET_DATA.SIZE;
          forget.call(
            this.#ops,
            get64(dv, base + FORGET_DATA.ino) as Ino,
            get64(dv, base + FORGET_DATA.nlookup),
          );
        }
      }
    } catch (err) {
      this.#logOnce("forget", 'Operation "forget" failed', err);
    }
    if (!this.#closed) this.#fuse.fuse_reply_none(req);
  }

  // ---- entries and attributes -----------------------------------------------------------------

  #lookup(req: Req, parent: number | bigint, namePtr: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const p = Number(parent) as Ino;
      const name = this.#cstr(namePtr);
      this.#run(
        req,
        "lookup",
        ops.lookup ? () => ops.lookup(ctx, p, name) : null,
        this.#replyEntry(req),
        (errno) => {
          if (errno !== Errno.ENOENT || this.#negativeTimeout <= 0) return false;
          this.#fuse.fuse_reply_entry(req, this.#fillEntry(null, this.#negativeTimeout));
          return true;
        },
      );
    } catch (err) {
      this.#fail(req, "lookup", err);
    }
  }

  #getattr(req: Req, ino: number | bigint, fi: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const fh = this.#fh(fi);
      this.#run(
        req,
        "getattr",
        ops.getattr ? () => ops.getattr(ctx, i, fh) : null,
        this.#replyAttr(req),
      );
    } catch (err) {
      this.#fail(req, "getattr", err);
    }
  }

  #setattr(req: Req, ino: number | bigint, attrPtr: Ptr, toSet: number, fi: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const fh = this.#fh(fi);
      const set: SetAttr = {};
      if (attrPtr !== null) {
        const dv = new DataView(Deno.UnsafePointerView.getArrayBuffer(attrPtr, STAT.SIZE));
        const time = (off: number) => ({ sec: get64(dv, off), nsec: get64(dv, off + 8) });
        if (toSet & FUSE_SET_ATTR.MODE) set.mode = dv.getUint32(STAT.mode, true);
        if (toSet & FUSE_SET_ATTR.UID) set.uid = dv.getUint32(STAT.uid, true);
        if (toSet & FUSE_SET_ATTR.GID) set.gid = dv.getUint32(STAT.gid, true);
        if (toSet & FUSE_SET_ATTR.SIZE) set.size = get64(dv, STAT.size);
        if (toSet & FUSE_SET_ATTR.ATIME_NOW) set.atime = "now";
        else if (toSet & FUSE_SET_ATTR.ATIME) set.atime = time(STAT.atime);
        if (toSet & FUSE_SET_ATTR.MTIME_NOW) set.mtime = "now";
        else if (toSet & FUSE_SET_ATTR.MTIME) set.mtime = time(STAT.mtime);
        if (toSet & FUSE_SET_ATTR.CTIME) set.ctime = time(STAT.ctime);
      }
      this.#run(
        req,
        "setattr",
        ops.setattr ? () => ops.setattr(ctx, i, set, fh) : null,
        this.#replyAttr(req),
      );
    } catch (err) {
      this.#fail(req, "setattr", err);
    }
  }

  #readlink(req: Req, ino: number | bigint): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      this.#run(
        req,
        "readlink",
        ops.readlink ? () => ops.readlink(ctx, i) : null,
        (target) => {
          this.#fuse.fuse_reply_readlink(req, this.#cname(target));
        },
      );
    } catch (err) {
      this.#fail(req, "readlink", err);
    }
  }

  #mknod(req: Req, parent: number | bigint, namePtr: Ptr, mode: number, rdev: number | bigint) {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const p = Number(parent) as Ino;
      const name = this.#cstr(namePtr);
      const dev = Number(rdev);
      this.#run(
        req,
        "mknod",
        ops.mknod ? () => ops.mknod(ctx, p, name, mode, dev) : null,
        this.#replyEntry(req),
      );
    } catch (err) {
      this.#fail(req, "mknod", err);
    }
  }

  #mkdir(req: Req, parent: number | bigint, namePtr: Ptr, mode: number): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const p = Number(parent) as Ino;
      const name = this.#cstr(namePtr);
      this.#run(
        req,
        "mkdir",
        ops.mkdir ? () => ops.mkdir(ctx, p, name, mode) : null,
        this.#replyEntry(req),
      );
    } catch (err) {
      this.#fail(req, "mkdir", err);
    }
  }

  #unlink(req: Req, parent: number | bigint, namePtr: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const p = Number(parent) as Ino;
      const name = this.#cstr(namePtr);
      this.#run(
        req,
        "unlink",
        ops.unlink ? () => ops.unlink(ctx, p, name) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, "unlink", err);
    }
  }

  #rmdir(req: Req, parent: number | bigint, namePtr: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const p = Number(parent) as Ino;
      const name = this.#cstr(namePtr);
      this.#run(
        req,
        "rmdir",
        ops.rmdir ? () => ops.rmdir(ctx, p, name) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, "rmdir", err);
    }
  }

  #symlink(req: Req, linkPtr: Ptr, parent: number | bigint, namePtr: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const target = this.#cstr(linkPtr);
      const p = Number(parent) as Ino;
      const name = this.#cstr(namePtr);
      this.#run(
        req,
        "symlink",
        ops.symlink ? () => ops.symlink(ctx, p, name, target) : null,
        this.#replyEntry(req),
      );
    } catch (err) {
      this.#fail(req, "symlink", err);
    }
  }

  #rename(
    req: Req,
    parent: number | bigint,
    namePtr: Ptr,
    newParent: number | bigint,
    newNamePtr: Ptr,
    flags: number,
  ): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const p = Number(parent) as Ino;
      const name = this.#cstr(namePtr);
      const np = Number(newParent) as Ino;
      const newName = this.#cstr(newNamePtr);
      this.#run(
        req,
        "rename",
        ops.rename ? () => ops.rename(ctx, p, name, np, newName, flags) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, "rename", err);
    }
  }

  #link(req: Req, ino: number | bigint, newParent: number | bigint, newNamePtr: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const np = Number(newParent) as Ino;
      const newName = this.#cstr(newNamePtr);
      this.#run(
        req,
        "link",
        ops.link ? () => ops.link(ctx, i, np, newName) : null,
        this.#replyEntry(req),
      );
    } catch (err) {
      this.#fail(req, "link", err);
    }
  }

  // ---- files ----------------------------------------------------------------------------------

  #open(req: Req, ino: number | bigint, fi: Ptr, dir: boolean): void {
    const op = dir ? "opendir" : "open";
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const flags = fi === null ? 0 : new Deno.UnsafePointerView(fi).getInt32(FILE_INFO.flags);
      const method = dir ? ops.opendir : ops.open;
      this.#run(
        req,
        op,
        method ? () => method.call(ops, ctx, i, flags) : null,
        (opened) => {
          this.#fuse.fuse_reply_open(req, this.#fillFi(opened, dir));
        },
      );
    } catch (err) {
      this.#fail(req, op, err);
    }
  }

  #create(req: Req, parent: number | bigint, namePtr: Ptr, mode: number, fi: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const p = Number(parent) as Ino;
      const name = this.#cstr(namePtr);
      const flags = fi === null ? 0 : new Deno.UnsafePointerView(fi).getInt32(FILE_INFO.flags);
      this.#run(
        req,
        "create",
        ops.create ? () => ops.create(ctx, p, name, mode, flags) : null,
        ({ attr, opened }) => {
          const e = this.#fillEntry(attr, this.#entryTimeout);
          this.#fuse.fuse_reply_create(req, e, this.#fillFi(opened, false));
        },
      );
    } catch (err) {
      this.#fail(req, "create", err);
    }
  }

  #read(req: Req, ino: number | bigint, size: number | bigint, off: number | bigint, fi: Ptr) {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const n = Number(size);
      const o = Number(off);
      const fh = this.#fhOf(fi);
      this.#run(
        req,
        "read",
        ops.read ? () => ops.read(ctx, i, fh, o, n) : null,
        (data) => {
          const out = data.length > n ? data.subarray(0, n) : data;
          if (out.length < ASYNC_REPLY_BYTES) {
            this.#fuse.fuse_reply_buf(req, out, BigInt(out.length));
            return;
          }
          // Large: the kernel's copy runs on a worker thread. Counted as pending so that the
          // session is not torn down under it; `out` stays referenced until the call ends.
          this.#pending++;
          this.#fuse.fuse_reply_buf_async(req, out, BigInt(out.length)).finally(() => {
            void out;
            this.#settled();
          });
        },
      );
    } catch (err) {
      this.#fail(req, "read", err);
    }
  }

  #write(
    req: Req,
    ino: number | bigint,
    buf: Ptr,
    size: number | bigint,
    off: number | bigint,
    fi: Ptr,
  ): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const n = Number(size);
      const o = Number(off);
      const fh = this.#fhOf(fi);
      let data: Uint8Array;
      if (n > 0 && buf !== null && ops.copiesWriteData === true) {
        // A view of libfuse's buffer, valid during this call: `write` copies before it awaits.
        data = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(buf, n));
      } else {
        data = new Uint8Array(n);
        if (n > 0 && buf !== null) Deno.UnsafePointerView.copyInto(buf, data);
      }
      this.#run(
        req,
        "write",
        ops.write ? () => ops.write(ctx, i, fh, o, data) : null,
        (written) => {
          this.#fuse.fuse_reply_write(req, BigInt(written));
        },
      );
    } catch (err) {
      this.#fail(req, "write", err);
    }
  }

  #flush(req: Req, ino: number | bigint, fi: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const fh = this.#fhOf(fi);
      const owner = this.#lockOwner(fi);
      this.#run(
        req,
        "flush",
        ops.flush ? () => ops.flush(ctx, i, fh, owner) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, "flush", err);
    }
  }

  #release(req: Req, ino: number | bigint, fi: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const fh = this.#fhOf(fi);
      const owner = this.#lockOwner(fi);
      const flockRelease = fi !== null &&
        (new Deno.UnsafePointerView(fi).getUint32(FILE_INFO.bits) & FILE_INFO.FLOCK_RELEASE) !== 0;
      this.#run(
        req,
        "release",
        ops.release ? () => ops.release(ctx, i, fh, owner, flockRelease) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, "release", err);
    }
  }

  #fsync(req: Req, ino: number | bigint, datasync: number, fi: Ptr, dir: boolean): void {
    const op = dir ? "fsyncdir" : "fsync";
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const fh = this.#fhOf(fi);
      const method = dir ? ops.fsyncdir : ops.fsync;
      this.#run(
        req,
        op,
        method ? () => method.call(ops, ctx, i, fh, datasync !== 0) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, op, err);
    }
  }

  // ---- directories ----------------------------------------------------------------------------

  #dirBuffer(size: number): Deno.PointerObject {
    if (this.#dirBuf === null || this.#dirBufSize < size) {
      if (this.#dirBuf !== null) this.#libc.free(this.#dirBuf);
      this.#dirBuf = null;
      const cap = Math.max(size, 128 * 1024);
      const p = this.#libc.malloc(BigInt(cap));
      if (p === null) throw new FsError(Errno.ENOMEM, "Cannot allocate a readdir buffer");
      this.#dirBuf = p;
      this.#dirBufSize = cap;
    }
    return this.#dirBuf;
  }

  #readdir(
    req: Req,
    ino: number | bigint,
    size: number | bigint,
    off: number | bigint,
    fi: Ptr,
    plus: 0 | 1,
  ): void {
    const op = plus ? "readdirplus" : "readdir";
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const n = Number(size);
      const o = Number(off);
      const fh = this.#fhOf(fi);
      // An upper bound of what fits: a plain dirent is >= 32 bytes, a direntplus >= 160.
      const limit = Math.max(1, Math.floor(n / (plus ? 160 : 32)));
      this.#run(
        req,
        op,
        ops.readdir ? () => ops.readdir(ctx, i, fh, o, limit, plus === 1) : null,
        (entries) => this.#replyDir(req, n, entries, plus === 1),
      );
    } catch (err) {
      this.#fail(req, op, err);
    }
  }

  #replyDir(req: Req, size: number, entries: DirEntry[], plus: boolean): void {
    const buf = this.#dirBuffer(size);
    let used = 0;
    for (const entry of entries) {
      const name = this.#cname(entry.name);
      const room = size - used;
      const at = used === 0 ? buf : Deno.UnsafePointer.offset(buf, used);
      let len: number;
      if (plus) {
        const attr = entry.attr;
        let e: Uint8Array;
        if (attr !== undefined) {
          e = this.#fillEntry(attr, this.#entryTimeout);
        } else {
          // No attributes: a zero node id tells the kernel not to instantiate the entry.
          e = this.#fillEntry(null, 0);
          set64(this.#entryDv, ENTRY.attr + STAT.ino, entry.ino);
          this.#entryDv.setUint32(ENTRY.attr + STAT.mode, entry.type, true);
        }
        len = Number(
          this.#fuse.fuse_add_direntry_plus(req, at, BigInt(room), name, e, BigInt(entry.next)),
        );
      } else {
        const st = this.#stat;
        st.fill(0);
        set64(this.#statDv, STAT.ino, entry.ino);
        this.#statDv.setUint32(STAT.mode, entry.type, true);
        len = Number(
          this.#fuse.fuse_add_direntry(req, at, BigInt(room), name, st, BigInt(entry.next)),
        );
      }
      if (len > room) break;
      used += len;
    }
    this.#fuse.fuse_reply_buf_ptr(req, buf, BigInt(used));
  }

  #releasedir(req: Req, ino: number | bigint, fi: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const fh = this.#fhOf(fi);
      this.#run(
        req,
        "releasedir",
        ops.releasedir ? () => ops.releasedir(ctx, i, fh) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, "releasedir", err);
    }
  }

  #statfs(req: Req, ino: number | bigint): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      this.#run(
        req,
        "statfs",
        ops.statfs ? () => ops.statfs(ctx, i) : null,
        (s: StatFs) => {
          const buf = new Uint8Array(STATVFS.SIZE);
          const dv = new DataView(buf.buffer);
          set64(dv, STATVFS.bsize, s.blockSize);
          set64(dv, STATVFS.frsize, s.blockSize);
          set64(dv, STATVFS.blocks, s.totalBlocks);
          set64(dv, STATVFS.bfree, s.freeBlocks);
          set64(dv, STATVFS.bavail, s.availBlocks);
          set64(dv, STATVFS.files, s.totalFiles);
          set64(dv, STATVFS.ffree, s.freeFiles);
          set64(dv, STATVFS.favail, s.freeFiles);
          set64(dv, STATVFS.namemax, s.nameMax);
          this.#fuse.fuse_reply_statfs(req, buf);
        },
      );
    } catch (err) {
      this.#fail(req, "statfs", err);
    }
  }

  // ---- extended attributes --------------------------------------------------------------------

  #setxattr(
    req: Req,
    ino: number | bigint,
    namePtr: Ptr,
    valuePtr: Ptr,
    size: number | bigint,
    flags: number,
  ): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const name = this.#cstr(namePtr);
      const n = Number(size);
      const value = new Uint8Array(n);
      if (n > 0 && valuePtr !== null) Deno.UnsafePointerView.copyInto(valuePtr, value);
      this.#run(
        req,
        "setxattr",
        ops.setxattr ? () => ops.setxattr(ctx, i, name, value, flags) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, "setxattr", err);
    }
  }

  /** Answers a sized xattr query: the size alone when `size` is 0, else the bytes or ERANGE. */
  #replyXattr(req: Req, size: number, value: Uint8Array): void {
    if (size === 0) this.#fuse.fuse_reply_xattr(req, BigInt(value.length));
    else if (value.length > size) this.#fuse.fuse_reply_err(req, Errno.ERANGE);
    else this.#fuse.fuse_reply_buf(req, value, BigInt(value.length));
  }

  #getxattr(req: Req, ino: number | bigint, namePtr: Ptr, size: number | bigint): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const name = this.#cstr(namePtr);
      const n = Number(size);
      this.#run(
        req,
        "getxattr",
        ops.getxattr ? () => ops.getxattr(ctx, i, name) : null,
        (value) => this.#replyXattr(req, n, value),
      );
    } catch (err) {
      this.#fail(req, "getxattr", err);
    }
  }

  #listxattr(req: Req, ino: number | bigint, size: number | bigint): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const n = Number(size);
      this.#run(
        req,
        "listxattr",
        ops.listxattr ? () => ops.listxattr(ctx, i) : null,
        (names) => {
          let total = 0;
          for (const name of names) total += name.length + 1;
          const out = new Uint8Array(total);
          let at = 0;
          for (const name of names) {
            for (let k = 0; k < name.length; k++) out[at++] = name.charCodeAt(k);
            out[at++] = 0;
          }
          this.#replyXattr(req, n, out);
        },
      );
    } catch (err) {
      this.#fail(req, "listxattr", err);
    }
  }

  #removexattr(req: Req, ino: number | bigint, namePtr: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const name = this.#cstr(namePtr);
      this.#run(
        req,
        "removexattr",
        ops.removexattr ? () => ops.removexattr(ctx, i, name) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, "removexattr", err);
    }
  }

  #access(req: Req, ino: number | bigint, mask: number): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      this.#run(
        req,
        "access",
        ops.access ? () => ops.access(ctx, i, mask) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, "access", err);
    }
  }

  // ---- locks ----------------------------------------------------------------------------------

  #readLock(lockPtr: Ptr): PosixLock {
    if (lockPtr === null) throw new FsError(Errno.EINVAL, "No lock given");
    const dv = new DataView(Deno.UnsafePointerView.getArrayBuffer(lockPtr, FLOCK.SIZE));
    const start = get64(dv, FLOCK.start);
    const len = get64(dv, FLOCK.len);
    return {
      type: dv.getInt16(FLOCK.type, true),
      start,
      end: len === 0 ? Infinity : start + len - 1,
      pid: dv.getInt32(FLOCK.pid, true),
    };
  }

  #getlk(req: Req, ino: number | bigint, fi: Ptr, lockPtr: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const fh = this.#fhOf(fi);
      const owner = this.#lockOwner(fi);
      const lock = this.#readLock(lockPtr);
      this.#run(
        req,
        "getlk",
        ops.getlk ? () => ops.getlk(ctx, i, fh, owner, lock) : null,
        (found) => {
          const buf = new Uint8Array(FLOCK.SIZE);
          const dv = new DataView(buf.buffer);
          dv.setInt16(FLOCK.type, found.type, true);
          dv.setInt16(FLOCK.whence, 0, true);
          set64(dv, FLOCK.start, found.start);
          set64(dv, FLOCK.len, found.end === Infinity ? 0 : found.end - found.start + 1);
          dv.setInt32(FLOCK.pid, found.pid, true);
          this.#fuse.fuse_reply_lock(req, buf);
        },
      );
    } catch (err) {
      this.#fail(req, "getlk", err);
    }
  }

  #setlk(req: Req, ino: number | bigint, fi: Ptr, lockPtr: Ptr, sleep: number): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const fh = this.#fhOf(fi);
      const owner = this.#lockOwner(fi);
      const lock = this.#readLock(lockPtr);
      this.#run(
        req,
        "setlk",
        ops.setlk ? () => ops.setlk(ctx, i, fh, owner, lock, sleep !== 0) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, "setlk", err);
    }
  }

  #flock(req: Req, ino: number | bigint, fi: Ptr, op: number): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const fh = this.#fhOf(fi);
      const owner = this.#lockOwner(fi);
      this.#run(
        req,
        "flock",
        ops.flock ? () => ops.flock(ctx, i, fh, owner, op) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, "flock", err);
    }
  }

  // ---- ranges ---------------------------------------------------------------------------------

  #fallocate(
    req: Req,
    ino: number | bigint,
    mode: number,
    off: number | bigint,
    len: number | bigint,
    fi: Ptr,
  ): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const fh = this.#fhOf(fi);
      const o = Number(off);
      const l = Number(len);
      this.#run(
        req,
        "fallocate",
        ops.fallocate ? () => ops.fallocate(ctx, i, fh, mode, o, l) : null,
        this.#replyOk(req),
      );
    } catch (err) {
      this.#fail(req, "fallocate", err);
    }
  }

  #copyFileRange(
    req: Req,
    inoIn: number | bigint,
    offIn: number | bigint,
    fiIn: Ptr,
    inoOut: number | bigint,
    offOut: number | bigint,
    fiOut: Ptr,
    len: number | bigint,
    flags: number,
  ): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i1 = Number(inoIn) as Ino;
      const o1 = Number(offIn);
      const f1 = this.#fhOf(fiIn);
      const i2 = Number(inoOut) as Ino;
      const o2 = Number(offOut);
      const f2 = this.#fhOf(fiOut);
      const n = Number(len);
      this.#run(
        req,
        "copy_file_range",
        ops.copyFileRange ? () => ops.copyFileRange(ctx, i1, f1, o1, i2, f2, o2, n, flags) : null,
        (copied) => {
          this.#fuse.fuse_reply_write(req, BigInt(copied));
        },
      );
    } catch (err) {
      this.#fail(req, "copy_file_range", err);
    }
  }

  #lseek(req: Req, ino: number | bigint, off: number | bigint, whence: number, fi: Ptr): void {
    try {
      const ops = this.#ops;
      const ctx = this.#ctx(req);
      const i = Number(ino) as Ino;
      const o = Number(off);
      const fh = this.#fhOf(fi);
      this.#run(
        req,
        "lseek",
        ops.lseek ? () => ops.lseek(ctx, i, fh, o, whence) : null,
        (pos) => {
          this.#fuse.fuse_reply_lseek(req, BigInt(pos));
        },
      );
    } catch (err) {
      this.#fail(req, "lseek", err);
    }
  }
}
