/**
 * Argument parsing shared by the commands: flags through `node:util` `parseArgs`, sizes, and the
 * MiB figures the commands print. Every bad argument becomes a usage {@linkcode CliError} (exit 2).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parseSize } from "../core/format.ts";
import { CliError } from "./_errors.ts";

/** The flag table of one command, as `parseArgs` takes it. */
export type Flags = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>["options"]>;

/** Parses `args` strictly against `options`; an unknown or malformed flag is a usage error. */
export function parse(
  args: string[],
  options: Flags,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, allowPositionals: true, strict: true });
    return {
      values: r.values as Record<string, string | boolean | undefined>,
      positionals: r.positionals,
    };
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0]! : String(err);
    throw new CliError(`${msg.replace(/\. To specify.*$/, "")} (see slayerfs --help)`, 2);
  }
}

/** Throws a usage error naming `usage` unless there are exactly `n` positional arguments. */
export function expectArgs(positionals: string[], n: number, usage: string): void {
  if (positionals.length !== n) {
    throw new CliError(`Expected ${usage} (see slayerfs --help)`, 2);
  }
}

/** Parses a size argument (`4M`, `64K`); a bad one is a usage error. */
export function sizeArg(text: string): number {
  try {
    return parseSize(text);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
}

/** `bytes` in MiB with one decimal, without the unit: `1.5`. */
export function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}
