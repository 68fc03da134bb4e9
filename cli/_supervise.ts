/**
 * `slayerfs mount --supervise`: a small parent process that keeps the mount alive when its daemon
 * crashes.
 *
 * The supervisor starts the daemon (`mount --foreground` with `SLAYERFS_SUPERVISOR` set), which,
 * once it serves, registers over the supervisor's socket: it sends the kernel's INIT offer and a
 * duplicate of its `/dev/fuse` descriptor (`SCM_RIGHTS`) and keeps the connection open. The
 * kernel keeps a FUSE connection alive while any process holds its descriptor, so when the daemon
 * dies (`kill -9`, a crash) requests wait in the kernel instead of failing with `ENOTCONN`: the
 * supervisor sees the registration connection close without a `bye` (sent at an unmount) or a
 * `handover` (sent by a smooth upgrade, whose new daemon registers in turn), and starts a new
 * daemon with `SLAYERFS_TAKEOVER` pointing at itself. That daemon takes the descriptor over
 * (`cli/_upgrade.ts`) with what the supervisor knows: no handles and no session. So after a crash
 * files that were open fail with `EBADF` (their handles died with the daemon), a request the dead
 * daemon had read gets `EIO`, writes it had not committed (no `fsync`, no `close`) are lost, and
 * its session is cleaned up like any dead mount's (its locks are released); new opens work.
 *
 * At most {@linkcode MAX_RESTARTS} restarts in {@linkcode RESTART_WINDOW_MS}: past that the
 * supervisor gives up, closes its descriptor and the mount fails with `ENOTCONN` as without it.
 *
 * @module
 */

import { getLog } from "../core/log.ts";
import type { InitInfo } from "../ffi/_takeover.ts";
import { acceptUnix, closeFd, listenUnix, recvMessage, sendMessage } from "../ffi/_scm_rights.ts";
import { type HandoverState, supervisorSocket } from "./_upgrade.ts";
import { daemonCommand } from "./_daemonize.ts";
import { makeRunDir } from "./_state.ts";

const log = getLog("supervisor");

/** Restarts allowed within {@linkcode RESTART_WINDOW_MS}. */
export const MAX_RESTARTS = 5;
/** See {@linkcode MAX_RESTARTS}. */
export const RESTART_WINDOW_MS = 60_000;
/** How long a new daemon has to register before the supervisor tries again. */
const REGISTER_TIMEOUT_MS = 90_000;

interface Registered {
  pid: number;
  init: InitInfo;
  session?: number;
}

/** Runs the supervisor of the mount at `mnt` until the mount ends; `args` are the mount's. */
export async function supervise(args: string[], mnt: string): Promise<void> {
  const { isMounted } = await import("../ffi/mounts.ts");
  const socket = supervisorSocket(mnt);
  await makeRunDir();
  const listener = listenUnix(socket);
  let fd = -1;
  let current: Registered | undefined;
  /** Every daemon that registered. */
  const everRegistered = new Set<number>();
  /** The last daemon that registered: what a restart takes over. */
  let last: Registered | undefined;
  let ended = false;
  /** The daemon started last, until it registers. */
  let starting = 0;
  let lastSign = Date.now();
  const restarts: number[] = [];
  let finish!: () => void;
  const done = new Promise<void>((r) => finish = r);

  const end = (why: string) => {
    if (ended) return;
    ended = true;
    log.info("Supervisor of {mountpoint} stops ({why})", { mountpoint: mnt, why });
    finish();
  };

  const start = (takeover: boolean) => {
    const env: Record<string, string> = {
      SLAYERFS_SUPERVISOR: socket,
      SLAYERFS_SUPERVISOR_PID: String(Deno.pid),
      ...(takeover ? { SLAYERFS_TAKEOVER: socket } : {}),
    };
    // A restart that never registered is stuck: it goes before the next one starts.
    if (starting) {
      try {
        Deno.kill(starting, "SIGKILL");
      } catch { /* gone */ }
    }
    const child = new Deno.Command(daemonCommand()[0]!, {
      args: [...daemonCommand().slice(1), ...args],
      env,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    child.status.then((s) => {
      // Only a first daemon that never registered: a registered one's death is seen by follow().
      if (!takeover && !everRegistered.has(child.pid) && !s.success) {
        end(`the daemon failed to mount (exit ${s.code})`);
      }
    });
    starting = child.pid;
    lastSign = Date.now();
    log.info("Started daemon pid {pid}{how}", {
      pid: child.pid,
      how: takeover ? " to take the connection over" : "",
    });
  };

  const crashed = (pid: number) => {
    current = undefined;
    if (ended) return;
    if (!isMounted(mnt)) return end("the mount is gone");
    const now = Date.now();
    while (restarts.length && restarts[0]! < now - RESTART_WINDOW_MS) restarts.shift();
    if (restarts.length >= MAX_RESTARTS) {
      log.error("The daemon died {n} times within a minute: giving up", { n: restarts.length });
      return end("too many restarts");
    }
    restarts.push(now);
    log.warn("Daemon pid {pid} died: starting another on the same connection", { pid });
    start(true);
  };

  /** Follows one registered daemon until it says bye or hands over, or its connection drops. */
  const follow = async (conn: number, reg: Registered) => {
    const msg = await recvMessage<{ op: string; pid?: number }>(conn, -1).catch(() => undefined);
    closeFd(conn);
    if (current !== reg) return; // a newer daemon registered meanwhile
    if (msg?.value.op === "bye") return end("unmounted");
    if (msg?.value.op === "handover") {
      log.info("Daemon pid {old} hands over to pid {pid}", { old: reg.pid, pid: msg.value.pid });
      current = undefined;
      lastSign = Date.now();
      return;
    }
    crashed(reg.pid);
  };

  const serve = async (conn: number) => {
    const msg = await recvMessage<{ op: string; pid: number; init: InitInfo; session?: number }>(
      conn,
      10_000,
    );
    if (msg?.value.op === "register" && msg.fd !== undefined) {
      if (fd >= 0) closeFd(fd);
      fd = msg.fd;
      const reg: Registered = {
        pid: msg.value.pid,
        init: msg.value.init,
        ...(msg.value.session !== undefined ? { session: msg.value.session } : {}),
      };
      current = last = reg;
      if (starting === reg.pid) starting = 0;
      everRegistered.add(reg.pid);
      log.info("Daemon pid {pid} registered", { pid: reg.pid });
      void follow(conn, reg);
      return;
    }
    try {
      if (msg?.value.op === "takeover" && fd >= 0 && last) {
        const state: HandoverState = {
          pid: last.pid,
          init: last.init,
          handles: [],
          crashed: true,
          supervisor: { socket, pid: Deno.pid },
        };
        sendMessage(conn, state, fd);
        await recvMessage(conn, 30_000); // the ack
      } else if (msg?.value.op === "takeover") {
        sendMessage(conn, { error: "The supervisor holds no connection" });
      }
    } finally {
      closeFd(conn);
    }
  };

  const accept = async () => {
    while (!ended) {
      const conn = await acceptUnix(listener, 1000);
      if (conn === undefined) continue;
      void serve(conn).catch((error) => log.error("Supervisor request failed: {error}", { error }));
    }
  };

  const watch = setInterval(() => {
    if (ended) return;
    if (!current && Date.now() - lastSign > REGISTER_TIMEOUT_MS) {
      if (fd < 0) return end("the daemon never registered");
      crashed(last?.pid ?? 0);
    }
    if (current && !isMounted(mnt)) end("the mount is gone");
  }, 1000);

  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => {
      // The daemon stops on its own signal (umount sends it one); the supervisor only leaves.
      end(sig);
    });
  }

  start(false);
  void accept();
  await done;
  clearInterval(watch);
  closeFd(listener);
  if (fd >= 0) closeFd(fd);
  try {
    Deno.removeSync(socket);
  } catch { /* gone */ }
  Deno.exit(0);
}
