/**
 * The daemon: `slayerfs mount --foreground` opens the volume, mounts it, keeps its state file
 * fresh for `status`, and unmounts cleanly after flushing on SIGINT/SIGTERM or an external
 * unmount. Its log lines go through LogTape (`slayerfs: [level] daemon: ...` on stderr, which a
 * background mount sends to its log file).
 *
 * @module
 */

import { DiskBudget, TieredCache } from "../core/cache/mod.ts";
import { getLog } from "../core/log.ts";
import { KvLocks, Meta, releaseSessionLocks } from "../core/meta/mod.ts";
import { LocalLocks } from "../core/locks.ts";
import { readOnlyOps, subdirOps } from "../core/tenant_ops.ts";
import type { FsOps } from "../core/fs_ops.ts";
import type { Ino } from "../core/types.ts";
import type { KvEngine } from "../core/kv.ts";
import type { WritebackStats } from "../backends/store_writeback.ts";
import { formatVolume, Volume } from "../core/volume.ts";
import { parseSize } from "../core/format.ts";
import { Session } from "../core/session.ts";
import { VERSION } from "./version.ts";
import { CliError, describe } from "./_errors.ts";
import { configureDaemonLogging, exportMetrics, mountMetrics } from "./_telemetry.ts";
import { openMeta } from "./_meta.ts";
import { volumeKey } from "./_encrypt_key.ts";
import { home, makeRunDir, type MountState, stateFile, writeState } from "./_state.ts";
import { claimDir } from "./_dir_lock.ts";
import { answerProfileRequests, PROFILE_SIGNAL } from "./_profiler.ts";
import {
  ControlServer,
  controlSocket,
  requestTakeover,
  SupervisorLink,
  type TakenOver,
  waitExit,
} from "./_upgrade.ts";
import { HandleMap } from "../ffi/_handle_map.ts";
import { daemonCommand } from "./_daemonize.ts";
import { guardSnapshots } from "../core/snapshot_guard.ts";
import { deadSessions, reclaimDetached } from "../core/clone.ts";
import { controlPath, serveControl } from "./_control.ts";
import { controlHandler } from "./clone.ts";
import { LimitedBlockStore } from "../backends/store_limited.ts";
import { mbitToBytes, TimeWindow } from "../core/_bandwidth.ts";

const log = getLog("daemon");

export { type MountOpts, resolveSubdir } from "./_serve_setup.ts";
import {
  cacheDirOptions,
  type MountOpts,
  openStore,
  resolveSubdir,
  tuneMalloc,
} from "./_serve_setup.ts";

/** Serves the volume of `metaUrl` at `mnt` until it is unmounted; then exits the process. */
export async function serve(metaUrl: string, mnt: string, opts: MountOpts): Promise<void> {
  const logContext = configureDaemonLogging(opts, opts.options.has("debug"), mnt); // telemetry
  const stopTrimming = tuneMalloc();
  const { mountFs } = await import("../ffi/mod.ts");
  const metrics = mountMetrics(opts); // telemetry: metrics and traces
  const readOnly = opts.options.has("ro");
  let kv: KvEngine;
  try {
    // A read-only mount writes nothing to the volume (a SQLite file is opened read-only).
    kv = await openMeta(metaUrl, readOnly);
  } catch (err) {
    throw err instanceof CliError ? err : new CliError(describe(err));
  }
  // io_deadline=SEC (default 60, 0 = none): no FUSE request waits longer for the store.
  const deadlineMs = Number(opts.options.get("io_deadline") || 60) * 1000;
  // random_fill=SIZE (default: a quarter of the disk cache, at most 8 GiB; 0 = off): the largest
  // file read at random that is fetched whole into the disk cache (core/_random_fill.ts).
  const fill = opts.options.get("random_fill");
  // readahead=SIZE (default: 48 blocks with a disk cache, 8 without; 0 = off): how far ahead a
  // sequential read fetches (core/_prefetch.ts).
  const ahead = opts.options.get("readahead");
  let vol: Volume;
  let subdirIno: Ino | undefined;
  let limited: LimitedBlockStore | undefined;
  const uploadWindow = opts.uploadWindow ? new TimeWindow(opts.uploadWindow) : undefined;
  let mountSession: Session | undefined;
  let taken: TakenOver | undefined;
  let writeback:
    | { stats(): WritebackStats; flush(o?: { signal?: AbortSignal }): Promise<void> }
    | undefined;
  try {
    let format = await Meta.readFormat(kv);
    if (!format && metaUrl.startsWith("mem://")) {
      format = await formatVolume(kv, { name: "mem", storage: "mem://" });
    }
    if (!format) throw new CliError(`No volume in "${metaUrl}": run slayerfs format first`);
    // Checked before anything else is opened: a missing or wrong key is one clear line.
    const encryptKey = await volumeKey(opts.encryptKeyFile, format);
    // A smooth upgrade or a restart: take the live connection over before opening the folders
    // and the session the old daemon holds (cli/_upgrade.ts).
    taken = await takeOver();
    let store = await openStore(format.storage, opts.writeback);
    if (metrics) store = metrics.store(store); // telemetry: object store requests
    if (opts.uploadLimitMbit || opts.downloadLimitMbit) {
      limited = new LimitedBlockStore(store, {
        ...(opts.uploadLimitMbit ? { uploadBytesPerSec: mbitToBytes(opts.uploadLimitMbit) } : {}),
        ...(opts.downloadLimitMbit
          ? { downloadBytesPerSec: mbitToBytes(opts.downloadLimitMbit) }
          : {}),
      });
      store = limited;
    }
    // Remote storage gets a disk cache by default, as JuiceFS does; local storage needs none.
    const chosenCacheDirs = [...opts.cacheDirs];
    // Several daemons may serve the volume on this host: each has its own cache and staging
    // folders (a default one taken by another daemon gives way to UUID-2, UUID-3...).
    if (!opts.cacheDirs.length && !opts.noCacheDir && !/^(file|mem):/.test(format.storage)) {
      opts.cacheDirs.push(await claimDir(`${home()}/cache/${format.uuid}`, false, "cache folder"));
    }
    const stageDir = !opts.writeback
      ? undefined
      : opts.writebackDir !== undefined
      ? await claimDir(opts.writebackDir, true, "writeback folder")
      : await claimDir(`${home()}/writeback/${format.uuid}`, false, "writeback folder");
    // The cache and the staging folders on one filesystem share its free space (a DiskBudget).
    const budgets = await DiskBudget.perFilesystem(
      [...opts.cacheDirs, ...(stageDir ? [stageDir] : [])],
      { onError: (error) => log.warn("{error}", { error }) },
    );
    if (stageDir !== undefined) {
      const { WritebackBlockStore } = await import("../backends/store_writeback.ts");
      const staged = await WritebackBlockStore.open(store, {
        dir: stageDir,
        ...(opts.writebackMiB !== undefined ? { capacityBytes: opts.writebackMiB * 2 ** 20 } : {}),
        budget: budgets.get(stageDir)!,
        // The block stays staged and is uploaded again later; the stage itself warns once per
        // outage, so each failed attempt is a debug line.
        onError: (error, key) =>
          log.debug('Upload of "{key}" failed: {reason}', { key, reason: describe(error), error }),
        ...(uploadWindow ? { uploadGate: (stop) => uploadWindow.wait(stop) } : {}),
      });
      // `status` and `umount` say where the blocks not uploaded yet are.
      writeback = {
        flush: (o) => staged.flush(o),
        stats: () => ({ ...staged.stats(), dir: stageDir }),
      };
      store = staged;
    }
    const cacheBytes = opts.cacheMiB * 2 ** 20;
    if (opts.subdir !== undefined) subdirIno = await resolveSubdir(kv, opts.subdir);
    let locks;
    if (readOnly) {
      // No session (it would be written, with its heartbeats), so no shared locks either:
      // locks on a read-only mount are seen by this mount only.
      locks = new LocalLocks();
    } else {
      // This mount's session: others see it in `status`, and clean up after it if it dies.
      const sessionOpts = {
        mountpoint: mnt,
        version: VERSION,
        timeoutMs: opts.sessionTimeoutSec * 1000,
      };
      // An upgrade continues the old daemon's session: its locks and open files stay held.
      const resumed = taken?.state.session;
      mountSession = resumed !== undefined
        ? await Session.resume(kv, resumed, sessionOpts).catch((error) => {
          log.warn("Cannot continue session {sid} ({reason}): starting a new one", {
            sid: resumed,
            reason: describe(error),
          });
          return undefined;
        })
        : undefined;
      const continued = mountSession !== undefined;
      const ms = mountSession ??= await Session.register(kv, sessionOpts);
      // Locks live in the metadata, tagged with the session: a dead session's are released by
      // whichever mount cleans it up, and a mount whose session was taken for dead fences the
      // handles that held locks (their writes fail with EIO) and goes on under its new session.
      ms.onCleanup(async (engine, sid) => {
        await releaseSessionLocks(engine, sid);
        // A clone or snapshot removal the dead mount left half done (core/clone.ts).
        await reclaimDetached(engine, (owner) => owner === sid);
      });
      ms.onLost((_lost, current) => void vol?.vfs.locksLost(current));
      const kvLocks = new KvLocks(kv, { sessionId: ms.id });
      if (continued) await kvLocks.adopt();
      locks = kvLocks;
    }
    vol = await Volume.openWith(metrics?.kv(kv) ?? kv, store, {
      ...(mountSession ? { session: mountSession } : {}),
      readOnly,
      locks,
      atimeMode: opts.atimeMode,
      // read_around=SIZE (default 64K, 0 = off): what a random read hands the kernel's page cache.
      ...(opts.options.has("read_around")
        ? { readAround: parseSize(opts.options.get("read_around")!) }
        : {}),
      cacheBytes,
      // Sealed on top of the stage and the store: neither ever holds a plaintext block.
      ...(encryptKey ? { encryptKey } : {}),
      // Reads of imported objects are object-store traffic too: same limit, same count.
      ...(limited ? { onExternalRead: (n: number) => limited!.chargeDownload(n) } : {}),
      ...(deadlineMs > 0 ? { fetchDeadlineMs: deadlineMs } : {}),
      ...(fill !== undefined ? { randomFill: { maxBytes: parseSize(fill) } } : {}),
      ...(ahead !== undefined ? { readahead: parseSize(ahead) } : {}),
      ...(opts.cacheLargeWrite ? { cacheLargeWrites: true } : {}),
      ...(opts.cacheDirs.length
        ? {
          cache: await TieredCache.open({
            memoryBytes: cacheBytes,
            dirs: await cacheDirOptions(opts.cacheDirs, opts.cacheDirMiB, budgets),
          }).then((c) => metrics?.cache(c) ?? c), // telemetry: cache lookup spans
        }
        : {}),
    });
    // Cache folders given on the command line are claimed once the cache has opened them:
    // claimed first (made, with the lock file, before the cache scans them), the stage on the
    // same small disk got ENOSPC (tests/small_disk_test.ts); the cause is not pinned down.
    for (const dir of chosenCacheDirs) await claimDir(dir, true, "cache folder");
  } catch (err) {
    if (taken) logLost(taken);
    await mountSession?.close().catch(() => {});
    await kv.close();
    throw err instanceof CliError ? err : new CliError(describe(err));
  }
  // Half-done clones or snapshot removals of mounts that are gone (also a clean unmount in the
  // middle of one, which leaves no session for a cleanup hook to find): removed in the background.
  if (!readOnly) {
    void deadSessions(kv).then((dead) => reclaimDetached(kv, dead)).catch((error) =>
      log.warn("Removing half-done clones failed: {reason}", { reason: describe(error), error })
    );
  }
  const o = opts.options;
  const num = (k: string) => o.has(k) ? Number(o.get(k)) : undefined;
  // Snapshots are read-only, and their `.snapshots` folders hidden from listings.
  let tenantOps: FsOps = guardSnapshots(
    vol.vfs,
    async (parent, name) => (await vol.vfs.meta.lookup(parent, name)).ino,
  );
  if (subdirIno !== undefined) tenantOps = subdirOps(tenantOps, subdirIno);
  if (readOnly) tenantOps = readOnlyOps(tenantOps);
  const innerOps = metrics?.ops(tenantOps, { "slayerfs.volume": vol.format.name }) ?? tenantOps; // telemetry
  // The kernel's handle numbers, kept so that a later upgrade can hand them over.
  const handles = new HandleMap();
  if (taken) {
    const n = await handles.restore(innerOps, taken.state.handles);
    log.info("Took the connection over from pid {pid} ({n} of {all} open handles restored)", {
      pid: taken.state.pid,
      n,
      all: taken.state.handles.length,
    });
  }
  const fsOps = handles.wrap(innerOps);
  const session = await mountFs(fsOps, mnt, {
    fsname: `slayerfs:${vol.format.name}`,
    subtype: "slayerfs",
    // Like JuiceFS: a root mount serves every user (containers run as many uids), with the
    // kernel still checking modes and owners (default_permissions).
    allowOther: o.has("allow_other") || (Deno.uid() === 0 && !o.has("no_allow_other")),
    extraOptions: [
      ...(o.has("suid") || o.has("rootfs") ? ["suid"] : []),
      ...(o.has("dev") || o.has("rootfs") ? ["dev"] : []),
      ...(o.has("noexec") ? ["noexec"] : []),
    ],
    readOnly,
    debug: o.has("debug"),
    writebackCache: o.has("writeback_cache"),
    flockLocks: !o.has("local_flock"), // flocks go to the shared lock table unless local_flock
    // The daemon serves no calls into its own mount, so it can use the JS loop (see ffi/README.md).
    loop: o.get("loop") === "mt" ? "mt" as const : "js" as const,
    ...(num("loop_spin_us") !== undefined ? { spinUs: num("loop_spin_us")! } : {}),
    ...(num("attr_timeout") !== undefined ? { attrTimeout: num("attr_timeout")! } : {}),
    ...(num("entry_timeout") !== undefined ? { entryTimeout: num("entry_timeout")! } : {}),
    ...(num("negative_timeout") !== undefined ? { negativeTimeout: num("negative_timeout")! } : {}),
    deadlineMs,
    ...(metrics ? { onOp: metrics.fuseOp } : {}), // telemetry: FUSE requests
    ...(taken
      ? {
        takeover: {
          fd: taken.fd,
          init: taken.state.init,
          answerLost: taken.state.crashed === true,
        },
      }
      : {}),
  }).catch(async (err) => {
    await vol.close();
    throw new CliError(describe(err));
  });
  // Read-around into the page cache; not with the writeback cache (dirty pages would be lost).
  // SLAYERFS_TEST_STORE_DELAY_MS (tests only) holds each store back, so that races show.
  const storeDelay = Number(Deno.env.get("SLAYERFS_TEST_STORE_DELAY_MS") ?? 0);
  if (!o.has("writeback_cache")) {
    vol.vfs.usePageStore(async (ino, offset, bytes) => {
      if (storeDelay > 0) await new Promise((r) => setTimeout(r, storeDelay));
      return await session.storePages(ino, offset, bytes);
    });
  }
  const state: MountState = {
    pid: Deno.pid,
    meta: metaUrl,
    mountpoint: mnt,
    volume: vol.format.name,
    storage: vol.format.storage,
    started: new Date().toISOString(),
    updated: new Date().toISOString(),
    ...(opts.settings ? { settings: opts.settings } : {}),
    ...(taken ? { tookOverFrom: taken.state.pid } : {}),
    args: Deno.args[0] === "mount" ? Deno.args.slice(1) : [...Deno.args],
  };
  // Supervised (mount --supervise): register the connection with the supervisor.
  const sup = taken?.state.supervisor ?? supervisorFromEnv();
  let supLink: SupervisorLink | undefined;
  if (sup && session.initInfo) {
    try {
      supLink = SupervisorLink.register(
        sup.socket,
        sup.pid,
        session.fd,
        session.initInfo,
        vol.vfs.sessionId,
      );
      state.supervisor = sup.pid;
    } catch (error) {
      log.warn("Cannot register with the supervisor: {reason}", { reason: describe(error) });
    }
  }
  logContext.volume = vol.format.name; // telemetry: the volume in every JSON log record
  // telemetry: the metrics endpoint, its address in the state file
  const metricsServer = metrics && opts.metrics !== undefined
    ? exportMetrics(metrics, vol, {
      address: opts.metrics,
      mountpoint: mnt,
      kv,
      pending: () => session.pending,
      staging: writeback && (() => writeback!.stats()),
    })
    : undefined;
  if (metricsServer) state.metrics = metricsServer.address;
  // `slayerfs doctor` reads these: the settings in effect, and how to ask for a CPU profile.
  state.config = { ...opts, options: Object.fromEntries(opts.options) };
  const stopProfiler = answerProfileRequests(mnt);
  state.profiler = PROFILE_SIGNAL;
  await makeRunDir();
  // `slayerfs clone` and `slayerfs snapshot` reach this mount through its control socket (not a
  // read-only mount: it has no session, and clones change the volume).
  const cloneControl = controlPath(Deno.pid);
  const cloneSession = mountSession;
  const stopControl = cloneSession === undefined ? async () => {} : await serveControl(
    cloneControl,
    controlHandler(vol, cloneSession, (parent, name) => session.invalidateEntry(parent, name)),
  );
  if (cloneSession !== undefined) state.control = cloneControl;
  const refresh = async () => {
    const s = vol.vfs.stats();
    Object.assign(state, {
      updated: new Date().toISOString(),
      ...(vol.vfs.sessionId !== undefined ? { session: vol.vfs.sessionId } : {}),
      openFiles: s.openFiles,
      handles: s.handles,
      cacheBytes: s.cacheBytes,
      cacheHits: s.cacheHits,
      cacheMisses: s.cacheMisses,
      storeGets: s.storeGets,
      storeGetBytes: s.storeGetBytes,
      ...(s.predictor ? { predictor: s.predictor } : {}),
      ...(s.readAround ? { readAround: s.readAround } : {}),
      randomFill: s.randomFill,
      ...(s.cache ? { cache: s.cache, hottestFiles: s.hottestFiles } : {}),
      ...(writeback ? { writeback: writeback.stats() } : {}),
      ...(limited || uploadWindow
        ? {
          bandwidth: {
            ...(limited?.stats() ?? { uploadedBytes: 0, downloadedBytes: 0 }),
            ...(uploadWindow
              ? { uploadWindow: uploadWindow.text, windowOpen: uploadWindow.contains() }
              : {}),
          },
        }
        : {}),
      ops: Object.fromEntries(
        Object.entries(session.opStats()).sort(([a], [b]) => a < b ? -1 : 1).map((
          [op, st],
        ) => [op, {
          count: st.count,
          errors: st.errors,
          meanUs: st.count ? Math.round(st.totalUs / st.count) : 0,
        }]),
      ),
    });
    await writeState(state).catch(() => {});
  };
  await makeRunDir();
  await refresh();
  let timer = setInterval(refresh, 2000);
  const control = new ControlServer(controlSocket(mnt), {
    session,
    handles,
    sessionId: () => vol.vfs.sessionId,
    quiesce: async () => {
      clearInterval(timer);
      await vol.vfs.flushAll();
      // The batched forgets of closed files (core/_session_opens.ts) go out within 100 ms.
      await new Promise((r) => setTimeout(r, 150));
    },
    resume: () => {
      clearInterval(timer);
      timer = setInterval(refresh, 2000);
    },
    supervisor: () => supLink ? { socket: supLink.socket, pid: supLink.pid } : undefined,
    handedOver: (pid) => {
      supLink?.handover(pid);
      log.info("Handed the connection over to pid {pid}: exiting", { pid });
      Deno.exit(0);
    },
  });
  // SIGHUP: restart in place (a new daemon of the code on disk takes the connection over).
  Deno.addSignalListener("SIGHUP", () => upgradeInPlace(opts.log, mnt));
  log.info('Serving "{volume}" at {mountpoint} (pid {pid})', {
    volume: vol.format.name,
    mountpoint: mnt,
    pid: Deno.pid,
  });
  const suid = o.has("suid") || o.has("rootfs");
  const dev = o.has("dev") || o.has("rootfs");
  if (suid || dev) {
    log.info("{what} on: {why}", {
      what: suid && dev ? "suid and dev are" : suid ? "suid is" : "dev is",
      why: "setuid binaries and device nodes on this volume act as on a local root filesystem",
    });
  }
  let stopping: Promise<void> | undefined;
  const stop = (why: string) =>
    stopping ??= (async () => {
      log.info("Unmounting {mountpoint} ({why})", { mountpoint: mnt, why });
      supLink?.bye();
      control.close();
      clearInterval(timer);
      stopTrimming();
      stopProfiler();
      await stopControl();
      await metricsServer?.close(); // telemetry
      try {
        await session.unmount();
      } catch (error) {
        log.error("Unmount failed: {reason}", { reason: describe(error), error });
      }
      try {
        // Give staged uploads a bounded chance to finish; what remains uploads at the next mount
        // (outside the upload window, it waits for the window, at this mount or the next).
        if (uploadWindow && !uploadWindow.contains()) {
          log.info("Staged blocks wait for the upload window {window}", {
            window: uploadWindow.text,
          });
        } else {
          await writeback?.flush({ signal: AbortSignal.timeout(30_000) }).catch((error) => {
            log.warn("Staged blocks remain for the next mount: {reason}", {
              reason: describe(error),
              error,
            });
          });
        }
        await vol.close();
      } catch (error) {
        log.error("Flushing on exit failed: {reason}", { reason: describe(error), error });
      }
      await Deno.remove(stateFile(mnt)).catch(() => {});
      log.info("Stopped");
    })();
  Deno.addSignalListener("SIGINT", () => stop("SIGINT").then(() => Deno.exit(0)));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM").then(() => Deno.exit(0)));
  await session.closed;
  await stop("unmounted");
  Deno.exit(0);
}

/** Takes the connection over when `SLAYERFS_TAKEOVER` names a socket (an upgrade, a restart). */
async function takeOver(): Promise<TakenOver | undefined> {
  const socket = Deno.env.get("SLAYERFS_TAKEOVER");
  if (!socket) return undefined;
  Deno.env.delete("SLAYERFS_TAKEOVER");
  let taken: TakenOver;
  try {
    taken = await requestTakeover(socket, 60_000);
  } catch (err) {
    throw new CliError(`Cannot take the mount over: ${describe(err)}`);
  }
  taken.ack();
  // The old daemon exits at the ack; its folders (stage, cache) are free once it is gone.
  if (!taken.state.crashed) await waitExit(taken.state.pid, 15_000);
  return taken;
}

/** Says that a connection taken over is lost (this daemon fails before serving it). */
function logLost(taken: TakenOver): void {
  log.error("The connection taken over from pid {pid} is lost", { pid: taken.state.pid });
}

/** The supervisor named by the environment (set by `mount --supervise`). */
function supervisorFromEnv(): { socket: string; pid: number } | undefined {
  const socket = Deno.env.get("SLAYERFS_SUPERVISOR");
  const pid = Number(Deno.env.get("SLAYERFS_SUPERVISOR_PID"));
  Deno.env.delete("SLAYERFS_SUPERVISOR");
  Deno.env.delete("SLAYERFS_SUPERVISOR_PID");
  return socket && pid > 0 ? { socket, pid } : undefined;
}

/**
 * Starts a new daemon with this one's arguments that takes the connection over (`SIGHUP`): it
 * runs the code on disk now. Its output goes to `logFile`.
 */
function upgradeInPlace(logFile: string, mnt: string): void {
  log.info("SIGHUP: starting a new daemon to take {mountpoint} over", { mountpoint: mnt });
  // Deno.args is `mount --foreground ...`: the new daemon gets the same mount arguments.
  const args = Deno.args.slice(0, 2).join(" ") === "mount --foreground"
    ? Deno.args.slice(2)
    : Deno.args.filter((a) => a !== "mount" && a !== "-f" && a !== "--foreground");
  const inner = [...daemonCommand(), ...args];
  try {
    new Deno.Command("setsid", {
      args: [
        "sh",
        "-c",
        'log="$1"; shift; exec "$@" >>"$log" 2>&1 </dev/null',
        "sh",
        logFile,
        ...inner,
      ],
      env: { SLAYERFS_TAKEOVER: controlSocket(mnt) },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn().unref();
  } catch (error) {
    log.error("Cannot start the new daemon: {reason}", { reason: describe(error) });
  }
}
