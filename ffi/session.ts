/**
 * Mounting an {@linkcode FsOps} through libfuse3: {@linkcode mountFs} returns a
 * {@linkcode FuseSession} that serves requests until it is unmounted.
 *
 * Two loops (see `README.md`, "Decisions"). `"mt"`, the library default, is libfuse's own
 * `fuse_session_loop_mt`, run off the JS thread: its worker threads read `/dev/fuse` and call
 * thread-safe callbacks, which run on the JS thread, start the operation and return. `"js"`, the
 * CLI daemon's default, reads the non-blocking `/dev/fuse` fd on the JS thread and dispatches each
 * request itself; when the fd is empty it keeps looking for up to `spinUs` (while every request in
 * hand is answered, or for a few hundred microtask turns of one that is not) and then awaits an
 * off-thread `poll`. That wait runs on Deno's blocking thread
 * pool, so a process that serves with `"js"` must not also fill that pool with calls into its own
 * mount. Either way the reply is sent from the JS thread when the operation's promise settles.
 *
 * @module
 */

import type { FsOps } from "../core/fs_ops.ts";
import { type LibC, loadLibc } from "../core/libc.ts";
import { setMayBlock } from "../core/_io_gate.ts";
import { getLog } from "../core/log.ts";
import { cString } from "./_cstring.ts";
import { FuseAdapter, type OpStat } from "./adapter.ts";
import { FUSE_ARGS, FUSE_BUF, type FuseLib, LIBC, loadLibfuse, OPS_SIZE } from "./libfuse.ts";
import { forceUnmount, mountInfo, resolveMountpoint } from "./mounts.ts";
import { answerLost, feedInit, type InitInfo, requestUnique } from "./_takeover.ts";
import { mountOptionList, type MountOptions } from "./_mount_options.ts";

export { mountOptionList, type MountOptions } from "./_mount_options.ts";

const log = getLog("fuse");

const INIT_TIMEOUT_MS = 10_000;

/** A `struct fuse_args` with its argv in libc memory. */
class CArgs {
  readonly ptr: Deno.PointerObject;
  readonly #libc: LibC;
  readonly #owned: Deno.PointerObject[] = [];

  constructor(libc: LibC, argv: string[]) {
    this.#libc = libc;
    const strings = argv.map((a) => this.#strdup(a));
    const vec = this.#alloc((argv.length + 1) * 8);
    const vdv = new DataView(Deno.UnsafePointerView.getArrayBuffer(vec, (argv.length + 1) * 8));
    strings.forEach((p, i) => vdv.setBigUint64(i * 8, BigInt(Deno.UnsafePointer.value(p)), true));
    vdv.setBigUint64(argv.length * 8, 0n, true);
    this.ptr = this.#alloc(FUSE_ARGS.SIZE);
    const dv = new DataView(Deno.UnsafePointerView.getArrayBuffer(this.ptr, FUSE_ARGS.SIZE));
    dv.setInt32(FUSE_ARGS.argc, argv.length, true);
    dv.setBigUint64(FUSE_ARGS.argv, BigInt(Deno.UnsafePointer.value(vec)), true);
    dv.setInt32(FUSE_ARGS.allocated, 0, true);
  }

  #alloc(size: number): Deno.PointerObject {
    const p = this.#libc.calloc(1n, BigInt(size));
    if (p === null) throw new Error("Out of memory building fuse_args");
    this.#owned.push(p);
    return p;
  }

  #strdup(s: string): Deno.PointerObject {
    const bytes = cString(s);
    const p = this.#alloc(bytes.length);
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, bytes.length)).set(bytes);
    return p;
  }

  /** Frees what libfuse allocated while parsing (`fuse_opt_free_args`) and our own memory. */
  free(fuse: FuseLib): void {
    fuse.fuse_opt_free_args(this.ptr);
    for (const p of this.#owned) this.#libc.free(p);
    this.#owned.length = 0;
  }
}

/** Resolves to `true` if `promise` settles within `ms`, else `false`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Raises the readahead of the FUSE connection's bdi `device` (best effort). */
function raiseReadahead(device: string | undefined, kb: number): void {
  if (kb <= 0 || device === undefined) return;
  try {
    const path = `/sys/class/bdi/${device}/read_ahead_kb`;
    const current = Number(Deno.readTextFileSync(path).trim());
    if (current < kb) Deno.writeTextFileSync(path, `${kb}\n`);
  } catch {
    // Not permitted or no such bdi: buffered reads stay at the kernel's default readahead.
  }
}

/**
 * A mounted filesystem being served. Unmount it with {@linkcode FuseSession.unmount} or
 * `await using`.
 */
export class FuseSession implements AsyncDisposable {
  /** The absolute mount point. */
  readonly mountpoint: string;
  /** Resolves when the session has ended and all its resources are released. */
  readonly closed: Promise<void>;

  readonly #fuse: FuseLib;
  readonly #libc: LibC;
  readonly #se: Deno.PointerObject;
  readonly #adapter: FuseAdapter;
  readonly #ops: FsOps;
  readonly #loopKind: "js" | "mt";
  readonly #spinUs: number;
  readonly #timeoutMs: number;
  #loop: Promise<void> = Promise.resolve();
  #loopEnded = false;
  #stopping = false;
  #teardown: Promise<void> | undefined;
  #resolveClosed!: () => void;
  #wakeRead = -1;
  #wakeWrite = -1;
  /** Stopped for a handover ({@linkcode FuseSession.handOver}): the loop ends, nothing closes. */
  #pausing = false;
  /** Served on a handed-over descriptor: libfuse did not mount, so it cannot unmount either. */
  #external = false;
  /** Answer the requests a dead daemon left (at the first request read). */
  #answerLost = false;
  /** The connection's `major:minor`, read from mountinfo right after mounting. */
  device: string | undefined;
  /** What the kernel's INIT offered (for a later takeover of this connection). */
  initInfo: InitInfo | undefined;

  /** @internal Use {@linkcode mountFs}. */
  constructor(
    fuse: FuseLib,
    libc: LibC,
    se: Deno.PointerObject,
    adapter: FuseAdapter,
    ops: FsOps,
    mountpoint: string,
    loop: "js" | "mt",
    timeoutMs: number,
    spinUs: number,
  ) {
    this.#fuse = fuse;
    this.#libc = libc;
    this.#se = se;
    this.#adapter = adapter;
    this.#ops = ops;
    this.mountpoint = mountpoint;
    this.#loopKind = loop;
    this.#timeoutMs = timeoutMs;
    this.#spinUs = spinUs;
    this.closed = new Promise((r) => this.#resolveClosed = r);
  }

  /** Per-operation request counts and latency (see `FuseAdapter.opStats`). */
  opStats(): Record<string, OpStat> {
    return this.#adapter.opStats();
  }

  /**
   * Makes the kernel forget entry `name` (a byte string) of directory `parent` and the
   * directory's cached attributes, so that a name made or removed outside a request (a clone) is
   * seen at once instead of after `entry_timeout`/`negative_timeout`. The call runs on a worker
   * thread (the kernel may wait for a request of that directory, which this thread answers).
   */
  async invalidateEntry(parent: number, name: string): Promise<void> {
    if (this.#stopping) return;
    const buf = new Uint8Array(name.length + 1);
    for (let i = 0; i < name.length; i++) buf[i] = name.charCodeAt(i);
    // -ENOENT: the kernel had nothing cached under that name.
    await this.#fuse.fuse_lowlevel_notify_inval_entry(
      this.#se,
      BigInt(parent),
      buf,
      BigInt(name.length),
    );
  }
  /**
   * Puts `bytes` into the kernel's page cache of file `ino` at `offset` (`FUSE_NOTIFY_STORE`; see
   * `core/_read_around.ts`), on a worker thread; resolves to 0 or a negative errno. Never with
   * `writebackCache`: the kernel's dirty pages would be overwritten.
   */
  storePages(ino: number, offset: number, bytes: Uint8Array): Promise<number> {
    if (this.#stopping) return Promise.resolve(-107); // ENOTCONN
    return this.#adapter.storePages(ino, offset, bytes);
  }

  /** Requests currently being served. */
  get pending(): number {
    return this.#adapter.pending;
  }

  /** @internal Starts the request loop. */
  start(): void {
    const run = this.#loopKind === "mt" ? this.#mtLoop() : this.#jsLoop();
    this.#loopEnded = false;
    this.#loop = run.catch((err) => {
      log.error("The FUSE request loop failed: {error}", { error: err });
    }).finally(() => {
      this.#loopEnded = true;
      // The loop can end on its own (an external `fusermount3 -u`): release everything then.
      if (!this.#pausing) void this.unmount();
    });
  }

  /** @internal Marks the session as served on a handed-over descriptor. */
  adopted(answerLost: boolean): void {
    this.#external = true;
    this.#answerLost = answerLost;
  }

  /** The `/dev/fuse` descriptor of the connection. */
  get fd(): number {
    return this.#fuse.fuse_session_fd(this.#se);
  }

  /**
   * Stops reading requests at a request boundary and waits (up to `timeoutMs`) until every
   * request read is answered, for another process to take the connection over; the mount stays.
   * Then either that process serves it and this one exits without unmounting, or
   * {@linkcode FuseSession.resume} goes on serving. Only for the `"js"` loop. Returns the
   * descriptor; throws (still serving) if the requests did not finish in time.
   */
  async handOver(timeoutMs: number): Promise<number> {
    if (this.#loopKind !== "js") {
      throw new Error('A handover needs the "js" request loop (mount option loop=mt is set)');
    }
    if (this.#stopping || this.#pausing) throw new Error("The session is stopping");
    this.#pausing = true;
    this.#wake();
    const stopped = await within(this.#loop, timeoutMs) &&
      await within(this.#adapter.idle(), timeoutMs) && this.#adapter.pending === 0;
    if (!stopped) {
      this.resume();
      throw new Error(`Requests still running after ${timeoutMs} ms (a lock wait?)`);
    }
    return this.fd;
  }

  /** Serves again after a {@linkcode FuseSession.handOver} that was not completed. */
  resume(): void {
    if (!this.#pausing || this.#stopping) return;
    this.#pausing = false;
    if (this.#loopEnded) this.start();
  }

  async #jsLoop(): Promise<void> {
    const fuse = this.#fuse;
    const libc = this.#libc;
    const se = this.#se;
    const fd = fuse.fuse_session_fd(se);
    const flags = libc.fcntl(fd, LIBC.F_GETFL, 0);
    if (flags < 0 || libc.fcntl(fd, LIBC.F_SETFL, flags | LIBC.O_NONBLOCK) < 0) {
      throw new Error("Cannot make /dev/fuse non-blocking");
    }
    if (this.#wakeRead < 0) {
      const pipe = new Int32Array(2);
      if (libc.pipe2(pipe, LIBC.O_CLOEXEC | LIBC.O_NONBLOCK) !== 0) {
        throw new Error("Cannot create the wake-up pipe");
      }
      this.#wakeRead = pipe[0]!;
      this.#wakeWrite = pipe[1]!;
    } else {
      const drain = new Uint8Array(64);
      while (Number(libc.read(this.#wakeRead, drain, 64n)) > 0) { /* old wake-ups */ }
    }
    const fbuf = libc.calloc(1n, BigInt(FUSE_BUF.SIZE));
    const pfds = libc.calloc(2n, BigInt(LIBC.POLLFD_SIZE));
    if (fbuf === null || pfds === null) throw new Error("Out of memory starting the loop");
    const pdv = new DataView(Deno.UnsafePointerView.getArrayBuffer(pfds, 2 * LIBC.POLLFD_SIZE));
    pdv.setInt32(0, fd, true);
    pdv.setInt16(4, LIBC.POLLIN, true);
    pdv.setInt32(8, this.#wakeRead, true);
    pdv.setInt16(12, LIBC.POLLIN, true);
    const BURST = 32;
    const CHECK_TURNS = 16;
    const BUSY_TURNS = 512;
    const spinMs = this.#spinUs / 1000;
    // Requests are served one after another on this thread: while one is all it has in hand, a
    // local disk read may wait here rather than on a worker thread (core/_io_gate.ts).
    const adapter = this.#adapter;
    const undoGate = setMayBlock(() => adapter.pending <= 1);
    try {
      outer: while (!this.#stopping && !this.#pausing) {
        let spinUntil = 0;
        let busyTurns = 0;
        for (let n = 0; n < BURST && !this.#pausing; n++) {
          const res = fuse.fuse_session_receive_buf(se, fbuf);
          if (res > 0) {
            if (this.#answerLost) {
              this.#answerLost = false;
              const lost = answerLost(libc, fd, requestUnique(fbuf));
              if (lost) log.warn("Answered EIO to {lost} requests the dead daemon left", { lost });
            }
            fuse.fuse_session_process_buf(se, fbuf);
            spinUntil = 0;
            busyTurns = 0;
            continue;
          }
          if (res === -LIBC.EINTR) continue;
          if (res === -LIBC.EAGAIN) {
            // A client usually sends its next request right after our reply (a create is a
            // LOOKUP, CREATE, WRITE, FLUSH, RELEASE in a row): let the replies go out, then look
            // again for up to `spinUs` before parking in poll, which costs two thread switches
            // per request. (A `ppoll` or `poll` on this thread instead of looking again was
            // tried, issue #13: less CPU, but on an idle VM the kernel's wake-up of the sleeping
            // thread made small-file creates, reads and deletes 1.3-1.8x slower in wall time:
            // `bench/README.md`.) While a request in hand is still running, its chain of awaits
            // (the wrappers' layers, the metadata engine's mutex) takes up to a few hundred
            // microtask turns: run them, looking at the fd only every CHECK_TURNS turns (a system
            // call each). One still pending after BUSY_TURNS turns (~90 µs) waits on real I/O,
            // which needs the event loop: park.
            const t = performance.now();
            if (spinUntil === 0) spinUntil = t + spinMs;
            if (t >= spinUntil) break;
            if (adapter.pending === 0) {
              await new Promise<void>((r) => queueMicrotask(r));
            } else {
              if (busyTurns >= BUSY_TURNS) break;
              for (let k = 0; k < CHECK_TURNS && adapter.pending > 0; k++) {
                await new Promise<void>((r) => queueMicrotask(r));
              }
              busyTurns += CHECK_TURNS;
            }
            n--;
            continue;
          }
          if (res < 0) log.error("Reading /dev/fuse failed (errno {errno})", { errno: -res });
          break outer; // 0: the session exited (unmounted or aborted)
        }
        // Waiting off-thread also lets timers and I/O callbacks (and so replies) run.
        await libc.poll(pfds, 2n, -1);
      }
    } finally {
      undoGate();
      const mem = new Deno.UnsafePointerView(fbuf).getBigUint64(FUSE_BUF.mem);
      if (mem !== 0n) libc.free(Deno.UnsafePointer.create(mem));
      libc.free(fbuf);
      libc.free(pfds);
    }
  }

  async #mtLoop(): Promise<void> {
    const fuse = this.#fuse;
    if (fuse.fuse_session_loop_mt_312 === null || fuse.fuse_loop_cfg_create === null) {
      await fuse.fuse_session_loop(this.#se);
      return;
    }
    const cfg = fuse.fuse_loop_cfg_create();
    try {
      fuse.fuse_loop_cfg_set_max_threads?.(cfg, 8);
      await fuse.fuse_session_loop_mt_312(this.#se, cfg);
    } finally {
      fuse.fuse_loop_cfg_destroy?.(cfg);
    }
  }

  /** Aborts the FUSE connection via `/sys/fs/fuse/connections/N/abort` (best effort). */
  #abortConnection(): void {
    const minor = this.device?.split(":")[1];
    if (minor === undefined) return;
    try {
      Deno.writeTextFileSync(`/sys/fs/fuse/connections/${minor}/abort`, "1");
    } catch {
      // fusectl is not mounted or not writable: the bounded wait below decides.
    }
  }

  #wake(): void {
    if (this.#wakeWrite >= 0) this.#libc.write(this.#wakeWrite, new Uint8Array([1]), 1n);
  }

  /**
   * Unmounts and releases everything: stops the loop, lets running requests finish (bounded),
   * detaches the mount (`fuse_session_unmount`, lazily), frees libfuse and libc memory, closes
   * the callbacks and finally calls `ops.destroy`. Idempotent; resolves when done.
   */
  unmount(): Promise<void> {
    return this.#teardown ??= this.#doTeardown();
  }

  async #doTeardown(): Promise<void> {
    const fuse = this.#fuse;
    const se = this.#se;
    this.#stopping = true;
    fuse.fuse_session_exit(se);
    let loopDone: boolean;
    if (this.#loopKind === "js") {
      this.#wake();
      loopDone = this.#loopEnded || await within(this.#loop, this.#timeoutMs);
      await within(this.#adapter.idle(), this.#timeoutMs);
      await fuse.fuse_session_unmount(se);
      // On a handed-over descriptor libfuse mounted nothing and unmounts nothing.
      if (this.#external) await forceUnmount(this.mountpoint);
    } else {
      // libfuse threads block in read(2): detaching the mount makes them return ENODEV, unless
      // open files keep the connection alive; then abort it through fusectl (if mounted).
      await fuse.fuse_session_unmount(se);
      loopDone = this.#loopEnded || await within(this.#loop, Math.min(500, this.#timeoutMs));
      if (!loopDone) {
        this.#abortConnection();
        loopDone = await within(this.#loop, this.#timeoutMs);
      }
      await within(this.#adapter.idle(), this.#timeoutMs);
    }
    if (loopDone) {
      this.#adapter.close();
      fuse.fuse_session_destroy(se);
    } else {
      // Threads may still call back: keep the callbacks alive but let the process exit.
      log.warn("The FUSE loop of {mountpoint} did not stop; leaking it", {
        mountpoint: this.mountpoint,
      });
      this.#adapter.unref();
    }
    for (const fd of [this.#wakeRead, this.#wakeWrite]) if (fd >= 0) this.#libc.close(fd);
    this.#wakeRead = this.#wakeWrite = -1;
    try {
      await this.#ops.destroy?.();
    } catch (err) {
      log.error("Destroying the filesystem failed: {error}", { error: err });
    }
    this.#resolveClosed();
  }

  /** Same as {@linkcode FuseSession.unmount}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.unmount();
  }
}

/**
 * Mounts `ops` at `mountpoint` through libfuse3 (`fuse_session_mount`, so non-root works via
 * fusermount3) and starts serving. Resolves once the kernel's INIT handshake is done.
 *
 * @example
 * ```ts ignore
 * import { mountFs } from "./session.ts";
 * await using session = await mountFs(myOps, "/mnt/slayer", { fsname: "demo" });
 * console.log(await Deno.readTextFile(`${session.mountpoint}/hello.txt`));
 * ```
 */
export async function mountFs(
  ops: FsOps,
  mountpoint: string,
  options: MountOptions = {},
): Promise<FuseSession> {
  const fuse = loadLibfuse();
  const libc = loadLibc();
  const target = resolveMountpoint(mountpoint);
  const takeover = options.takeover;
  const loop = takeover ? "js" : options.loop ?? "mt";
  const spinUs = options.spinUs ?? 500;
  if (!Number.isFinite(spinUs) || spinUs < 0) {
    throw new TypeError(`spinUs must be a number of microseconds >= 0, got ${spinUs}`);
  }
  let initialised = false;
  let offered: InitInfo | undefined;
  let initDone!: () => void;
  const init = new Promise<void>((r) => initDone = r);
  const adapter = new FuseAdapter(fuse, libc, ops, {
    attrTimeout: options.attrTimeout ?? 1,
    entryTimeout: options.entryTimeout ?? 1,
    negativeTimeout: options.negativeTimeout ?? options.entryTimeout ?? 1,
    writebackCache: options.writebackCache ?? false,
    flockLocks: options.flockLocks ?? false,
    ...(options.maxRead !== undefined ? { maxRead: options.maxRead } : {}),
    ...(options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}),
    ...(options.onOp !== undefined ? { onOp: options.onOp } : {}),
    threadSafe: loop === "mt",
    onInit: (info) => {
      offered = info;
      initialised = true;
      initDone();
    },
  });
  const optionList = mountOptionList(options);
  const args = new CArgs(libc, ["slayerfs", "-o", optionList.join(",")]);
  const se = fuse.fuse_session_new(args.ptr, adapter.table, BigInt(OPS_SIZE), null);
  args.free(fuse);
  if (se === null) {
    adapter.close();
    throw new Error(`Cannot create a FUSE session with options "${optionList.join(",")}"`);
  }
  adapter.session = se;
  // A handed-over descriptor is taken as the mountpoint "/dev/fd/N" (nothing is mounted).
  const mountArg = takeover ? `/dev/fd/${takeover.fd}` : target;
  if (fuse.fuse_session_mount(se, cString(mountArg)) !== 0) {
    fuse.fuse_session_destroy(se);
    adapter.close();
    throw new Error(`Cannot mount a FUSE filesystem at "${target}"`);
  }
  if (takeover) feedInit(fuse, libc, se, takeover.init); // the kernel's INIT was long ago
  const session = new FuseSession(
    fuse,
    libc,
    se,
    adapter,
    ops,
    target,
    loop,
    options.unmountTimeoutMs ?? 5000,
    spinUs,
  );
  if (takeover) session.adopted(takeover.answerLost);
  session.start();
  await within(Promise.race([init, session.closed]), INIT_TIMEOUT_MS);
  if (!initialised) {
    await session.unmount();
    throw new Error(`The kernel did not initialise the FUSE mount at "${target}"`);
  }
  session.initInfo = takeover?.init ?? offered;
  session.device = mountInfo(target).at(-1)?.device;
  raiseReadahead(session.device, options.readAheadKb ?? 1024);
  return session;
}
