/**
 * Background mounts: `slayerfs mount` starts `mount --foreground` as a detached daemon logging to
 * a file, waits until it serves, and otherwise reports the daemon's last `slayerfs:` log line.
 *
 * @module
 */

import { dirname } from "node:path";
import { CliError } from "./_errors.ts";
import { makeHomeDir, makeLogFile, type MountState, readState } from "./_state.ts";

/** The top-level entry point the daemon runs (`cli.ts`, beside this folder). */
const ENTRY = new URL("../cli.ts", import.meta.url).pathname;

/**
 * Why a daemon failed, from the text it logged: its last line starting with `slayerfs:`, without
 * that prefix, and without the `[level] category: ` of a LogTape record (`core/log.ts`). Logger
 * categories are lowercase words; messages are in sentence case, so a plain error line keeps its
 * first word. A JSON record (`--log-format json`) gives its message.
 */
export function failureReason(log: string): string | undefined {
  const last = log.trim().split("\n").findLast((l) => l.startsWith("slayerfs:") || isJson(l));
  if (last !== undefined && isJson(last)) return JSON.parse(last).message; // --log-format json
  return last?.replace(/^slayerfs: (?:\[\w+\] )?(?:[a-z][\w.-]*: )?/, "");
}

/** Whether `line` is a JSON log record (`--log-format json`) with a message. */
function isJson(line: string): boolean {
  if (!line.startsWith("{")) return false;
  try {
    return typeof JSON.parse(line).message === "string";
  } catch {
    return false;
  }
}

/** The command line of a foreground mount daemon (without the mount's own arguments). */
export function daemonCommand(): string[] {
  const self = Deno.execPath();
  const compiled = !/deno$/.test(self);
  return compiled ? [self, "mount", "--foreground"] : [
    self,
    "run",
    "-A",
    "--v8-flags=--max-old-space-size=1024",
    ENTRY,
    "mount",
    "--foreground",
  ];
}

/** Options of {@linkcode daemonize}. */
export interface DaemonizeOptions {
  /** More environment variables for the daemon. */
  env?: Record<string, string>;
  /** Whether the state file shows the daemon `pid` ready (default: it is the state's pid). */
  ready?: (state: MountState, pid: number) => boolean;
  /** What the success line says (default "mounted"). */
  verb?: string;
}

/** Starts `mount --foreground` as a detached daemon and returns once it serves. */
export async function daemonize(
  args: string[],
  mnt: string,
  log: string,
  options: DaemonizeOptions = {},
): Promise<void> {
  await makeHomeDir(dirname(log));
  await makeLogFile(log);
  const inner = [...daemonCommand(), ...args];
  const ready = options.ready ?? ((s: MountState, pid: number) => s.pid === pid);
  const cmd = new Deno.Command("setsid", {
    args: ["sh", "-c", 'log="$1"; shift; exec "$@" >>"$log" 2>&1 </dev/null', "sh", log, ...inner],
    // Fewer malloc arenas: the I/O threads otherwise each keep freed block buffers resident.
    env: {
      MALLOC_ARENA_MAX: Deno.env.get("MALLOC_ARENA_MAX") ?? "2",
      // Traces go to an OTLP endpoint when one is set: Deno's OpenTelemetry is on from the start.
      ...(Deno.env.get("OTEL_EXPORTER_OTLP_ENDPOINT") && !Deno.env.get("OTEL_DENO")
        ? { OTEL_DENO: "true" }
        : {}),
      ...options.env,
    },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  });
  const child = cmd.spawn();
  let exited = false;
  child.status.then(() => exited = true);
  const { isMounted } = await import("../ffi/mounts.ts");
  const started = Date.now();
  const logStart = await Deno.stat(log).then((s) => s.size).catch(() => 0);
  while (Date.now() - started < 60_000) {
    await new Promise((r) => setTimeout(r, 50));
    if (exited) break;
    const state = isMounted(mnt) ? await readState(mnt) : undefined;
    if (state && ready(state, child.pid)) {
      child.unref();
      console.log(
        `SlayerFS ${options.verb ?? "mounted"} at ${mnt} (pid ${state.pid}, log ${log})`,
      );
      return;
    }
  }
  if (!exited) {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    throw new CliError(`The mount at "${mnt}" did not become ready in 60 s (see ${log})`);
  }
  const text = (await Deno.readTextFile(log).catch(() => "")).slice(logStart);
  const reason = failureReason(text) ?? `The daemon failed (see ${log})`;
  // libfuse says why a mount failed on lines of its own ("fuse: failed to open /dev/fuse: ...").
  const fuse = text.split("\n").filter((l) => /^(fuse|fusermount3?): /.test(l))
    .map((l) => l.replace(/^fuse: /, ""));
  throw new CliError(fuse.length ? `${reason}: ${fuse.join("; ")}` : reason);
}
