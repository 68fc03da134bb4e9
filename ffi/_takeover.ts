/**
 * Serving a FUSE connection that another process opened and initialised: the `/dev/fuse`
 * descriptor of a live mount, handed over by the daemon being upgraded or kept by a supervisor.
 *
 * libfuse 3.14 takes such a descriptor as the mountpoint `/dev/fd/N` (`fuse_session_mount` →
 * `fuse_mnt_parse_fuse_fd`: it only records the descriptor and mounts nothing). But the kernel
 * did its INIT handshake with the first daemon, and a new session answers every request `EIO`
 * until it has seen an INIT (`fuse_session_process_buf_int`: `if (!se->got_init) ... goto
 * reply_err`). So {@linkcode feedInit} hands the new session a synthetic INIT built from what the
 * first session was told ({@linkcode InitInfo}): `do_init` sets the protocol version, the
 * capabilities and the buffer size as they were, calls our `init`, sets `got_init`, and sends
 * its reply with a `unique` the kernel never issued; the kernel refuses that write with `ENOENT`,
 * which `fuse_send_msg` ignores by design ("ENOENT means the operation was interrupted").
 *
 * After a crash, requests the dead daemon had read and not answered would wait forever:
 * {@linkcode answerLost} answers them `EIO`. The kernel numbers requests of a connection in
 * steps of 2 and keeps those read but not answered in its processing list; a reply to a number
 * not there fails with `ENOENT` and changes nothing. So every even number below the first request
 * the new daemon reads (up to {@linkcode LOST_WINDOW} of them) gets an `EIO` reply.
 *
 * @module
 */

import type { LibC } from "../core/libc.ts";
import { CONN_INFO, FUSE_BUF, type FuseLib } from "./libfuse.ts";

/** What the kernel's INIT told the first session (read from `fuse_conn_info` in `init`). */
export interface InitInfo {
  /** Protocol major version (7). */
  major: number;
  /** Protocol minor version the kernel offered. */
  minor: number;
  /** libfuse's `FUSE_CAP_*` bits the kernel offered (`conn->capable`). */
  capable: number;
  /** The kernel's readahead limit. */
  maxReadahead: number;
}

/** Reads {@linkcode InitInfo} from the `fuse_conn_info` handed to `init` (before any change). */
export function readInitInfo(conn: DataView): InitInfo {
  return {
    major: conn.getUint32(CONN_INFO.protoMajor, true),
    minor: conn.getUint32(CONN_INFO.protoMinor, true),
    capable: conn.getUint32(CONN_INFO.capable, true),
    maxReadahead: conn.getUint32(CONN_INFO.maxReadahead, true),
  };
}

/** libfuse `FUSE_CAP_*` bit → kernel `FUSE_*` INIT flag (`do_init` in libfuse 3.14, inverted). */
const CAP_TO_KERNEL: [number, number][] = [
  [1 << 0, 1 << 0], // ASYNC_READ
  [1 << 1, 1 << 1], // POSIX_LOCKS
  [1 << 3, 1 << 3], // ATOMIC_O_TRUNC
  [1 << 4, 1 << 4], // EXPORT_SUPPORT
  [1 << 6, 1 << 6], // DONT_MASK
  [1 << 10, 1 << 10], // FLOCK_LOCKS
  [1 << 12, 1 << 12], // AUTO_INVAL_DATA
  [1 << 13, 1 << 13], // DO_READDIRPLUS
  [1 << 14, 1 << 14], // READDIRPLUS_AUTO
  [1 << 15, 1 << 15], // ASYNC_DIO
  [1 << 16, 1 << 16], // WRITEBACK_CACHE
  [1 << 17, 1 << 17], // NO_OPEN_SUPPORT
  [1 << 18, 1 << 18], // PARALLEL_DIROPS
  [1 << 19, 1 << 20], // POSIX_ACL
  [1 << 20, 1 << 19], // HANDLE_KILLPRIV
  [1 << 23, 1 << 23], // CACHE_SYMLINKS
  [1 << 24, 1 << 24], // NO_OPENDIR_SUPPORT
  [1 << 25, 1 << 25], // EXPLICIT_INVAL_DATA
];
/** `FUSE_MAX_PAGES`: without it libfuse would shrink its buffer below the kernel's max_write. */
const FUSE_MAX_PAGES = 1 << 22;
const FUSE_INIT = 26;
const IN_HEADER = 40;
const INIT_IN = 64;
/** The `unique` of the synthetic INIT: far above any number the kernel issues. */
const SYNTHETIC_UNIQUE = 1n << 62n;
/** How many request numbers below the first one read {@linkcode answerLost} answers. */
export const LOST_WINDOW = 4096;

/** The kernel INIT flags that give `capable` back in `do_init`. */
export function kernelFlags(capable: number): number {
  let flags = FUSE_MAX_PAGES;
  for (const [cap, k] of CAP_TO_KERNEL) if (capable & cap) flags |= k;
  return flags >>> 0;
}

/**
 * Feeds session `se` (mounted on a handed-over descriptor) a synthetic INIT as the kernel sent
 * it to the first session: `do_init` runs (and our `init` callback with it), and the session
 * serves requests from then on.
 */
export function feedInit(fuse: FuseLib, libc: LibC, se: Deno.PointerObject, info: InitInfo): void {
  const size = IN_HEADER + INIT_IN;
  const mem = libc.calloc(1n, BigInt(size));
  const buf = libc.calloc(1n, BigInt(FUSE_BUF.SIZE));
  if (mem === null || buf === null) throw new Error("Out of memory building the INIT request");
  try {
    const dv = new DataView(Deno.UnsafePointerView.getArrayBuffer(mem, size));
    dv.setUint32(0, size, true); // len
    dv.setUint32(4, FUSE_INIT, true); // opcode
    dv.setBigUint64(8, SYNTHETIC_UNIQUE, true);
    dv.setUint32(IN_HEADER + 0, info.major, true);
    dv.setUint32(IN_HEADER + 4, info.minor, true);
    dv.setUint32(IN_HEADER + 8, info.maxReadahead, true);
    dv.setUint32(IN_HEADER + 12, kernelFlags(info.capable), true);
    const bdv = new DataView(Deno.UnsafePointerView.getArrayBuffer(buf, FUSE_BUF.SIZE));
    bdv.setBigUint64(FUSE_BUF.size, BigInt(size), true);
    bdv.setBigUint64(FUSE_BUF.mem, BigInt(Deno.UnsafePointer.value(mem)), true);
    bdv.setInt32(FUSE_BUF.fd, -1, true);
    fuse.fuse_session_process_buf(se, buf);
  } finally {
    libc.free(mem);
    libc.free(buf);
  }
}

/** The `unique` of the request in the receive buffer `fbuf` (a `struct fuse_buf` in memory). */
export function requestUnique(fbuf: Deno.PointerObject): bigint {
  const mem = new Deno.UnsafePointerView(fbuf).getBigUint64(FUSE_BUF.mem);
  if (mem === 0n) return 0n;
  return new Deno.UnsafePointerView(Deno.UnsafePointer.create(mem)!).getBigUint64(8);
}

/**
 * Answers `EIO` to every request of the connection on `fd` that a dead daemon read and never
 * answered: the even request numbers below `first` (the first one this daemon read), down to
 * {@linkcode LOST_WINDOW} of them. Returns how many the kernel took (were really waiting).
 */
export function answerLost(libc: LibC, fd: number, first: bigint): number {
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 16, true);
  dv.setInt32(4, -5, true); // -EIO
  let answered = 0;
  const lowest = first > BigInt(2 * LOST_WINDOW) ? first - BigInt(2 * LOST_WINDOW) : 2n;
  for (let u = (first - 2n) & ~1n; u >= lowest; u -= 2n) {
    dv.setBigUint64(8, u, true);
    if (Number(libc.write(fd, out, 16n)) === 16) answered++;
  }
  return answered;
}
