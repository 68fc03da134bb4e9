/**
 * The declarative description of a command (its arguments and options with type, default, unit
 * and help text) and the one parser that reads a command line against it. The `parseArgs` table,
 * the value checks, `--help` (`_help.ts`) and shell completion (`completion.ts`) all come from
 * these descriptions, so they cannot drift apart.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { formatSize, parseSize } from "../core/format.ts";
import { CliError } from "./_errors.ts";
import { closest, didYouMean } from "./_suggest.ts";

/** How an option's value is read. */
export type OptionKind =
  | "flag" // no value
  | "string" // any text
  | "size" // bytes, with an optional unit (a plain number counts `unit` bytes)
  | "int" // a whole number >= `min`
  | "seconds" // a number of seconds >= 0
  | "choice"; // one of `choices`

/** One option of a command. */
export interface OptionSpec {
  /** The long name, without `--`. */
  readonly name: string;
  /** A one-letter alias, without `-`. */
  readonly short?: string;
  /** How the value is read. */
  readonly kind: OptionKind;
  /** How the help names the value (`URL`, `DIR`, `SIZE`). */
  readonly arg?: string;
  /** The help text: what it does, in lower case, without a trailing period. */
  readonly help: string;
  /** The value when the option is not given (bytes for a size). */
  readonly default?: string | number;
  /** What the default means when it is not a plain value (`$SLAYERFS_HOME/slayerfs.log`). */
  readonly defaultText?: string;
  /** For a size: the bytes a plain number counts (2 ** 20 for MiB). Default 1. */
  readonly unit?: number;
  /** For a `choice`: the accepted values. */
  readonly choices?: readonly string[];
  /** For an `int`: the smallest accepted value. Default 0. */
  readonly min?: number;
  /** Whether the option may be given several times (values collect in a list). */
  readonly multiple?: boolean;
  /** What the shell should complete the value with. */
  readonly complete?: "file" | "dir";
}

/** One command: its usage, arguments, options and examples. */
export interface CommandSpec {
  /** The command name. */
  readonly name: string;
  /** Other names that run it. */
  readonly aliases?: readonly string[];
  /** One line on what it does (for `slayerfs --help`). */
  readonly summary: string;
  /** A paragraph or two for the command's `--help`. */
  readonly description?: string;
  /** The argument patterns after the options, one per usage line (`META_URL MOUNTPOINT`). */
  readonly usage: readonly string[];
  /** Each argument named in `usage`, with its help text. */
  readonly args: readonly { readonly name: string; readonly help: string }[];
  /** How many arguments: at least `[0]`, at most `[1]` (`Infinity` for a list). */
  readonly arity: readonly [number, number];
  /** What the shell should complete the arguments with: files, folders or these words. */
  readonly complete?: "file" | "dir" | readonly string[];
  /** The options (`-h/--help` is added to every command). */
  readonly options: readonly OptionSpec[];
  /** Example command lines, each with an optional `# comment`. */
  readonly examples: readonly string[];
}

/** The `-h/--help` option every command has. */
export const HELP_OPTION: OptionSpec = {
  name: "help",
  short: "h",
  kind: "flag",
  help: "show this help and exit",
};

/**
 * Where a setting came from: the command line, a `SLAYERFS_*` environment variable, the
 * `--config` file, or the option's default (`cli/_config.ts` merges them in this order).
 */
export type SettingSource = "flag" | "env" | "file" | "default";

/** A command line read against its {@linkcode CommandSpec}, every value checked. */
export class ParsedArgs {
  /** The arguments after the options. */
  readonly positionals: string[];
  /** The arguments as given, after the command name. */
  readonly raw: readonly string[];
  readonly #values: Map<string, unknown>;
  readonly #sources: Map<string, SettingSource>;

  /** Wraps the checked values and where each came from (`flag` when not said). */
  constructor(
    values: Map<string, unknown>,
    positionals: string[],
    raw: readonly string[],
    sources: Map<string, SettingSource> = new Map(),
  ) {
    this.#values = values;
    this.positionals = positionals;
    this.raw = raw;
    this.#sources = sources;
  }

  /** Whether option `name` has a value (given, or its default). */
  has(name: string): boolean {
    return this.#values.has(name);
  }

  /** Where option `name`'s value came from, or `undefined` when it has none. */
  source(name: string): SettingSource | undefined {
    return this.#values.has(name) ? this.#sources.get(name) ?? "flag" : undefined;
  }

  /** Option `name`'s checked value as stored (bytes for a size, a list when repeatable). */
  value(name: string): unknown {
    return this.#values.get(name);
  }

  /** A flag's value. */
  flag(name: string): boolean {
    return this.#values.get(name) === true;
  }

  /** A text or choice option's value, or its default. */
  string(name: string): string | undefined {
    return this.#values.get(name) as string | undefined;
  }

  /** A size (bytes), int or seconds option's value, or its default. */
  number(name: string): number {
    return this.#values.get(name) as number;
  }

  /** A repeatable option's values, in order (empty when not given). */
  list(name: string): string[] {
    return (this.#values.get(name) as string[] | undefined) ?? [];
  }
}

/** The option's names as the help shows them: `-d, --background`. */
export function optionNames(o: OptionSpec): string {
  return o.name.length === 1 ? `-${o.name}` : `${o.short ? `-${o.short}, ` : "    "}--${o.name}`;
}

/** How option `o` is written on a command line (`--cache-size`, `-o`). */
export function optionFlag(o: OptionSpec): string {
  return o.name.length === 1 ? `-${o.name}` : `--${o.name}`;
}

/** The default as the help shows it (`32 MiB`, `lz4`), or `undefined` for none. */
export function defaultText(o: OptionSpec): string | undefined {
  if (o.defaultText !== undefined) return o.defaultText;
  if (o.default === undefined) return undefined;
  if (o.kind === "size") return formatSize(o.default as number);
  if (o.kind === "seconds") return `${o.default} s`;
  return String(o.default);
}

/** Reads `args` (the words after the command name) against `spec`; bad input is a usage error. */
export function parseCommand(spec: CommandSpec, args: readonly string[]): ParsedArgs {
  const options = [...spec.options, HELP_OPTION];
  const words = joinNegativeValues(options, args);
  checkOptionNames(spec, options, words);
  let r: ReturnType<typeof parseArgs>;
  try {
    r = parseArgs({
      args: words,
      options: Object.fromEntries(options.map((o) => [o.name, {
        type: o.kind === "flag" ? "boolean" : "string",
        ...(o.short ? { short: o.short } : {}),
        ...(o.multiple ? { multiple: true } : {}),
      }])) as never,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0]! : String(err);
    throw usageError(spec, msg.replace(/\. To specify.*$/, "").replace(/\.$/, ""));
  }
  const given = r.values as Record<string, string | boolean | string[] | undefined>;
  const values = new Map<string, unknown>();
  const sources = new Map<string, SettingSource>();
  if (given.help === true) {
    values.set("help", true);
    return new ParsedArgs(values, r.positionals, args);
  }
  for (const o of spec.options) {
    const v = given[o.name];
    sources.set(o.name, v === undefined ? "default" : "flag");
    if (v === undefined) {
      if (o.default !== undefined) values.set(o.name, o.default);
    } else if (Array.isArray(v)) {
      values.set(o.name, v.map((x) => checkValue(spec, o, x)));
    } else {
      values.set(o.name, typeof v === "boolean" ? v : checkValue(spec, o, v));
    }
  }
  const n = r.positionals.length;
  if (n > spec.arity[1]) {
    throw usageError(spec, `Unexpected argument "${r.positionals[spec.arity[1]]}"`);
  }
  // A command with a settings file may have its arguments there (checked once merged).
  if (!hasSettings(spec)) checkArity(spec, n);
  return new ParsedArgs(values, r.positionals, args, sources);
}

/**
 * Whether `spec` reads settings from a `--config` file and `SLAYERFS_*` variables (it has a
 * `config` option and is not the `config` command itself): see `cli/_config.ts`.
 */
export function hasSettings(spec: CommandSpec): boolean {
  return spec.name !== "config" && spec.options.some((o) => o.name === "config");
}

/** Throws a usage error naming the first missing argument when there are fewer than `n`. */
export function checkArity(spec: CommandSpec, n: number): void {
  if (n < spec.arity[0]) {
    const names = spec.usage[0]!.split(" ").filter((w) => !w.startsWith("["));
    const missing = names[n]?.replace(/\.\.\.$/, "") ?? "an argument";
    throw usageError(spec, `Missing ${missing}`);
  }
}

/** A usage error (exit 2), with the command's usage lines when `withUsage`. */
export function usageError(spec: CommandSpec, message: string, withUsage = true): CliError {
  const usage = spec.usage.map((u) => `slayerfs ${spec.name} [OPTIONS] ${u}`).join(" | ");
  const see = `see slayerfs ${spec.name} --help`;
  return new CliError(`${message} (${withUsage ? `usage: ${usage}; ${see}` : see})`, 2);
}

/**
 * `--opt -5` as `--opt=-5`: `parseArgs` takes a value starting with `-` for an option and answers
 * "ambiguous", while the value check below can say what is wrong with a negative number.
 */
function joinNegativeValues(options: readonly OptionSpec[], args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const w = args[i]!;
    const o = w === "--" ? undefined : findOption(options, w);
    const next = args[i + 1];
    if (o && o.kind !== "flag" && next !== undefined && /^-\d|^-\.\d/.test(next)) {
      out.push(`${w.startsWith("--") ? w : `--${o.name}`}=${next}`);
      i++;
    } else {
      out.push(w);
    }
    if (w === "--") {
      out.push(...args.slice(i + 1));
      break;
    }
  }
  return out;
}

/** The option a word names exactly (`--name` or `-x`, without a value), if any. */
function findOption(options: readonly OptionSpec[], word: string): OptionSpec | undefined {
  if (word.startsWith("--")) return options.find((o) => o.name === word.slice(2));
  if (/^-[A-Za-z]$/.test(word)) {
    return options.find((o) => o.short === word[1] || o.name === word[1]);
  }
  return undefined;
}

/** Throws a usage error, with the closest known name, for the first unknown `--name`. */
function checkOptionNames(
  spec: CommandSpec,
  options: readonly OptionSpec[],
  words: readonly string[],
): void {
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === "--") return;
    if (!w.startsWith("-") || w === "-") continue;
    const name = w.startsWith("--") ? w.slice(2).split("=")[0]! : undefined;
    const o = name === undefined
      ? options.find((x) => x.short === w[1] || x.name === w[1])
      : options.find((x) => x.name === name);
    if (o === undefined) {
      const typed = name === undefined ? w.slice(0, 2) : `--${name}`;
      const flags = options.map((x) => optionFlag(x));
      throw usageError(
        spec,
        `Unknown option "${typed}"${didYouMean(closest(typed, flags))}`,
        false,
      );
    }
    // Skip the separate value of an option that takes one.
    if (o.kind !== "flag" && !w.includes("=") && (name !== undefined || w.length === 2)) i++;
  }
}

/** Checks one value of option `o`; returns it as the command reads it (bytes for a size). */
function checkValue(spec: CommandSpec, o: OptionSpec, text: string): string | number {
  try {
    return readValue(o, text);
  } catch (err) {
    throw usageError(spec, `Invalid ${optionFlag(o)} "${text}": ${(err as Error).message}`, false);
  }
}

/**
 * One value of option `o` as the command reads it (bytes for a size); a bad one throws an error
 * saying what is wrong with it (`must not be negative`), for the caller to name where it was.
 */
export function readValue(o: OptionSpec, text: string): string | number {
  const bad = (why: string) => new RangeError(why);
  switch (o.kind) {
    case "size":
      try {
        return parseSize(text, o.unit ?? 1);
      } catch (err) {
        throw bad((err as Error).message.replace(/^Invalid size "[^"]*": /, ""));
      }
    case "int": {
      const min = o.min ?? 0;
      if (!/^-?\d+$/.test(text.trim())) throw bad("expected a whole number");
      const n = Number(text);
      if (n < min) throw bad(n < 0 ? "must not be negative" : `expected at least ${min}`);
      return n;
    }
    case "seconds": {
      const n = text.trim() === "" ? NaN : Number(text);
      if (!Number.isFinite(n)) throw bad("expected a number of seconds");
      if (n < 0) throw bad("must not be negative");
      return n;
    }
    case "choice":
      if (!o.choices!.includes(text)) {
        throw bad(`expected ${o.choices!.join(" or ")}${didYouMean(closest(text, o.choices!))}`);
      }
      return text;
    default:
      return text;
  }
}
