/**
 * Helpers of the CLI tests: running the CLI in a folder and reading its one-line errors.
 *
 * @module
 */

import { CLI, REPO_ROOT } from "./_mount.ts";
import { run, type RunResult } from "./_run.ts";

/** Runs `deno run -A cli.ts ARGS…` in `cwd` (default: the repository root) with `env` added. */
export function cliIn(
  args: string[],
  cwd = REPO_ROOT,
  env: Record<string, string> = {},
): Promise<RunResult> {
  return run(Deno.execPath(), ["run", "-A", CLI, ...args], { cwd, env });
}

/** The non-empty stderr lines, without Deno's own download/check chatter. */
export function errorLines(stderr: string): string[] {
  const ansi = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g");
  return stderr.split("\n").map((l) => l.replace(ansi, "").trim())
    .filter((l) => l !== "" && !/^(Download|Check|Warning) /.test(l));
}
