/**
 * Runs a command to completion and returns its exit code and decoded output: the one
 * spawn-and-wait helper of the test harnesses (mounts, CLI calls, child processes, other users).
 *
 * @example
 * ```ts ignore
 * const r = await run("true", []);
 * if (r.code !== 0) throw new Error(r.stderr);
 * ```
 *
 * @module
 */

/** The outcome of a finished command. */
export interface RunResult {
  /** The exit code. */
  code: number;
  /** Everything it wrote to stdout, decoded as UTF-8. */
  stdout: string;
  /** Everything it wrote to stderr, decoded as UTF-8. */
  stderr: string;
}

/** Options for {@link run}. */
export interface RunOptions {
  /** The working directory (default: this process's). */
  cwd?: string;
  /** Variables added to the inherited environment. */
  env?: Record<string, string>;
  /**
   * Kill the command (SIGKILL) and throw if it runs longer than this many ms, so a hung command
   * fails its test with what it printed instead of stalling the run (default: no limit).
   */
  timeoutMs?: number;
}

const dec = new TextDecoder();

/** Runs `cmd args…` with stdin closed and waits for it, collecting stdout and stderr. */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    env: opts.env ?? {},
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }, opts.timeoutMs);
  try {
    const out = await child.output();
    const r = { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    if (timedOut) {
      throw new Error(
        `"${cmd} ${args.join(" ")}" did not finish within ${opts.timeoutMs} ms; ` +
          `stdout: ${r.stdout}\nstderr: ${r.stderr}`,
      );
    }
    return r;
  } finally {
    clearTimeout(timer);
  }
}
