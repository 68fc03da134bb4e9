/**
 * Settings from three places besides the command line, merged into one parsed option record:
 * command-line flags, then `SLAYERFS_<OPTION>` environment variables, then the command's section
 * of the `--config` file (YAML or TOML, `_config_file.ts`), then the defaults.
 *
 * Everything is derived from the command table (`_commands.ts`): every command with a `config`
 * option has a section named after it (`mount:`, `format:`), whose keys are the long option names
 * as written on the command line (`cache-size`, `log-level`), `options` for `-o` (a list, or a
 * map of name to value), and the command's arguments (`meta-url`, `mountpoint`, `name`). The
 * schema (zod) is built from the same table, so a new option is accepted, checked and shown by
 * `config show` without any change here. Its environment variable is its name in capitals with
 * `_` for `-` (`SLAYERFS_CACHE_SIZE`); `SLAYERFS_OPTIONS` is `-o`, `SLAYERFS_META_URL` the
 * metadata URL and `SLAYERFS_CONFIG` the file.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { z } from "zod";
import { Redactor } from "../core/_log_output.ts";
import { formatSize } from "../core/format.ts";
import { COMMANDS, MOUNT_OPTIONS } from "./_commands.ts";
import { type KeyPath, readSettingsFile, type SettingsFile } from "./_config_file.ts";
import { CliError } from "./_errors.ts";
import {
  type CommandSpec,
  hasSettings,
  type OptionSpec,
  ParsedArgs,
  readValue,
  type SettingSource,
  usageError,
} from "./_spec.ts";
import { closest, didYouMean } from "./_suggest.ts";
import { checkMetaUrl } from "./_urls.ts";

/** The environment variable naming the settings file when `--config` is not given. */
export const CONFIG_ENV = "SLAYERFS_CONFIG";

/** How sources rank: a setting from a higher one wins. */
const RANK: Record<SettingSource, number> = { flag: 3, env: 2, file: 1, default: 0 };

/** Whether a setting from `a` overrides one from `b`. */
export function outranks(a: SettingSource | undefined, b: SettingSource | undefined): boolean {
  return RANK[a ?? "default"] > RANK[b ?? "default"];
}

/** The commands that have a section in a settings file. */
export function sections(): CommandSpec[] {
  return COMMANDS.filter(hasSettings);
}

/** The file key of option `o`: its long name, `options` for `-o`. */
export function fileKey(o: OptionSpec): string {
  return o.name === "o" ? "options" : o.name;
}

/** The environment variable of option `o`: `SLAYERFS_CACHE_SIZE`, `SLAYERFS_OPTIONS` for `-o`. */
export function envName(o: OptionSpec): string {
  return `SLAYERFS_${fileKey(o).toUpperCase().replaceAll("-", "_")}`;
}

/** The command's argument slots, in order (`META_URL`, `MOUNTPOINT`). */
function slots(spec: CommandSpec): string[] {
  return spec.usage[0]!.split(" ").filter((w) => /^[A-Z_]+$/.test(w));
}

/** The file key of argument `slot`: `meta-url` for `META_URL`. */
export function slotKey(slot: string): string {
  return slot.toLowerCase().replaceAll("_", "-");
}

/** The options a settings file or the environment may set (not `--config` itself). */
function settable(spec: CommandSpec): OptionSpec[] {
  return spec.options.filter((o) => o.name !== "config");
}

/** The `-o` names (without `=VALUE`). */
const O_NAMES = MOUNT_OPTIONS.map((o) => o.name.replace(/=.*$/, ""));

type Ctx = z.core.$RefinementCtx<unknown>;

function issue(ctx: Ctx, input: unknown, message: string, path: KeyPath = []): typeof z.NEVER {
  ctx.issues.push({ code: "custom", message, input, path: [...path] });
  return z.NEVER;
}

/** What a value of each kind looks like, for errors. */
function expected(o: OptionSpec): string {
  switch (o.kind) {
    case "size":
      return "expected a size like 64M or 2G";
    case "int":
      return "expected a whole number";
    case "seconds":
      return "expected a number of seconds";
    case "choice":
      return `expected ${o.choices!.join(" or ")}`;
    default:
      return "expected text";
  }
}

/** The schema of one option's value in a file: the value as `ParsedArgs` holds it. */
function optionSchema(o: OptionSpec, base: string): z.ZodType {
  if (o.kind === "flag") return z.boolean({ error: "expected true or false" });
  if (o.name === "o") return mountOptionsSchema();
  const one = (v: unknown, ctx: Ctx, at: KeyPath): string | number => {
    if (typeof v !== "string" && typeof v !== "number") return issue(ctx, v, expected(o), at);
    let value: string | number;
    try {
      value = readValue(o, String(v));
    } catch (err) {
      return issue(ctx, v, `= ${JSON.stringify(v)}: ${(err as Error).message}`, at);
    }
    // A path in the file is relative to the file's folder.
    return o.complete !== undefined && typeof value === "string" ? resolve(base, value) : value;
  };
  return z.unknown().transform((v, ctx) => {
    if (!o.multiple) return one(v, ctx, []);
    return Array.isArray(v) ? v.map((x, i) => one(x, ctx, [i])) : [one(v, ctx, [])];
  });
}

/** `options`: `[allow_other, "attr_timeout=1"]`, or `{allow_other: true, attr_timeout: 1}`. */
function mountOptionsSchema(): z.ZodType {
  const known = (name: string, ctx: Ctx, v: unknown, at: KeyPath) =>
    O_NAMES.includes(name) ||
    issue(ctx, v, `unknown mount option "${name}"${didYouMean(closest(name, O_NAMES))}`, at);
  return z.unknown().transform((v, ctx) => {
    const out: string[] = [];
    if (Array.isArray(v)) {
      v.forEach((x, i) => {
        if (typeof x !== "string") return issue(ctx, x, "expected a mount option like ro", [i]);
        for (const part of x.split(",").filter(Boolean)) {
          if (known(part.split("=")[0]!, ctx, x, [i]) === true) out.push(part);
        }
      });
    } else if (v !== null && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (known(k, ctx, x, [k]) !== true) continue;
        if (x === true) out.push(k);
        else if (typeof x === "string" || typeof x === "number") out.push(`${k}=${x}`);
        else if (x !== false) issue(ctx, x, "expected true, false, text or a number", [k]);
      }
    } else {
      return issue(ctx, v, "expected a list of mount options or a map of them");
    }
    return out;
  });
}

/** The schema of `spec`'s section. */
function sectionSchema(spec: CommandSpec, base: string): z.ZodType {
  const shape: Record<string, z.ZodType> = {};
  for (const o of settable(spec)) shape[fileKey(o)] = optionSchema(o, base).optional();
  for (const slot of slots(spec)) {
    shape[slotKey(slot)] = z.string({ error: "expected text" }).transform((v, ctx) => {
      if (slot === "META_URL") {
        try {
          checkMetaUrl(v);
        } catch (err) {
          return issue(ctx, v, (err as Error).message.replace(/\s*\(did you mean.*$/, ""));
        }
      }
      return slot === "MOUNTPOINT" ? resolve(base, v) : v;
    }).optional();
  }
  return z.strictObject(shape);
}

/** The known keys at `path` of a file (for "did you mean"). */
function knownKeys(path: KeyPath): string[] {
  if (path.length === 0) return sections().map((s) => s.name);
  const spec = sections().find((s) => s.name === path[0]);
  if (spec === undefined) return [];
  return [...settable(spec).map(fileKey), ...slots(spec).map(slotKey)];
}

/** One section of a settings file, checked: values as `ParsedArgs` holds them, with their lines. */
export interface FileSection {
  /** The file's path. */
  readonly path: string;
  /** Each key's value (an option's name, or an argument's key like `meta-url`). */
  readonly values: Map<string, unknown>;
  /** Each key's line. */
  readonly lines: Map<string, number>;
}

/**
 * Reads and checks the settings file at `path` (every section, so that a mistake anywhere is
 * found whichever command reads it) and returns `spec`'s section. The first problem, by line, is
 * a usage error `FILE:LINE: key "mount.cache-size": ...`.
 */
export function readSection(spec: CommandSpec, path: string): FileSection {
  const file = readSettingsFile(path);
  const base = dirname(resolve(path));
  const shape = Object.fromEntries(
    sections().map((s) => [s.name, sectionSchema(s, base).optional()]),
  );
  const schema = z.strictObject(shape, { error: "expected sections like mount: and format:" });
  const r = schema.safeParse(file.data);
  if (!r.success) throw fileError(file, r.error.issues);
  const section = (r.data as Record<string, Record<string, unknown> | undefined>)[spec.name] ?? {};
  const values = new Map<string, unknown>();
  const lines = new Map<string, number>();
  const byKey = new Map(settable(spec).map((o) => [fileKey(o), o.name]));
  for (const [k, v] of Object.entries(section)) {
    if (v === undefined) continue;
    const name = byKey.get(k) ?? k;
    values.set(name, v);
    lines.set(name, file.line([spec.name, k]));
  }
  return { path, values, lines };
}

function fileError(file: SettingsFile, issues: readonly z.core.$ZodIssue[]): CliError {
  const found = issues.map((i) => {
    const path = i.path as (string | number)[];
    if (i.code === "unrecognized_keys") {
      const key = i.keys[0]!;
      const where = [...path, key];
      const near = didYouMean(closest(key, knownKeys(path)));
      return { line: file.line(where), text: `unknown key "${dotted(where)}"${near}` };
    }
    // A value quoted in the message follows the key: `key "mount.log-level" = "debg": ...`.
    const key = path.length ? `key "${dotted(path)}"${i.message.startsWith("=") ? " " : ": "}` : "";
    return { line: file.line(path), text: `${key}${i.message}` };
  }).sort((a, b) => a.line - b.line);
  return new CliError(`${file.path}:${found[0]!.line}: ${found[0]!.text}`, 2);
}

/** `mount.cache-dir[1]` for a path. */
function dotted(path: KeyPath): string {
  return path.map((k, i) => typeof k === "number" ? `[${k}]` : i ? `.${k}` : k).join("");
}

/** The settings of `spec` given as `SLAYERFS_*` variables, checked. */
function envSection(spec: CommandSpec, env: Record<string, string>): Map<string, unknown> {
  const values = new Map<string, unknown>();
  for (const o of settable(spec)) {
    const name = envName(o);
    const text = env[name];
    if (text === undefined) continue;
    const bad = (why: string) => new CliError(`Invalid ${name} "${text}": ${why}`, 2);
    if (o.kind === "flag") {
      if (/^(1|true|yes|on)$/i.test(text)) values.set(o.name, true);
      else if (/^(0|false|no|off|)$/i.test(text)) values.set(o.name, false);
      else throw bad("expected true or false (1 or 0)");
      continue;
    }
    const read = (t: string) => {
      try {
        return readValue(o, t);
      } catch (err) {
        throw bad((err as Error).message);
      }
    };
    // A repeatable option's variable is a comma-separated list (`-o`'s items are lists already).
    values.set(
      o.name,
      o.name === "o" ? [text] : o.multiple ? text.split(",").filter(Boolean).map(read) : read(text),
    );
  }
  const meta = env.SLAYERFS_META_URL;
  if (meta !== undefined && slots(spec).includes("META_URL")) values.set("meta-url", meta);
  return values;
}

/** The merged settings of a command line, with the file's lines for `config show`. */
export interface Settings {
  /** The merged record: what the command runs with. */
  readonly args: ParsedArgs;
  /** The settings file read, if any. */
  readonly file?: string;
  /** The line of each setting that came from the file. */
  readonly lines: ReadonlyMap<string, number>;
}

/**
 * Merges `parsed` (a command line of `spec`) with the environment and the settings file into the
 * record the command runs with. The arguments on the command line are the last ones of the
 * usage line (`mount /mnt/x`: the mountpoint); the ones before come from the environment or the
 * file.
 */
export function loadSettings(
  spec: CommandSpec,
  parsed: ParsedArgs,
  { env = Deno.env.toObject(), complete = true }: {
    /** The environment (default: the process's). */
    env?: Record<string, string>;
    /** Whether missing arguments are an error (not for `config show`). */
    complete?: boolean;
  } = {},
): Settings {
  const configPath = parsed.source("config") === "flag"
    ? parsed.string("config")
    : env[CONFIG_ENV] || undefined;
  const file = configPath === undefined ? undefined : readSection(spec, configPath);
  const fromEnv = envSection(spec, env);
  const values = new Map<string, unknown>();
  const sources = new Map<string, SettingSource>();
  const lines = new Map<string, number>();
  const set = (name: string, value: unknown, source: SettingSource) => {
    values.set(name, value);
    sources.set(name, source);
    if (source === "file") lines.set(name, file!.lines.get(name)!);
  };
  if (configPath !== undefined) set("config", configPath, parsed.source("config") ?? "env");
  for (const o of settable(spec)) {
    if (parsed.source(o.name) === "flag") set(o.name, parsed.value(o.name), "flag");
    else if (fromEnv.has(o.name)) set(o.name, fromEnv.get(o.name), "env");
    else if (file?.values.has(o.name)) set(o.name, file.values.get(o.name), "file");
    else if (parsed.has(o.name)) set(o.name, parsed.value(o.name), "default");
  }
  // A flag turned off (`writeback: false`, `SLAYERFS_WRITEBACK=0`) is not given.
  for (const o of settable(spec)) if (values.get(o.name) === false) values.delete(o.name);
  const all = slots(spec);
  const given = parsed.positionals;
  const positionals = [...given];
  all.slice(all.length - given.length).forEach((s, i) => set(slotKey(s), given[i], "flag"));
  // The arguments before those on the command line, from the right, as long as there are some.
  for (let i = all.length - given.length - 1; i >= 0; i--) {
    const key = slotKey(all[i]!);
    const source = fromEnv.has(key) ? "env" : file?.values.has(key) ? "file" : undefined;
    if (source === undefined) break;
    const value = (source === "env" ? fromEnv : file!.values).get(key) as string;
    positionals.unshift(value);
    set(key, value, source);
  }
  if (complete && positionals.length < spec.arity[0]) {
    const missing = all[all.length - positionals.length - 1] ?? "an argument";
    const env = missing === "META_URL" ? ", in SLAYERFS_META_URL" : "";
    const where = file ? ` (not on the command line${env} or in ${file.path})` : "";
    throw usageError(spec, `Missing ${missing}${where}`);
  }
  return {
    args: new ParsedArgs(values, positionals, parsed.raw, sources),
    ...(file ? { file: file.path } : {}),
    lines,
  };
}

/** {@linkcode loadSettings}' merged record. */
export function applySettings(spec: CommandSpec, parsed: ParsedArgs): ParsedArgs {
  return loadSettings(spec, parsed).args;
}

/** One effective setting: its value (masked), where it came from, and its text for people. */
export interface Setting {
  /** The value as the command reads it (bytes for a size), credentials masked. */
  value: unknown;
  /** Where it came from. */
  source: SettingSource;
  /** The file's line, for a setting from the file. */
  line?: number;
  /** The value as people read it (`2 GiB`). */
  text: string;
}

/** Every setting of `spec` in `settings` (arguments first, then the options in table order). */
export function effectiveSettings(
  spec: CommandSpec,
  args: ParsedArgs,
  lines: ReadonlyMap<string, number> = new Map(),
): Record<string, Setting> {
  const redactor = new Redactor();
  const mask = (v: unknown): unknown =>
    typeof v === "string" ? redactor.redact(v) : Array.isArray(v) ? v.map(mask) : v;
  const out: Record<string, Setting> = {};
  const add = (key: string, name: string, o?: OptionSpec) => {
    const source = args.source(name);
    if (source === undefined) return;
    const value = mask(args.value(name));
    const text = Array.isArray(value)
      ? value.join(", ")
      : o?.kind === "size"
      ? formatSize(value as number)
      : o?.kind === "seconds"
      ? `${value} s`
      : String(value);
    const line = lines.get(name);
    out[key] = { value, source, ...(line !== undefined ? { line } : {}), text };
  };
  for (const s of slots(spec)) add(slotKey(s), slotKey(s));
  for (const o of spec.options) add(fileKey(o), o.name, o);
  return out;
}
