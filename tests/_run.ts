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
}

const dec = new TextDecoder();

/** Runs `cmd args…` with stdin closed and waits for it, collecting stdout and stderr. */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const out = await new Deno.Command(cmd, {
    args,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    env: opts.env ?? {},
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
