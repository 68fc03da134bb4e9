/**
 * The CLI's error: one line on stderr and an exit code; and how any error reads on that line.
 *
 * @module
 */

import { BackendError } from "../backends/mod.ts";
import { FsError } from "../core/errno.ts";

/** An error that ends the command with one line and an exit code. */
export class CliError extends Error {
  /** The process exit code (2 for usage errors). */
  readonly exitCode: number;
  /** Creates the error. */
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/** The one-line description of `err`: its message, and its cause's for an unexpected error. */
export function describe(err: unknown): string {
  if (err instanceof CliError || err instanceof BackendError || err instanceof FsError) {
    return err.message;
  }
  if (err instanceof Error) {
    // Each cause once: a message often already quotes its cause's.
    let text = err.message;
    for (let c = err.cause, depth = 0; c instanceof Error && depth < 5; c = c.cause, depth++) {
      if (!text.includes(c.message)) text += `: ${c.message}`;
    }
    return text.replace(FETCH_NOISE, "cannot connect: ");
  }
  return String(err);
}

/** What Deno's `fetch` says around a refused or unreachable connection, before the reason. */
const FETCH_NOISE =
  /Request to \S+ failed: fetch failed: error sending request for url \([^)]*\): client error \(Connect\): (?:tcp connect error: )?/g;
