/**
 * Unix-domain sockets that carry a file descriptor (`SCM_RIGHTS`), through libc: Deno's own unix
 * sockets cannot pass descriptors. A smooth upgrade hands the `/dev/fuse` descriptor of a live
 * mount to the daemon that takes it over, and a supervisor keeps a duplicate of it.
 *
 * Sockets are `SOCK_SEQPACKET`: each `sendmsg` is one message. A message of ours is JSON, sent as
 * frames of at most {@linkcode FRAME_BYTES} (a one-byte "more follows" flag, then the bytes); the
 * descriptor, if any, rides on the last frame. Every wait (`accept`, a message) is a `poll` off
 * the JS thread with a timeout, after which the call itself cannot block.
 *
 * Layouts (glibc, x86_64): `struct sockaddr_un` is `{u16 family; char path[108]}`;
 * `struct msghdr` (56 bytes) has `msg_iov` @16, `msg_iovlen` @24, `msg_control` @32,
 * `msg_controllen` @40, `msg_flags` @48; `struct cmsghdr` is `{size_t len; int level; int type}`
 * followed by the data @16, so one descriptor takes `CMSG_SPACE(4)` = 24 bytes.
 *
 * @module
 */

import { libraryPath, loadLibc } from "../core/libc.ts";

const SYMBOLS = {
  /** int socket(int domain, int type, int protocol); */
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** int bind(int fd, const struct sockaddr *addr, socklen_t len); */
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /** int listen(int fd, int backlog); */
  listen: { parameters: ["i32", "i32"], result: "i32" },
  /** int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags); */
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  /** int connect(int fd, const struct sockaddr *addr, socklen_t len); */
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /** ssize_t sendmsg(int fd, const struct msghdr *msg, int flags); */
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  /** ssize_t recvmsg(int fd, struct msghdr *msg, int flags); */
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  /** int close(int fd); */
  close: { parameters: ["i32"], result: "i32" },
  /** int dup(int fd); */
  dup: { parameters: ["i32"], result: "i32" },
  /** int poll(struct pollfd *fds, nfds_t n, int timeout); — off the JS thread */
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  /** ssize_t write(int fd, const void *buf, size_t count); */
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** int *__errno_location(void); */
  __errno_location: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

type Sym = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let lib: Sym | undefined;

/** The libc symbols of this module (opened once). */
export function sockLibc(): Sym {
  return lib ??= Deno.dlopen(libraryPath("SLAYERFS_LIBC", "libc.so.6"), SYMBOLS).symbols;
}

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_CMSG_CLOEXEC = 0x40000000;
const MSG_NOSIGNAL = 0x4000;
const POLLIN = 1;
const EINTR = 4;
/** The payload bytes of one frame. */
export const FRAME_BYTES = 60_000;
const CMSG_SPACE_FD = 24;

/** The calling thread's `errno` (read right after a failed call on the JS thread). */
function errno(): number {
  const p = sockLibc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

function fail(what: string): never {
  throw new Error(`${what} failed (errno ${errno()})`);
}

function sockaddr(path: string): Uint8Array {
  const bytes = new TextEncoder().encode(path);
  if (bytes.length > 107) throw new Error(`Socket path "${path}" is longer than 107 bytes`);
  const addr = new Uint8Array(110);
  addr[0] = AF_UNIX;
  addr.set(bytes, 2);
  return addr;
}

/** Creates a listening socket at `path` (an old socket file there is replaced). */
export function listenUnix(path: string): number {
  const c = sockLibc();
  try {
    Deno.removeSync(path);
  } catch { /* none */ }
  const fd = c.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  const addr = sockaddr(path);
  if (c.bind(fd, addr, addr.length) !== 0 || c.listen(fd, 8) !== 0) {
    const e = errno();
    c.close(fd);
    throw new Error(`Cannot listen on "${path}" (errno ${e})`);
  }
  Deno.chmodSync(path, 0o600);
  return fd;
}

/** Connects to the socket at `path`; throws when nothing listens there. */
export function connectUnix(path: string): number {
  const c = sockLibc();
  const fd = c.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  const addr = sockaddr(path);
  if (c.connect(fd, addr, addr.length) !== 0) {
    const e = errno();
    c.close(fd);
    throw new Error(`Cannot connect to "${path}" (errno ${e})`);
  }
  return fd;
}

/** Waits until `fd` is readable (or hung up); false after `timeoutMs` (-1: no limit). */
export async function readable(fd: number, timeoutMs: number): Promise<boolean> {
  const pfd = new Uint8Array(8);
  const dv = new DataView(pfd.buffer);
  dv.setInt32(0, fd, true);
  dv.setInt16(4, POLLIN, true);
  const deadline = timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
  while (true) {
    const left = deadline === Infinity ? -1 : Math.max(0, deadline - Date.now());
    // Slices of at most a second, so a closed process does not wait on a parked thread.
    const n = await sockLibc().poll(pfd, 1n, left < 0 ? 1000 : Math.min(left, 1000));
    if (n > 0) return true;
    if (n < 0 && errno() !== EINTR) return false;
    if (Date.now() >= deadline) return false;
  }
}

/** Accepts one connection on listening socket `fd`, waiting up to `timeoutMs` (-1: forever). */
export async function acceptUnix(fd: number, timeoutMs = -1): Promise<number | undefined> {
  if (!await readable(fd, timeoutMs)) return undefined;
  const conn = sockLibc().accept4(fd, null, null, SOCK_CLOEXEC);
  return conn < 0 ? undefined : conn;
}

/** Memory from libc for what a struct points at (a JS buffer could move before the call). */
class CMem {
  readonly ptr: Deno.PointerObject;
  readonly view: Uint8Array;
  constructor(size: number) {
    const p = loadLibc().calloc(1n, BigInt(size));
    if (p === null) throw new Error("Out of memory");
    this.ptr = p;
    this.view = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, size));
  }
  get addr(): bigint {
    return BigInt(Deno.UnsafePointer.value(this.ptr));
  }
  free(): void {
    loadLibc().free(this.ptr);
  }
}

/** A `struct msghdr` with one iovec over `data` and a control buffer over `control`. */
function msghdr(
  data: CMem,
  dataLen: number,
  iov: CMem,
  control?: CMem,
  controlLen = 0,
): Uint8Array {
  const idv = new DataView(iov.view.buffer);
  idv.setBigUint64(0, data.addr, true);
  idv.setBigUint64(8, BigInt(dataLen), true);
  const msg = new Uint8Array(56);
  const mdv = new DataView(msg.buffer);
  mdv.setBigUint64(16, iov.addr, true);
  mdv.setBigUint64(24, 1n, true);
  if (control) {
    mdv.setBigUint64(32, control.addr, true);
    mdv.setBigUint64(40, BigInt(controlLen), true);
  }
  return msg;
}

/** Sends `value` as JSON on `sock`, with descriptor `fd` if given. */
export function sendMessage(sock: number, value: unknown, fd?: number): void {
  const c = sockLibc();
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  const data = new CMem(1 + FRAME_BYTES);
  const iov = new CMem(16);
  const control = new CMem(CMSG_SPACE_FD);
  try {
    for (let off = 0;; off += FRAME_BYTES) {
      const chunk = bytes.subarray(off, off + FRAME_BYTES);
      const last = off + FRAME_BYTES >= bytes.length;
      data.view[0] = last ? 0 : 1;
      data.view.set(chunk, 1);
      let msg: Uint8Array;
      if (last && fd !== undefined) {
        const cdv = new DataView(control.view.buffer);
        cdv.setBigUint64(0, 20n, true); // CMSG_LEN(sizeof(int))
        cdv.setInt32(8, SOL_SOCKET, true);
        cdv.setInt32(12, SCM_RIGHTS, true);
        cdv.setInt32(16, fd, true);
        msg = msghdr(data, 1 + chunk.length, iov, control, CMSG_SPACE_FD);
      } else {
        msg = msghdr(data, 1 + chunk.length, iov);
      }
      const n = Number(c.sendmsg(sock, msg, MSG_NOSIGNAL));
      if (n !== 1 + chunk.length) fail("sendmsg");
      if (last) break;
    }
  } finally {
    data.free();
    iov.free();
    control.free();
  }
}

/** A message received by {@linkcode recvMessage}. */
export interface Received<T> {
  /** The JSON value. */
  value: T;
  /** The descriptor that came with it (close-on-exec in this process). */
  fd?: number;
}

/**
 * Receives one message from `sock`, waiting up to `timeoutMs` for each frame; `undefined` when
 * the peer closed the connection (or the wait timed out).
 */
export async function recvMessage<T>(
  sock: number,
  timeoutMs = -1,
): Promise<Received<T> | undefined> {
  const c = sockLibc();
  const parts: Uint8Array[] = [];
  let fd: number | undefined;
  const data = new CMem(1 + FRAME_BYTES);
  const iov = new CMem(16);
  const control = new CMem(CMSG_SPACE_FD * 2);
  try {
    while (true) {
      if (!await readable(sock, timeoutMs)) return undefined;
      control.view.fill(0);
      const msg = msghdr(data, 1 + FRAME_BYTES, iov, control, control.view.length);
      const n = Number(c.recvmsg(sock, msg, MSG_CMSG_CLOEXEC));
      if (n < 0 && errno() === EINTR) continue;
      if (n <= 0) return undefined;
      const mdv = new DataView(msg.buffer);
      const cdv = new DataView(control.view.buffer);
      if (
        mdv.getBigUint64(40, true) >= 20n && cdv.getInt32(8, true) === SOL_SOCKET &&
        cdv.getInt32(12, true) === SCM_RIGHTS
      ) {
        fd = cdv.getInt32(16, true);
      }
      parts.push(data.view.slice(1, n));
      if (data.view[0] === 0) break;
    }
  } finally {
    data.free();
    iov.free();
    control.free();
  }
  const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  const value = JSON.parse(new TextDecoder().decode(all)) as T;
  return fd !== undefined ? { value, fd } : { value };
}

/** Closes descriptor `fd` (ignoring errors). */
export function closeFd(fd: number): void {
  if (fd >= 0) sockLibc().close(fd);
}

/** Duplicates descriptor `fd`. */
export function dupFd(fd: number): number {
  const d = sockLibc().dup(fd);
  if (d < 0) fail("dup");
  return d;
}
