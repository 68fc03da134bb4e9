/**
 * The C structs the adapter reads and writes: `struct stat`, `fuse_entry_param`,
 * `fuse_file_info`, `struct flock`, `struct statvfs`, `fuse_ctx`, the `setattr` stat and the
 * readdir buffer. Layouts are in `libfuse.ts`.
 *
 * Reply structs are written into scratch buffers ({@linkcode ReplyStructs}) that C copies during
 * the (synchronous) `fuse_reply_*` call; the readdir buffer ({@linkcode DirBuffer}) is libc
 * memory, since `fuse_add_direntry` writes into it.
 *
 * @module
 */

import { Errno, FsError } from "../core/errno.ts";
import type { LibC } from "../core/libc.ts";
import type {
  Attr,
  Ctx,
  DirEntry,
  Fh,
  Name,
  Opened,
  PosixLock,
  SetAttr,
  StatFs,
} from "../core/types.ts";
import { putCString } from "./_cstring.ts";
import {
  ENTRY,
  FILE_INFO,
  FLOCK,
  FUSE_CTX,
  FUSE_SET_ATTR,
  type FuseLib,
  STAT,
  STATVFS,
} from "./libfuse.ts";

const BIG_32 = 4294967296;
const BLKSIZE = 4096;
/** The smallest readdir buffer allocated (the kernel asks for 4 KiB to 128 KiB). */
const MIN_DIR_BUFFER = 128 * 1024;

/** Writes a non-negative integer (or any integer via BigInt) as a little-endian 64-bit value. */
export function set64(dv: DataView, off: number, n: number): void {
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
export function get64(dv: DataView, off: number): number {
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
  set64(dv, base + STAT.blocks, Math.ceil((attr.allocated ?? attr.size) / 512));
  set64(dv, base + STAT.atime, attr.atime.sec);
  set64(dv, base + STAT.atime + 8, attr.atime.nsec);
  set64(dv, base + STAT.mtime, attr.mtime.sec);
  set64(dv, base + STAT.mtime + 8, attr.mtime.nsec);
  set64(dv, base + STAT.ctime, attr.ctime.sec);
  set64(dv, base + STAT.ctime + 8, attr.ctime.nsec);
}

/** The fields of `setattr`'s `struct stat` that `toSet` (`FUSE_SET_ATTR_*`) names. */
export function readSetAttr(attrPtr: Deno.PointerValue, toSet: number): SetAttr {
  const set: SetAttr = {};
  if (attrPtr === null) return set;
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
  return set;
}

// ---- fuse_file_info -----------------------------------------------------------------------------

/** `fi->fh`, or `undefined` without `fi`. */
export function fiFh(fi: Deno.PointerValue): Fh | undefined {
  if (fi === null) return undefined;
  return Number(new Deno.UnsafePointerView(fi).getBigUint64(FILE_INFO.fh)) as Fh;
}

/** `fi->fh`, or 0 without `fi`. */
export function fiFhOf(fi: Deno.PointerValue): Fh {
  return fiFh(fi) ?? (0 as Fh);
}

/** `fi->lock_owner`, or 0 without `fi`. */
export function fiLockOwner(fi: Deno.PointerValue): bigint {
  if (fi === null) return 0n;
  return new Deno.UnsafePointerView(fi).getBigUint64(FILE_INFO.lockOwner);
}

/** `fi->flags` (the `open(2)` flags), or 0 without `fi`. */
export function fiFlags(fi: Deno.PointerValue): number {
  return fi === null ? 0 : new Deno.UnsafePointerView(fi).getInt32(FILE_INFO.flags);
}

/** `fi->flock_release`: the kernel asks to drop the owner's flock locks. */
export function fiFlockRelease(fi: Deno.PointerValue): boolean {
  return fi !== null &&
    (new Deno.UnsafePointerView(fi).getUint32(FILE_INFO.bits) & FILE_INFO.FLOCK_RELEASE) !== 0;
}

// ---- struct flock, struct statvfs ---------------------------------------------------------------

/** Reads a `struct flock` (`l_len` 0 becomes `end: Infinity`). */
export function readLock(lockPtr: Deno.PointerValue): PosixLock {
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

/** A `struct flock` for `lock` (`end: Infinity` becomes `l_len` 0). */
export function lockStruct(lock: PosixLock): Uint8Array {
  const buf = new Uint8Array(FLOCK.SIZE);
  const dv = new DataView(buf.buffer);
  dv.setInt16(FLOCK.type, lock.type, true);
  dv.setInt16(FLOCK.whence, 0, true);
  set64(dv, FLOCK.start, lock.start);
  set64(dv, FLOCK.len, lock.end === Infinity ? 0 : lock.end - lock.start + 1);
  dv.setInt32(FLOCK.pid, lock.pid, true);
  return buf;
}

/** A `struct statvfs` for `s`. */
export function statvfsStruct(s: StatFs): Uint8Array {
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
  return buf;
}

// ---- fuse_ctx -----------------------------------------------------------------------------------

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
  /** Whether the kernel interrupted the request (set by `readCtx` when libfuse can tell). */
  interrupted?: () => boolean;

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

/**
 * The caller of `req` (`fuse_req_ctx`); its groups are read lazily, once. Its `interrupted()`
 * asks libfuse whether an INTERRUPT arrived for `req` (lock waits poll it; valid only until the
 * request is answered).
 */
export function readCtx(fuse: FuseLib, req: Deno.PointerObject): Ctx {
  const p = fuse.fuse_req_ctx(req);
  if (p === null) return new RequestCtx(0, 0, 0, 0o022);
  const v = new Deno.UnsafePointerView(p);
  const ctx = new RequestCtx(
    v.getUint32(FUSE_CTX.uid),
    v.getUint32(FUSE_CTX.gid),
    v.getUint32(FUSE_CTX.pid),
    v.getUint32(FUSE_CTX.umask),
  );
  const interrupted = fuse.fuse_req_interrupted;
  if (interrupted) ctx.interrupted = () => interrupted(req) !== 0;
  return ctx;
}

// ---- scratch reply structs ----------------------------------------------------------------------

/**
 * Scratch buffers for the structs of a reply, reused by every reply: each method refills one and
 * returns it, valid until the next call of that method.
 */
export class ReplyStructs {
  readonly #attrTimeout: number;
  readonly #entry = new Uint8Array(ENTRY.SIZE);
  readonly #entryDv = new DataView(this.#entry.buffer);
  readonly #stat = new Uint8Array(STAT.SIZE);
  readonly #statDv = new DataView(this.#stat.buffer);
  readonly #fi = new Uint8Array(FILE_INFO.SIZE);
  readonly #fiDv = new DataView(this.#fi.buffer);
  readonly #name = new Uint8Array(8192);

  /** Scratch structs whose attributes the kernel may cache for `attrTimeout` seconds. */
  constructor(attrTimeout: number) {
    this.#attrTimeout = attrTimeout;
  }

  /** A `fuse_entry_param` for `attr` (`null`: a negative entry, node id 0). */
  entry(attr: Attr | null, entryTimeout: number): Uint8Array {
    const e = this.#entry;
    e.fill(0);
    if (attr !== null) {
      set64(this.#entryDv, ENTRY.ino, attr.ino);
      set64(this.#entryDv, ENTRY.generation, 1);
      writeStat(this.#entryDv, ENTRY.attr, attr);
      this.#entryDv.setFloat64(ENTRY.attrTimeout, this.#attrTimeout, true);
    }
    this.#entryDv.setFloat64(ENTRY.entryTimeout, entryTimeout, true);
    return e;
  }

  /** The `fuse_entry_param` of a readdirplus entry; without `attr`, node id 0 (not looked up). */
  direntPlus(entry: DirEntry, entryTimeout: number): Uint8Array {
    if (entry.attr !== undefined) return this.entry(entry.attr, entryTimeout);
    const e = this.entry(null, 0);
    set64(this.#entryDv, ENTRY.attr + STAT.ino, entry.ino);
    this.#entryDv.setUint32(ENTRY.attr + STAT.mode, entry.type, true);
    return e;
  }

  /** A `struct stat` for `attr`. */
  stat(attr: Attr): Uint8Array {
    this.#stat.fill(0);
    writeStat(this.#statDv, 0, attr);
    return this.#stat;
  }

  /** The `struct stat` of a plain readdir entry: its inode and type only. */
  dirent(entry: DirEntry): Uint8Array {
    this.#stat.fill(0);
    set64(this.#statDv, STAT.ino, entry.ino);
    this.#statDv.setUint32(STAT.mode, entry.type, true);
    return this.#stat;
  }

  /** The `fuse_file_info` of an open reply. */
  fileInfo(opened: Opened, dir: boolean): Uint8Array {
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

  /** `name` NUL-terminated. @throws {FsError} ENAMETOOLONG above 8 KiB. */
  name(name: Name): Uint8Array {
    putCString(name, this.#name);
    return this.#name;
  }
}

/** The libc buffer readdir replies are packed into (grown on demand, kept for the session). */
export class DirBuffer {
  readonly #fuse: FuseLib;
  readonly #libc: LibC;
  readonly #structs: ReplyStructs;
  readonly #entryTimeout: number;
  #ptr: Deno.PointerObject | null = null;
  #size = 0;

  /** A buffer that packs entries with `fuse_add_direntry(_plus)`. */
  constructor(fuse: FuseLib, libc: LibC, structs: ReplyStructs, entryTimeout: number) {
    this.#fuse = fuse;
    this.#libc = libc;
    this.#structs = structs;
    this.#entryTimeout = entryTimeout;
  }

  /** The buffer's address (valid after {@linkcode DirBuffer.pack}). */
  get pointer(): Deno.PointerObject | null {
    return this.#ptr;
  }

  #reserve(size: number): Deno.PointerObject {
    if (this.#ptr === null || this.#size < size) {
      this.free();
      const cap = Math.max(size, MIN_DIR_BUFFER);
      const p = this.#libc.malloc(BigInt(cap));
      if (p === null) throw new FsError(Errno.ENOMEM, "Cannot allocate a readdir buffer");
      this.#ptr = p;
      this.#size = cap;
    }
    return this.#ptr;
  }

  /**
   * Packs `entries` in order, as many as fit in `size` bytes, passing each entry's `next` as its
   * offset, and returns the bytes used.
   */
  pack(req: Deno.PointerObject, size: number, entries: DirEntry[], plus: boolean): number {
    const buf = this.#reserve(size);
    const structs = this.#structs;
    let used = 0;
    for (const entry of entries) {
      const name = structs.name(entry.name);
      const room = size - used;
      const at = used === 0 ? buf : Deno.UnsafePointer.offset(buf, used);
      const len = Number(
        plus
          ? this.#fuse.fuse_add_direntry_plus(
            req,
            at,
            BigInt(room),
            name,
            structs.direntPlus(entry, this.#entryTimeout),
            BigInt(entry.next),
          )
          : this.#fuse.fuse_add_direntry(
            req,
            at,
            BigInt(room),
            name,
            structs.dirent(entry),
            BigInt(entry.next),
          ),
      );
      if (len > room) break;
      used += len;
    }
    return used;
  }

  /** Frees the buffer (idempotent). */
  free(): void {
    if (this.#ptr !== null) this.#libc.free(this.#ptr);
    this.#ptr = null;
    this.#size = 0;
  }
}
