/**
 * The FUSE operation surface as one table, {@linkcode OPERATIONS}: for each `fuse_lowlevel_ops`
 * slot SlayerFS fills, the libfuse callback signature, how its arguments become the
 * {@linkcode FsOps} call, and how the result becomes the reply. The adapter's one dispatcher
 * (`adapter.ts`) runs every entry: request context, ENOSYS for a missing method, the try/catch,
 * errno mapping, per-op stats and exactly one reply.
 *
 * An entry's `call` runs inside the callback, so it may read the pointers it gets (names, write
 * data, `fi`, `struct flock`); they die when the callback returns. Its `reply` runs later, when
 * the promise settles, and gets the callback's arguments again: only the numbers among them
 * (sizes) may still be used. A reply makes its `fuse_reply_*` call last, so that a throw means
 * nothing was sent.
 *
 * @module
 */

import { Errno } from "../core/errno.ts";
import type { FsOps } from "../core/fs_ops.ts";
import type { LibC } from "../core/libc.ts";
import type { Attr, Ctx, Ino } from "../core/types.ts";
import { giveReply } from "../core/_reply_pool.ts";
import { copyFromC, cStringList, readCString } from "./_cstring.ts";
import {
  type DirBuffer,
  fiFh,
  fiFhOf,
  fiFlags,
  fiFlockRelease,
  fiLockOwner,
  get64,
  lockStruct,
  readLock,
  readSetAttr,
  type ReplyStructs,
  statvfsStruct,
} from "./_structs.ts";
import { FORGET_DATA, type FuseLib, type OPS_SLOT } from "./libfuse.ts";

/** A request (`fuse_req_t`). */
export type Req = Deno.PointerObject;

/** What the table's functions use of the adapter that runs them. */
export interface OpHost {
  /** libfuse3's symbols. */
  readonly fuse: FuseLib;
  /** libc's symbols. */
  readonly libc: LibC;
  /** The filesystem. */
  readonly ops: FsOps;
  /** Scratch reply structs. */
  readonly structs: ReplyStructs;
  /** The readdir buffer. */
  readonly dir: DirBuffer;
  /** Seconds the kernel may cache attributes. */
  readonly attrTimeout: number;
  /** Seconds the kernel may cache an entry. */
  readonly entryTimeout: number;
  /** Seconds the kernel may cache a failed lookup (0: not at all). */
  readonly negativeTimeout: number;
  /** Counts a reply sent off the JS thread as pending until `sent` settles; keeps `bytes` alive. */
  hold(sent: Promise<unknown>, bytes: Uint8Array): void;
  /** Makes the kernel drop its cached attributes of `ino` (once the session is known). */
  invalidateAttr(ino: number | bigint): void;
}

/** A libfuse callback signature. */
export type Def = Deno.UnsafeCallbackDefinition;
/** The callback's arguments after `req`. */
export type Args<D extends Def> =
  Parameters<Deno.UnsafeCallbackFunction<D["parameters"], D["result"]>> extends
    readonly [unknown, ...infer R] ? R : never;
/** The `FsOps` methods a request calls. */
export type Method = Exclude<keyof FsOps, "copiesWriteData" | "forget" | "destroy">;

/** A request that the filesystem answers: a call, then one reply. */
export interface RequestOp<D extends Def, T> {
  /** The libfuse callback signature (the first parameter is the request). */
  readonly def: D;
  /** The `FsOps` method; without it the request answers ENOSYS. */
  readonly method: Method;
  /** Decodes the callback's arguments and starts the `FsOps` call. */
  call(h: OpHost, ctx: Ctx, ...args: Args<D>): Promise<T>;
  /** Replies with the call's result; gets the callback's arguments again (numbers only). */
  reply(h: OpHost, req: Req, value: T, ...args: Args<D>): void;
  /** Answers an error itself instead of `fuse_reply_err` (returns true if it did). */
  error?(h: OpHost, req: Req, errno: number): boolean;
  /** It may wait without bound (a lock wait): exempt from the request deadline. */
  readonly waits?: true;
}

/** A request without a reply (`forget`): run at once, errors only logged, `fuse_reply_none`. */
export interface NoReplyOp<D extends Def> {
  /** The libfuse callback signature. */
  readonly def: D;
  /** Tells the filesystem; synchronous. */
  run(h: OpHost, ...args: Args<D>): void;
}

/** One of up to eight callback arguments after `req`, untyped (the dispatcher's view). */
export type A = unknown;

/** {@linkcode RequestOp} as the dispatcher calls it. */
export interface AnyRequestOp {
  /** See {@linkcode RequestOp.def}. */
  readonly def: Def;
  /** See {@linkcode RequestOp.method}. */
  readonly method: Method;
  /** See {@linkcode RequestOp.call}. */
  call(h: OpHost, ctx: Ctx, a: A, b: A, c: A, d: A, e: A, f: A, g: A, i: A): Promise<unknown>;
  /** See {@linkcode RequestOp.reply}. */
  reply(h: OpHost, req: Req, v: unknown, a: A, b: A, c: A, d: A, e: A, f: A, g: A, i: A): void;
  /** See {@linkcode RequestOp.error}. */
  error?(h: OpHost, req: Req, errno: number): boolean;
  /** See {@linkcode RequestOp.waits}. */
  readonly waits?: true;
}

/** {@linkcode NoReplyOp} as the dispatcher calls it. */
export interface AnyNoReplyOp {
  /** See {@linkcode NoReplyOp.def}. */
  readonly def: Def;
  /** See {@linkcode NoReplyOp.run}. */
  run(h: OpHost, a: A, b: A): void;
}

function request<const D extends Def, T>(op: RequestOp<D, T>): AnyRequestOp {
  return op as unknown as AnyRequestOp;
}

function noReply<const D extends Def>(op: NoReplyOp<D>): AnyNoReplyOp {
  return op as unknown as AnyNoReplyOp;
}

/** A callback signature: these parameter types, no result. */
function cb<const P extends readonly Deno.NativeType[]>(...parameters: P) {
  return { parameters, result: "void" } as const;
}

/** Read replies of at least this many bytes are sent from a worker thread. */
const ASYNC_REPLY_BYTES = 256 * 1024;

const ino = (n: number | bigint): Ino => Number(n) as Ino;
const name = (h: OpHost, p: Deno.PointerValue): string => readCString(h.libc, p);

const ok = (h: OpHost, req: Req): void => {
  h.fuse.fuse_reply_err(req, 0);
};
const entry = (h: OpHost, req: Req, attr: Attr): void => {
  h.fuse.fuse_reply_entry(req, h.structs.entry(attr, h.entryTimeout));
};
const attr = (h: OpHost, req: Req, a: Attr): void => {
  h.fuse.fuse_reply_attr(req, h.structs.stat(a), h.attrTimeout);
};
const count = (h: OpHost, req: Req, n: number): void => {
  h.fuse.fuse_reply_write(req, BigInt(n));
};
/** A sized xattr answer: the size alone when `size` is 0, else the bytes or ERANGE. */
const xattr = (h: OpHost, req: Req, size: number, value: Uint8Array): void => {
  if (size === 0) h.fuse.fuse_reply_xattr(req, BigInt(value.length));
  else if (value.length > size) h.fuse.fuse_reply_err(req, Errno.ERANGE);
  else h.fuse.fuse_reply_buf(req, value, BigInt(value.length));
};
const data = (h: OpHost, req: Req, bytes: Uint8Array, size: number | bigint): void => {
  const n = Number(size);
  const out = bytes.length > n ? bytes.subarray(0, n) : bytes;
  if (out.length < ASYNC_REPLY_BYTES) {
    h.fuse.fuse_reply_buf(req, out, BigInt(out.length));
    giveReply(bytes); // a reused buffer is free again once the kernel has copied it
    return;
  }
  // Large: the kernel's copy runs on a worker thread, counted as pending so that the session is
  // not torn down under it.
  const sent = h.fuse.fuse_reply_buf_async(req, out, BigInt(out.length));
  h.hold(sent.finally(() => giveReply(bytes)), out);
};

// Callback signatures shared by several slots.
/** void (*unlink)(fuse_req_t req, fuse_ino_t parent, const char *name); also rmdir, removexattr, lookup */
const NAME_OP = cb("pointer", "u64", "pointer");
/** void (*open)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi); also getattr, flush, release, opendir, releasedir */
const FI_OP = cb("pointer", "u64", "pointer");
/** void (*read)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi); also readdir(plus) */
const READ_OP = cb("pointer", "u64", "usize", "i64", "pointer");
/** void (*fsync)(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi); also fsyncdir */
const FSYNC_OP = cb("pointer", "u64", "i32", "pointer");
/** void (*readlink)(fuse_req_t req, fuse_ino_t ino); also statfs */
const INO_OP = cb("pointer", "u64");

/** `opendir`/`open`: the same call and reply but for the method and the readdir cache bit. */
function openOp(method: "open" | "opendir"): AnyRequestOp {
  const dir = method === "opendir";
  return request({
    def: FI_OP,
    method,
    call: (h, ctx, i, fi) => h.ops[method](ctx, ino(i), fiFlags(fi)),
    reply: (h, req, opened, i) => {
      // Changed on another mount: the size the kernel caches may be old (close-to-open).
      if (opened.attrStale) h.invalidateAttr(i);
      h.fuse.fuse_reply_open(req, h.structs.fileInfo(opened, dir));
    },
  });
}

function readdirOp(plus: boolean): AnyRequestOp {
  // An upper bound of what fits: a plain dirent is >= 32 bytes, a direntplus >= 160.
  const minSize = plus ? 160 : 32;
  return request({
    def: READ_OP,
    method: "readdir",
    call: (h, ctx, i, size, off, fi) =>
      h.ops.readdir(
        ctx,
        ino(i),
        fiFhOf(fi),
        Number(off),
        Math.max(1, Math.floor(Number(size) / minSize)),
        plus,
      ),
    reply: (h, req, entries, _i, size) => {
      const used = h.dir.pack(req, Number(size), entries, plus);
      h.fuse.fuse_reply_buf_ptr(req, h.dir.pointer, BigInt(used));
    },
  });
}

function fsyncOp(method: "fsync" | "fsyncdir"): AnyRequestOp {
  return request({
    def: FSYNC_OP,
    method,
    call: (h, ctx, i, datasync, fi) => h.ops[method](ctx, ino(i), fiFhOf(fi), datasync !== 0),
    reply: ok,
  });
}

function nameOp(method: "unlink" | "rmdir" | "removexattr"): AnyRequestOp {
  return request({
    def: NAME_OP,
    method,
    call: (h, ctx, i, n) => h.ops[method](ctx, ino(i), name(h, n)),
    reply: ok,
  });
}

/** Every `fuse_lowlevel_ops` slot SlayerFS fills but `init`, keyed by slot (= op) name. */
export const OPERATIONS: Partial<Record<keyof typeof OPS_SLOT, AnyRequestOp | AnyNoReplyOp>> = {
  lookup: request({
    def: NAME_OP,
    method: "lookup",
    call: (h, ctx, parent, n) => h.ops.lookup(ctx, ino(parent), name(h, n)),
    reply: entry,
    // A miss is cached as an entry with node id 0.
    error: (h, req, errno) => {
      if (errno !== Errno.ENOENT || h.negativeTimeout <= 0) return false;
      h.fuse.fuse_reply_entry(req, h.structs.entry(null, h.negativeTimeout));
      return true;
    },
  }),
  forget: noReply({
    /** void (*forget)(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) */
    def: cb("pointer", "u64", "u64"),
    run: (h, i, nlookup) => h.ops.forget?.(ino(i), Number(nlookup)),
  }),
  forget_multi: noReply({
    /** void (*forget_multi)(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) */
    def: cb("pointer", "usize", "pointer"),
    run: (h, count, forgets) => {
      const n = Number(count);
      const forget = h.ops.forget;
      if (forget === undefined || forgets === null || n <= 0) return;
      const dv = new DataView(
        Deno.UnsafePointerView.getArrayBuffer(forgets, n * FORGET_DATA.SIZE),
      );
      for (let k = 0; k < n; k++) {
        const base = k * FORGET_DATA.SIZE;
        forget.call(
          h.ops,
          get64(dv, base + FORGET_DATA.ino) as Ino,
          get64(dv, base + FORGET_DATA.nlookup),
        );
      }
    },
  }),
  getattr: request({
    def: FI_OP,
    method: "getattr",
    call: (h, ctx, i, fi) => h.ops.getattr(ctx, ino(i), fiFh(fi)),
    reply: attr,
  }),
  setattr: request({
    /** void (*setattr)(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) */
    def: cb("pointer", "u64", "pointer", "i32", "pointer"),
    method: "setattr",
    call: (h, ctx, i, stat, toSet, fi) =>
      h.ops.setattr(ctx, ino(i), readSetAttr(stat, toSet), fiFh(fi)),
    reply: attr,
  }),
  readlink: request({
    def: INO_OP,
    method: "readlink",
    call: (h, ctx, i) => h.ops.readlink(ctx, ino(i)),
    reply: (h, req, target) => {
      h.fuse.fuse_reply_readlink(req, h.structs.name(target));
    },
  }),
  mknod: request({
    /** void (*mknod)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) */
    def: cb("pointer", "u64", "pointer", "u32", "u64"),
    method: "mknod",
    call: (h, ctx, parent, n, mode, rdev) =>
      h.ops.mknod(ctx, ino(parent), name(h, n), mode, Number(rdev)),
    reply: entry,
  }),
  mkdir: request({
    /** void (*mkdir)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) */
    def: cb("pointer", "u64", "pointer", "u32"),
    method: "mkdir",
    call: (h, ctx, parent, n, mode) => h.ops.mkdir(ctx, ino(parent), name(h, n), mode),
    reply: entry,
  }),
  unlink: nameOp("unlink"),
  rmdir: nameOp("rmdir"),
  symlink: request({
    /** void (*symlink)(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) */
    def: cb("pointer", "pointer", "u64", "pointer"),
    method: "symlink",
    call: (h, ctx, link, parent, n) => h.ops.symlink(ctx, ino(parent), name(h, n), name(h, link)),
    reply: entry,
  }),
  rename: request({
    /** void (*rename)(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned int flags) */
    def: cb("pointer", "u64", "pointer", "u64", "pointer", "u32"),
    method: "rename",
    call: (h, ctx, parent, n, newParent, newName, flags) =>
      h.ops.rename(ctx, ino(parent), name(h, n), ino(newParent), name(h, newName), flags),
    reply: ok,
  }),
  link: request({
    /** void (*link)(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) */
    def: cb("pointer", "u64", "u64", "pointer"),
    method: "link",
    call: (h, ctx, i, newParent, newName) =>
      h.ops.link(ctx, ino(i), ino(newParent), name(h, newName)),
    reply: entry,
  }),
  open: openOp("open"),
  read: request({
    def: READ_OP,
    method: "read",
    call: (h, ctx, i, size, off, fi) =>
      h.ops.read(ctx, ino(i), fiFhOf(fi), Number(off), Number(size)),
    reply: (h, req, bytes, _i, size) => data(h, req, bytes, size),
  }),
  write: request({
    /** void (*write)(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) */
    def: cb("pointer", "u64", "pointer", "usize", "i64", "pointer"),
    method: "write",
    call: (h, ctx, i, buf, size, off, fi) => {
      const n = Number(size);
      // With copiesWriteData, a view of libfuse's buffer: `write` copies it before it awaits.
      const bytes = n > 0 && buf !== null && h.ops.copiesWriteData === true
        ? new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(buf, n))
        : copyFromC(buf, n);
      return h.ops.write(ctx, ino(i), fiFhOf(fi), Number(off), bytes);
    },
    reply: (h, req, written) => count(h, req, written),
  }),
  flush: request({
    def: FI_OP,
    method: "flush",
    call: (h, ctx, i, fi) => h.ops.flush(ctx, ino(i), fiFhOf(fi), fiLockOwner(fi)),
    reply: ok,
  }),
  release: request({
    def: FI_OP,
    method: "release",
    call: (h, ctx, i, fi) =>
      h.ops.release(ctx, ino(i), fiFhOf(fi), fiLockOwner(fi), fiFlockRelease(fi)),
    reply: ok,
  }),
  fsync: fsyncOp("fsync"),
  opendir: openOp("opendir"),
  readdir: readdirOp(false),
  readdirplus: readdirOp(true),
  releasedir: request({
    def: FI_OP,
    method: "releasedir",
    call: (h, ctx, i, fi) => h.ops.releasedir(ctx, ino(i), fiFhOf(fi)),
    reply: ok,
  }),
  fsyncdir: fsyncOp("fsyncdir"),
  statfs: request({
    def: INO_OP,
    method: "statfs",
    call: (h, ctx, i) => h.ops.statfs(ctx, ino(i)),
    reply: (h, req, s) => {
      h.fuse.fuse_reply_statfs(req, statvfsStruct(s));
    },
  }),
  setxattr: request({
    /** void (*setxattr)(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags) */
    def: cb("pointer", "u64", "pointer", "pointer", "usize", "i32"),
    method: "setxattr",
    call: (h, ctx, i, n, value, size, flags) =>
      h.ops.setxattr(ctx, ino(i), name(h, n), copyFromC(value, Number(size)), flags),
    reply: ok,
  }),
  getxattr: request({
    /** void (*getxattr)(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) */
    def: cb("pointer", "u64", "pointer", "usize"),
    method: "getxattr",
    call: (h, ctx, i, n) => h.ops.getxattr(ctx, ino(i), name(h, n)),
    reply: (h, req, value, _i, _n, size) => xattr(h, req, Number(size), value),
  }),
  listxattr: request({
    /** void (*listxattr)(fuse_req_t req, fuse_ino_t ino, size_t size) */
    def: cb("pointer", "u64", "usize"),
    method: "listxattr",
    call: (h, ctx, i) => h.ops.listxattr(ctx, ino(i)),
    reply: (h, req, names, _i, size) => xattr(h, req, Number(size), cStringList(names)),
  }),
  removexattr: nameOp("removexattr"),
  access: request({
    /** void (*access)(fuse_req_t req, fuse_ino_t ino, int mask) */
    def: cb("pointer", "u64", "i32"),
    method: "access",
    call: (h, ctx, i, mask) => h.ops.access(ctx, ino(i), mask),
    reply: ok,
  }),
  create: request({
    /** void (*create)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) */
    def: cb("pointer", "u64", "pointer", "u32", "pointer"),
    method: "create",
    call: (h, ctx, parent, n, mode, fi) =>
      h.ops.create(ctx, ino(parent), name(h, n), mode, fiFlags(fi)),
    reply: (h, req, { attr, opened }) => {
      const e = h.structs.entry(attr, h.entryTimeout);
      h.fuse.fuse_reply_create(req, e, h.structs.fileInfo(opened, false));
    },
  }),
  getlk: request({
    /** void (*getlk)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock) */
    def: cb("pointer", "u64", "pointer", "pointer"),
    method: "getlk",
    call: (h, ctx, i, fi, lock) =>
      h.ops.getlk(ctx, ino(i), fiFhOf(fi), fiLockOwner(fi), readLock(lock)),
    reply: (h, req, found) => {
      h.fuse.fuse_reply_lock(req, lockStruct(found));
    },
  }),
  setlk: request({
    /** void (*setlk)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock, int sleep) */
    def: cb("pointer", "u64", "pointer", "pointer", "i32"),
    method: "setlk",
    call: (h, ctx, i, fi, lock, sleep) =>
      h.ops.setlk(ctx, ino(i), fiFhOf(fi), fiLockOwner(fi), readLock(lock), sleep !== 0),
    reply: ok,
    waits: true,
  }),
  flock: request({
    /** void (*flock)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op) */
    def: cb("pointer", "u64", "pointer", "i32"),
    method: "flock",
    call: (h, ctx, i, fi, op) => h.ops.flock(ctx, ino(i), fiFhOf(fi), fiLockOwner(fi), op),
    reply: ok,
    waits: true,
  }),
  fallocate: request({
    /** void (*fallocate)(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi) */
    def: cb("pointer", "u64", "i32", "i64", "i64", "pointer"),
    method: "fallocate",
    call: (h, ctx, i, mode, off, len, fi) =>
      h.ops.fallocate(ctx, ino(i), fiFhOf(fi), mode, Number(off), Number(len)),
    reply: ok,
  }),
  copy_file_range: request({
    /** void (*copy_file_range)(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len, int flags) */
    def: cb("pointer", "u64", "i64", "pointer", "u64", "i64", "pointer", "usize", "i32"),
    method: "copyFileRange",
    call: (h, ctx, inoIn, offIn, fiIn, inoOut, offOut, fiOut, len, flags) =>
      h.ops.copyFileRange(
        ctx,
        ino(inoIn),
        fiFhOf(fiIn),
        Number(offIn),
        ino(inoOut),
        fiFhOf(fiOut),
        Number(offOut),
        Number(len),
        flags,
      ),
    reply: (h, req, copied) => count(h, req, copied),
  }),
  lseek: request({
    /** void (*lseek)(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi) */
    def: cb("pointer", "u64", "i64", "i32", "pointer"),
    method: "lseek",
    call: (h, ctx, i, off, whence, fi) => h.ops.lseek(ctx, ino(i), fiFhOf(fi), Number(off), whence),
    reply: (h, req, pos) => {
      h.fuse.fuse_reply_lseek(req, BigInt(pos));
    },
  }),
};
