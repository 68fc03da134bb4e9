/**
 * Helpers of the daemon-replacement tests (`upgrade_test.ts`, `supervise_test.ts`): a volume
 * mounted by the CLI in the background (the daemons change under the test, so the harness of
 * `_mount.ts`, which owns one daemon child, does not fit), commands with timeouts, and a process
 * that holds a file open and acts on it on request.
 *
 * Nothing here touches the mount from the test process itself: every access runs in a child
 * process under a timeout, which is killed when it expires, so a hung mount fails the test instead
 * of hanging it. Cleanup kills every daemon the mount's state names and lazily unmounts.
 *
 * @module
 */

import { CLI, forceUnmountSync, isMounted, REPO_ROOT } from "./_mount.ts";

const dec = new TextDecoder();

/** The outcome of {@linkcode runFor}. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args…`, killing it after `ms`; throws on the timeout. */
export async function runFor(
  ms: number,
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<Ran> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: REPO_ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, ms);
  try {
    const out = await child.output();
    if (timedOut) throw new Error(`${cmd} ${args.join(" ")} timed out after ${ms} ms`);
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `cli.ts ARGS…` with a timeout. */
export function cliFor(ms: number, args: string[]): Promise<Ran> {
  return runFor(ms, Deno.execPath(), ["run", "-A", CLI, ...args]);
}

/** Sleeps `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 50 ms until it returns a value, up to `ms`; throws with `what` then. */
export async function waitFor<T>(
  ms: number,
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    await sleep(50);
  }
  throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
}

/** Whether process `pid` runs (a zombie does not). */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/s.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

/** What `slayerfs status` reads: the state file of the daemon serving the mount. */
export interface DaemonState {
  pid: number;
  supervisor?: number;
  tookOverFrom?: number;
  session?: number;
  writeback?: { stagedObjects: number; uploading: number };
}

/** A volume mounted in the background by the CLI. */
export interface BackgroundMount extends AsyncDisposable {
  dir: string;
  mnt: string;
  meta: string;
  /** The daemon's state file, if readable. */
  state(): DaemonState | undefined;
  /** The daemon log. */
  log(): string;
  /** Kills every process the test saw serve the mount and unmounts; removes the folder. */
  cleanup(): Promise<void>;
  /** Remembers `pid` for the cleanup. */
  track(pid: number): void;
}

/** Formats a volume in a temporary folder and mounts it with `cli.ts mount EXTRA… META MNT`. */
export async function mountBackground(extra: string[]): Promise<BackgroundMount> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-takeover-" });
  const mnt = `${dir}/mnt`;
  const meta = `sqlite3://${dir}/meta.db`;
  const logPath = `${dir}/daemon.log`;
  const pids = new Set<number>();
  const stateFile = () => `${Deno.env.get("SLAYERFS_HOME")}/run/${encodeURIComponent(mnt)}.json`;
  const readState = (): DaemonState | undefined => {
    try {
      return JSON.parse(Deno.readTextFileSync(stateFile()));
    } catch {
      return undefined;
    }
  };
  const m: BackgroundMount = {
    dir,
    mnt,
    meta,
    state: () => {
      const s = readState();
      if (s) {
        pids.add(s.pid);
        if (s.supervisor) pids.add(s.supervisor);
      }
      return s;
    },
    log: () => {
      try {
        return Deno.readTextFileSync(logPath);
      } catch {
        return "";
      }
    },
    track: (pid) => void pids.add(pid),
    async cleanup() {
      m.state();
      for (const pid of pids) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      for (const pid of pids) await waitFor(10_000, `pid ${pid} to exit`, () => !alive(pid));
      forceUnmountSync(mnt);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
    [Symbol.asyncDispose]: () => m.cleanup(),
  };
  try {
    const f = await cliFor(60_000, ["format", "--storage", `file://${dir}/blocks`, meta, "t"]);
    if (f.code !== 0) throw new Error(`format failed: ${f.stderr}`);
    const r = await cliFor(90_000, ["mount", "--log", logPath, ...extra, meta, mnt]);
    m.state();
    if (r.code !== 0) throw new Error(`mount failed (${r.code}): ${r.stderr}\n${m.log()}`);
    if (!isMounted(mnt)) throw new Error(`${mnt} is not mounted:\n${m.log()}`);
  } catch (err) {
    await m.cleanup();
    throw err;
  }
  return m;
}

/** The source of the holder process: one line of stdin is one command on its open file. */
const HOLDER = `
const [path, flags] = Deno.args;
const f = Deno.openSync(path, flags === "r" ? { read: true } : { read: true, write: true, create: true });
const enc = new TextEncoder();
const out = (s) => Deno.stdout.writeSync(enc.encode(s + "\\n"));
out("ready");
const buf = new Uint8Array(65536);
let line = "";
const stdin = new Uint8Array(4096);
while (true) {
  const n = Deno.stdin.readSync(stdin);
  if (n === null) break;
  line += new TextDecoder().decode(stdin.subarray(0, n));
  let at;
  while ((at = line.indexOf("\\n")) >= 0) {
    const cmd = line.slice(0, at);
    line = line.slice(at + 1);
    try {
      if (cmd.startsWith("write ")) { f.writeSync(enc.encode(cmd.slice(6))); out("ok"); }
      else if (cmd === "fsync") { f.syncSync(); out("ok"); }
      else if (cmd === "read") {
        f.seekSync(0, Deno.SeekMode.Start);
        const r = f.readSync(buf);
        out("data " + new TextDecoder().decode(buf.subarray(0, r ?? 0)));
      }
      else if (cmd === "lock") { f.lockSync(true); out("ok"); }
      else if (cmd === "close") { f.close(); out("ok"); Deno.exit(0); }
    } catch (e) { out("error " + (e.code ?? e.name)); }
  }
}
`;

/** A process holding one file of the mount open. */
export interface Holder extends AsyncDisposable {
  pid: number;
  /** Sends a command (`write TEXT`, `fsync`, `read`, `lock`, `close`), returns its answer line. */
  ask(cmd: string, ms?: number): Promise<string>;
}

/** Starts a holder of `path` (`"rw"` or `"r"`), waiting until it has the file open. */
export async function holdFile(path: string, flags: "rw" | "r"): Promise<Holder> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=js", HOLDER, path, flags],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const next = async (ms: number): Promise<string> => {
    const until = Date.now() + ms;
    while (!buffered.includes("\n")) {
      const left = until - Date.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        lines.read(),
        new Promise<"timeout">((res) =>
          timer = setTimeout(() => res("timeout"), Math.max(0, left))
        ),
      ]);
      clearTimeout(timer);
      if (r === "timeout") {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        throw new Error(`The holder of ${path} did not answer within ${ms} ms`);
      }
      if (r.done) throw new Error(`The holder of ${path} exited`);
      buffered += r.value;
    }
    const at = buffered.indexOf("\n");
    const line = buffered.slice(0, at);
    buffered = buffered.slice(at + 1);
    return line;
  };
  const h: Holder = {
    pid: child.pid,
    async ask(cmd, ms = 30_000) {
      await writer.write(new TextEncoder().encode(cmd + "\n"));
      return await next(ms);
    },
    [Symbol.asyncDispose]: async () => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await writer.close().catch(() => {});
      await lines.cancel().catch(() => {});
      await child.status;
    },
  };
  const first = await next(30_000);
  if (first !== "ready") throw new Error(`The holder of ${path} said ${first}`);
  return h;
}
