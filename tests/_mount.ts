/**
 * The mount test harness: formats a SlayerFS volume in a temporary directory through the CLI,
 * serves it with `cli.ts mount --foreground` in a child process, and always cleans up.
 *
 * Layout of the temporary directory (mode 0755, so uid 65534 can traverse it):
 * `meta.db` (SQLite metadata), `blocks/` (file storage), `mnt/` (the mountpoint),
 * `daemon.log` (the daemon's stdout and stderr), `harness.json` (its owner and the daemon's pid,
 * for stale-mount cleanup).
 *
 * A module-level `unload` handler kills every daemon still running and lazily unmounts its
 * mountpoint, so even a test that throws past its `finally` leaves no mount behind.
 *
 * @example
 * ```ts ignore
 * await using fs = await startSlayer();
 * await Deno.writeTextFile(`${fs.mnt}/hello`, "hi");
 * ```
 *
 * @module
 */

import { dirname } from "node:path";
import { run, type RunResult } from "./_run.ts";

/** The repository root (the directory holding `cli.ts`). */
export const REPO_ROOT: string = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
/** The CLI entry point (`SLAYERFS_CLI` overrides it, e.g. to test the harness itself). */
export const CLI: string = Deno.env.get("SLAYERFS_CLI") ?? `${REPO_ROOT}/cli.ts`;
/** The prefix of every temporary directory the harness creates. */
export const TEMP_PREFIX = "slayerfs-mnt-";

/**
 * Every daemon and CLI call of this test process keeps its state (run files, logs, default cache
 * directories) in a private `SLAYERFS_HOME`, removed when the process ends.
 */
const OWN_HOME = Deno.env.get("SLAYERFS_HOME") === undefined;
if (OWN_HOME) {
  Deno.env.set("SLAYERFS_HOME", Deno.makeTempDirSync({ prefix: "slayerfs-home-" }));
}

const MOUNT_TIMEOUT_MS = 45_000;
const STOP_TIMEOUT_MS = 20_000;

/** Options for {@link startSlayer}. */
export interface StartOptions {
  /**
   * The block storage: a `file://` directory in the temp dir (default), `mem://`, or any storage
   * URL (e.g. an `s3://` URL of a test server; credentials come from the environment).
   */
  storage?: "file" | "mem" | string;
  /** Extra arguments for `cli.ts mount`, placed before the positional arguments. */
  extraArgs?: string[];
  /** Extra arguments for `cli.ts format`, placed before the positional arguments. */
  formatArgs?: string[];
  /**
   * The metadata URL (default: a SQLite file in the temp dir), e.g. a private Redis server's, or
   * the `meta` of another mount to mount the same volume a second time.
   */
  meta?: string;
  /** Whether to format the volume first (default true; false to mount an existing volume). */
  format?: boolean;
}

/** A running SlayerFS mount. */
export interface SlayerMount extends AsyncDisposable {
  /** The mountpoint. */
  readonly mnt: string;
  /** The temporary directory holding everything. */
  readonly dir: string;
  /** The metadata URL (`sqlite3:///…/meta.db` unless {@link StartOptions.meta} was given). */
  readonly meta: string;
  /** The storage URL (`file:///…/blocks` or `mem://`). */
  readonly storage: string;
  /** The pid of the current daemon. */
  readonly pid: number;
  /** Stops the daemon (SIGTERM, then harder), unmounts and removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILLs the daemon and waits for it; the mount is left dead (ENOTCONN). */
  kill9(): Promise<void>;
  /**
   * Stops the daemon cleanly if it runs (keeping the data), then mounts again. After
   * {@link SlayerMount.kill9} the dead mount is left in place for the CLI to clear.
   */
  restart(): Promise<void>;
  /** The daemon's log so far (stdout and stderr). */
  log(): string;
  /**
   * Runs `fn` under a watchdog on another thread: if it takes longer than `ms`, the daemon is
   * SIGKILLed and the mount lazily unmounted, so calls blocked on the mount (even synchronous FFI
   * calls) fail instead of hanging; the next {@link SlayerMount.guard} or `restart()` remounts.
   */
  guard<T>(ms: number, label: string, fn: () => Promise<T> | T): Promise<T>;
}

/**
 * Runs `deno run -A cli.ts ARGS…` from the repository root; throws if it takes over 5 minutes
 * (a hung command fails its test with its output).
 */
export function runCli(args: string[]): Promise<RunResult> {
  return run(Deno.execPath(), ["run", "-A", CLI, ...args], { cwd: REPO_ROOT, timeoutMs: 300_000 });
}

function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The mountpoints listed in /proc/mounts with their filesystem types. */
export function listMounts(): { mnt: string; type: string }[] {
  return Deno.readTextFileSync("/proc/mounts").split("\n").filter((l) => l !== "").map((l) => {
    const f = l.split(" ");
    return { mnt: unescapeMountField(f[1] ?? ""), type: f[2] ?? "" };
  });
}

/** The id of the topmost mount at `mnt` (from /proc/self/mountinfo), if any. */
export function mountId(mnt: string): number | undefined {
  let id: number | undefined;
  for (const line of Deno.readTextFileSync("/proc/self/mountinfo").split("\n")) {
    const f = line.split(" ");
    if (f.length > 4 && unescapeMountField(f[4]!) === mnt) id = Number(f[0]);
  }
  return id;
}

/** Whether `mnt` is a mountpoint in /proc/mounts. */
export function isMounted(mnt: string): boolean {
  return listMounts().some((m) => m.mnt === mnt);
}

function processAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // A zombie still has /proc/PID; it no longer serves.
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** Lazily unmounts `mnt` (fusermount3 -u -z, then umount -l). Synchronous for unload handlers. */
export function forceUnmountSync(mnt: string): void {
  // Mounts may be stacked (a dead one under a live one): peel them all.
  for (let i = 0; i < 8 && isMounted(mnt); i++) {
    new Deno.Command("fusermount3", { args: ["-u", "-z", mnt], stdout: "null", stderr: "null" })
      .outputSync();
    if (isMounted(mnt)) {
      new Deno.Command("umount", { args: ["-l", mnt], stdout: "null", stderr: "null" })
        .outputSync();
    }
  }
}

const live = new Map<string, { pid: () => number | undefined; mnt: string }>();

/**
 * This module instance: `deno test --parallel` runs test files as workers of one process, so the
 * owner's pid alone cannot tell another file's mounts from this one's.
 */
const HARNESS_ID = crypto.randomUUID();

/** What `harness.json` records: the owner (process and module instance) and the daemon. */
interface HarnessRecord {
  owner: number;
  harness: string;
  mnt: string;
  pid?: number;
}

async function writeRecord(dir: string, mnt: string, pid?: number): Promise<void> {
  const rec: HarnessRecord = { owner: Deno.pid, harness: HARNESS_ID, mnt };
  if (pid !== undefined) rec.pid = pid;
  await Deno.writeTextFile(`${dir}/harness.json`, JSON.stringify(rec));
}

globalThis.addEventListener("unload", () => {
  for (const { pid, mnt } of live.values()) {
    const p = pid();
    if (p !== undefined) {
      try {
        Deno.kill(p, "SIGKILL");
      } catch { /* already gone */ }
    }
    try {
      forceUnmountSync(mnt);
    } catch { /* best effort */ }
  }
  if (OWN_HOME) {
    try {
      Deno.removeSync(Deno.env.get("SLAYERFS_HOME")!, { recursive: true });
    } catch { /* best effort */ }
  }
});

/**
 * Clears mounts left by earlier harness runs whose daemon is dead, and removes their temp dirs.
 * Mounts of harness instances whose daemon still runs (parallel test files) are left alone.
 */
export async function cleanupStaleMounts(): Promise<string[]> {
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  const cleaned: string[] = [];
  for await (const e of Deno.readDir(tmp)) {
    if (!e.isDirectory || !e.name.startsWith(TEMP_PREFIX)) continue;
    const dir = `${tmp}/${e.name}`;
    if (live.has(dir)) continue;
    let rec: Partial<HarnessRecord> = {};
    try {
      rec = JSON.parse(await Deno.readTextFile(`${dir}/harness.json`));
    } catch {
      // No record: dead, unless just created (its owner is about to write the record).
      const made = (await Deno.stat(dir).catch(() => undefined))?.mtime?.getTime() ?? 0;
      if (Date.now() - made < 60_000) continue;
    }
    if (rec.pid !== undefined && processAlive(rec.pid)) continue;
    const ours = rec.owner === Deno.pid && rec.harness === HARNESS_ID;
    if (rec.owner !== undefined && !ours && processAlive(rec.owner)) continue;
    forceUnmountSync(`${dir}/mnt`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    cleaned.push(dir);
  }
  return cleaned;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * Asserts that `path`, on a mount other than the one that removed it, is gone within 5 s: the
 * kernel may answer from a name it looked up less than the entry timeout (1 s) ago.
 */
export async function goneFromOtherMount(path: string): Promise<void> {
  const end = Date.now() + 5000;
  for (;;) {
    try {
      await Deno.stat(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    if (Date.now() >= end) throw new Error(`${path} is still there 5 s after its removal`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function tail(text: string, lines = 40): string {
  return text.split("\n").slice(-lines).join("\n");
}

/** The watchdog worker's code: after `ms`, SIGKILL the daemon and lazily unmount. */
const WATCHDOG_SOURCE = `
self.onmessage = (e) => {
  const { pid, mnt, ms } = e.data;
  setTimeout(() => {
    try { Deno.kill(pid, "SIGKILL"); } catch {}
    try {
      new Deno.Command("fusermount3", { args: ["-u", "-z", mnt], stdout: "null", stderr: "null" }).outputSync();
    } catch {}
    self.postMessage("fired");
  }, ms);
};
`;

/** Formats a fresh volume in a temp dir and mounts it; see {@link SlayerMount}. */
export async function startSlayer(opts: StartOptions = {}): Promise<SlayerMount> {
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  await cleanupStaleMounts().catch(() => {});
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: TEMP_PREFIX });
  await Deno.chmod(dir, 0o755);
  const mnt = `${dir}/mnt`;
  // Claim the directory at once: a parallel test file's cleanup must not take it for a dead
  // run's while the volume is being formatted (before the daemon's pid is recorded).
  await writeRecord(dir, mnt);
  const meta = opts.meta ?? `sqlite3://${dir}/meta.db`;
  const storage = opts.storage === "mem"
    ? "mem://"
    : opts.storage && opts.storage !== "file"
    ? opts.storage
    : `file://${dir}/blocks`;
  const logPath = `${dir}/daemon.log`;
  let child: Deno.ChildProcess | undefined;
  let exited: Promise<Deno.CommandStatus> | undefined;
  let stopped = false;
  let aborted = false;

  const readLog = () => {
    try {
      return Deno.readTextFileSync(logPath);
    } catch {
      return "";
    }
  };
  const alive = () => child !== undefined && processAlive(child.pid);

  live.set(dir, { pid: () => (alive() ? child?.pid : undefined), mnt });

  async function waitExit(ms: number): Promise<boolean> {
    if (exited === undefined) return true;
    const r = await Promise.race([exited.then(() => true), sleep(ms).then(() => false)]);
    return r;
  }

  async function spawn(): Promise<void> {
    aborted = false;
    // A dead mount left by a SIGKILL may still be there (ENOTCONN): the CLI must replace it, so
    // wait for a mount that answers. (Mount ids are reused, so they cannot tell the two apart.)
    // The probe is a name never looked up before: the kernel cannot answer it from its caches
    // (a stat of the root itself can succeed from cached attributes on the dead mount).
    const ready = async () => {
      if (!isMounted(mnt)) return false;
      // ... and the folder must not be the bare mountpoint, seen between the CLI's unmount of
      // the dead mount and its new mount (it has its parent's device).
      const probe = `${mnt}/.slayerfs-ready-${crypto.randomUUID()}`;
      const parentDev = Deno.statSync(dirname(mnt)).dev;
      const stat = Deno.stat(probe).then(
        () => true,
        (err) => err instanceof Deno.errors.NotFound,
      ).then(async (answered) => answered && (await Deno.stat(mnt)).dev !== parentDev);
      return await Promise.race([stat, sleep(3000).then(() => false)]);
    };
    await Deno.mkdir(mnt, { recursive: true }).catch(() => {});
    const args = [
      "run",
      "-A",
      CLI,
      "mount",
      "--foreground",
      ...(opts.extraArgs ?? []),
      meta,
      mnt,
    ];
    const quoted = [Deno.execPath(), ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`);
    const shell = `exec ${quoted.join(" ")} >>'${logPath}' 2>&1`;
    child = new Deno.Command("sh", {
      args: ["-c", shell],
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    exited = child.status;
    await writeRecord(dir, mnt, child.pid);
    const deadline = Date.now() + MOUNT_TIMEOUT_MS;
    let exitedEarly: Deno.CommandStatus | undefined;
    exited.then((s) => exitedEarly = s);
    while (!await ready()) {
      if (exitedEarly !== undefined) {
        throw new Error(
          `SlayerFS mount exited with code ${exitedEarly.code} before mounting:\n${
            tail(readLog())
          }`,
        );
      }
      if (Date.now() > deadline) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await waitExit(5000);
        forceUnmountSync(mnt);
        throw new Error(
          `SlayerFS did not mount ${mnt} within ${MOUNT_TIMEOUT_MS} ms:\n${tail(readLog())}`,
        );
      }
      await sleep(50);
    }
  }

  async function stopDaemon(): Promise<void> {
    if (child !== undefined && exited !== undefined) {
      if (alive()) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
        if (!await waitExit(STOP_TIMEOUT_MS)) {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
          await waitExit(5000);
        }
      } else {
        await waitExit(5000);
      }
    }
    forceUnmountSync(mnt);
  }

  async function formatVolume(): Promise<void> {
    const args = ["format", "--storage", storage, ...(opts.formatArgs ?? []), meta, "test"];
    const r = await runCli(args);
    if (r.code !== 0) {
      throw new Error(`cli.ts ${args.join(" ")} failed (${r.code}):\n${r.stderr}${r.stdout}`);
    }
  }

  const handle: SlayerMount = {
    mnt,
    dir,
    meta,
    storage,
    get pid() {
      return child?.pid ?? -1;
    },
    log: readLog,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await stopDaemon();
      } finally {
        forceUnmountSync(mnt);
        live.delete(dir);
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
    async kill9() {
      if (child === undefined) return;
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await waitExit(10_000);
    },
    async restart() {
      // After kill9() the dead mount stays: the next `mount` must clear it by itself.
      if (alive()) await stopDaemon();
      await spawn();
    },
    async guard<T>(ms: number, label: string, fn: () => Promise<T> | T): Promise<T> {
      if (aborted || !isMounted(mnt) || !alive()) await handle.restart();
      const worker = new Worker(
        URL.createObjectURL(new Blob([WATCHDOG_SOURCE], { type: "application/javascript" })),
        { type: "module" },
      );
      let fired = false;
      worker.onmessage = () => {
        fired = true;
        aborted = true;
      };
      worker.postMessage({ pid: child?.pid, mnt, ms });
      try {
        const result = await fn();
        if (fired) throw new Error(`${label} timed out after ${ms} ms (daemon killed)`);
        return result;
      } catch (e) {
        await sleep(50);
        if (fired || aborted) {
          throw new Error(
            `${label} timed out after ${ms} ms; the daemon was killed. Log:\n${tail(readLog())}`,
            { cause: e },
          );
        }
        // Any other failure: the daemon's last log lines say what it saw (an S3 error, a
        // deadline) when the syscall only says EIO.
        const message = e instanceof Error ? e.message : String(e);
        throw new Error(`${label}: ${message}\nDaemon log:\n${tail(readLog(), 25)}`, {
          cause: e,
        });
      } finally {
        worker.terminate();
      }
    },
    async [Symbol.asyncDispose]() {
      await handle.stop();
    },
  };

  try {
    if (opts.format !== false) await formatVolume();
    await spawn();
  } catch (e) {
    await handle.stop();
    throw e;
  }
  return handle;
}
