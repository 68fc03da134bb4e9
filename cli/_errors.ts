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
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return err.message + cause;
  }
  return String(err);
}
