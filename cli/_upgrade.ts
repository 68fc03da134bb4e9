/**
 * Smooth upgrade of a mount: a new daemon takes over the live `/dev/fuse` connection of the
 * running one, so applications see a pause, not an error.
 *
 * Every daemon listens on a control socket in the run folder ({@linkcode controlSocket}). The new
 * daemon (started with `SLAYERFS_TAKEOVER=<socket>` by `mount --upgrade`, by a `SIGHUP` to the
 * daemon, or by a supervisor after a crash) connects and asks for the connection. The old daemon
 * stops reading requests at a request boundary, waits until every request it read is answered,
 * commits every pending write (staged blocks stay staged: the new daemon's stage uploads them),
 * and sends a {@linkcode HandoverState} with the descriptor (`SCM_RIGHTS`): its session id (the new
 * daemon continues the session, so its locks and open files stay held), the kernel's INIT
 * offer, and its open handles. On the new daemon's acknowledgement it exits without unmounting;
 * without one (the new daemon died) it goes on serving.
 *
 * @module
 */

import type { FuseSession } from "../ffi/session.ts";
import type { HandleMap, HandleRecord } from "../ffi/_handle_map.ts";
import type { InitInfo } from "../ffi/_takeover.ts";
import {
  acceptUnix,
  closeFd,
  connectUnix,
  listenUnix,
  recvMessage,
  sendMessage,
} from "../ffi/_scm_rights.ts";
import { getLog } from "../core/log.ts";
import { describe } from "./_errors.ts";
import { processAlive, runDir } from "./_state.ts";

const log = getLog("daemon");

/** What a daemon hands to the one taking its connection over. */
export interface HandoverState {
  /** The daemon that served the connection (gone after a crash). */
  pid: number;
  /** The session to continue (absent after a crash: the new daemon registers its own). */
  session?: number;
  /** What the kernel's INIT offered. */
  init: InitInfo;
  /** The handles the kernel holds (none after a crash). */
  handles: HandleRecord[];
  /** The old daemon died: requests it read and never answered get `EIO`. */
  crashed?: boolean;
  /** The supervisor's socket and pid, when supervised. */
  supervisor?: { socket: string; pid: number };
}

/** Short, stable name of `mnt` for socket paths (a socket path has at most 107 bytes). */
function mountKey(mnt: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(mnt)) {
    h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  }
  return h.toString(16).padStart(16, "0");
}

/** The control socket of the daemon serving `mnt`. */
export function controlSocket(mnt: string): string {
  return `${runDir()}/${mountKey(mnt)}.sock`;
}

/** The socket of the supervisor of `mnt`. */
export function supervisorSocket(mnt: string): string {
  return `${runDir()}/${mountKey(mnt)}.sup.sock`;
}

/** A connection handed over: the state, the descriptor and the channel to acknowledge on. */
export interface TakenOver {
  /** What the old daemon (or the supervisor) sent. */
  state: HandoverState;
  /** The `/dev/fuse` descriptor. */
  fd: number;
  /** Tells the sender the connection is ours now (it exits, or keeps its copy). */
  ack(): void;
}

/** Asks whoever listens on `socket` for its connection (waits up to `timeoutMs`). */
export async function requestTakeover(socket: string, timeoutMs: number): Promise<TakenOver> {
  const conn = connectUnix(socket);
  try {
    sendMessage(conn, { op: "takeover", pid: Deno.pid });
    const got = await recvMessage<HandoverState & { error?: string }>(conn, timeoutMs);
    if (!got) throw new Error("The running daemon did not hand its connection over");
    if (got.value.error) throw new Error(got.value.error);
    if (got.fd === undefined) throw new Error("The handover carried no /dev/fuse descriptor");
    return {
      state: got.value,
      fd: got.fd,
      ack: () => {
        try {
          sendMessage(conn, { op: "ack" });
        } finally {
          closeFd(conn);
        }
      },
    };
  } catch (err) {
    closeFd(conn);
    throw err;
  }
}

/** Waits up to `ms` for process `pid` to exit, then kills it. */
export async function waitExit(pid: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (processAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  if (processAlive(pid)) {
    log.warn("The old daemon (pid {pid}) did not exit: killing it", { pid });
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

/** What the serving daemon gives {@linkcode ControlServer} to hand its connection over. */
export interface Handoff {
  /** The FUSE session being served. */
  session: FuseSession;
  /** The kernel's handles. */
  handles: HandleMap;
  /** The current session id, if any. */
  sessionId(): number | undefined;
  /** Commits pending writes and stops background work that the new daemon takes on. */
  quiesce(): Promise<void>;
  /** Undoes `quiesce` after a handover that did not complete. */
  resume(): void;
  /** The supervisor, when supervised. */
  supervisor(): { socket: string; pid: number } | undefined;
  /** Called once the new daemon (`pid`) has the connection: exits without unmounting. */
  handedOver(pid: number): void;
}

/** The daemon's control socket: answers takeover requests. */
export class ControlServer {
  readonly path: string;
  readonly #fd: number;
  readonly #handoff: Handoff;
  #closed = false;
  #busy = false;

  /** Listens at `path`. */
  constructor(path: string, handoff: Handoff) {
    this.path = path;
    this.#handoff = handoff;
    this.#fd = listenUnix(path);
    void this.#acceptLoop();
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closed) {
      const conn = await acceptUnix(this.#fd, 1000);
      if (conn === undefined) continue;
      void this.#serve(conn).catch((error) => {
        log.error("Handover failed: {reason}", { reason: describe(error), error });
      }).finally(() => closeFd(conn));
    }
  }

  async #serve(conn: number): Promise<void> {
    const req = await recvMessage<{ op: string; pid: number }>(conn, 10_000);
    if (req?.value.op !== "takeover") return;
    const pid = req.value.pid;
    if (this.#busy) {
      sendMessage(conn, { error: "Another handover is in progress" });
      return;
    }
    this.#busy = true;
    const h = this.#handoff;
    try {
      log.info("Handing the connection over to pid {pid}", { pid });
      let fd: number;
      try {
        fd = await h.session.handOver(10_000);
      } catch (err) {
        sendMessage(conn, { error: `The running daemon cannot hand over: ${describe(err)}` });
        return;
      }
      try {
        await h.quiesce();
        const init = h.session.initInfo;
        if (!init) throw new Error("The connection's INIT offer is unknown");
        const sid = h.sessionId();
        const sup = h.supervisor();
        const state: HandoverState = {
          pid: Deno.pid,
          ...(sid !== undefined ? { session: sid } : {}),
          init,
          handles: h.handles.records(),
          ...(sup ? { supervisor: sup } : {}),
        };
        sendMessage(conn, state, fd);
      } catch (err) {
        sendMessage(conn, { error: `The running daemon cannot hand over: ${describe(err)}` });
        h.resume();
        h.session.resume();
        return;
      }
      const ack = await recvMessage<{ op: string }>(conn, 60_000);
      if (ack?.value.op === "ack") {
        this.close();
        h.handedOver(pid);
        return;
      }
      log.warn("The new daemon (pid {pid}) did not take the connection: serving on", { pid });
      h.resume();
      h.session.resume();
    } finally {
      this.#busy = false;
    }
  }

  /** Stops listening and removes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.#fd);
    try {
      Deno.removeSync(this.path);
    } catch { /* gone */ }
  }
}

/**
 * The link of a supervised daemon to its supervisor: registers the connection's descriptor and
 * INIT offer, and says whether its end is an unmount (`bye`) or a handover.
 */
export class SupervisorLink {
  readonly socket: string;
  readonly pid: number;
  #conn: number;

  private constructor(socket: string, pid: number, conn: number) {
    this.socket = socket;
    this.pid = pid;
    this.#conn = conn;
  }

  /** Registers this daemon with the supervisor at `socket`. */
  static register(
    socket: string,
    pid: number,
    fd: number,
    init: InitInfo,
    session: number | undefined,
  ): SupervisorLink {
    const conn = connectUnix(socket);
    sendMessage(conn, { op: "register", pid: Deno.pid, init, session }, fd);
    return new SupervisorLink(socket, pid, conn);
  }

  /** Tells the supervisor that `message` ends this daemon's service (then closes). */
  #say(message: unknown): void {
    if (this.#conn < 0) return;
    try {
      sendMessage(this.#conn, message);
    } catch { /* the supervisor is gone */ }
    closeFd(this.#conn);
    this.#conn = -1;
  }

  /** The mount ends: the supervisor exits too. */
  bye(): void {
    this.#say({ op: "bye" });
  }

  /** Daemon `pid` takes over: the supervisor waits for it to register. */
  handover(pid: number): void {
    this.#say({ op: "handover", pid });
  }
}
