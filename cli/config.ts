/**
 * `slayerfs config show [format] [--json] [--config FILE] [OPTIONS] [ARGS]`: the settings `mount`
 * (or `format`) would run with, merged from the command line, `SLAYERFS_*` variables, the
 * settings file and the defaults (`_config.ts`), each with where it came from; credentials in
 * URLs masked.
 *
 * @module
 */

import { findCommand } from "./_commands.ts";
import { effectiveSettings, loadSettings, sections } from "./_config.ts";
import { optionFlag, ParsedArgs, type SettingSource, usageError } from "./_spec.ts";

/** Runs `slayerfs config` with its checked arguments. */
export function cmdConfig(args: ParsedArgs): Promise<void> {
  const spec = findCommand("config")!;
  const [action, ...rest] = args.positionals;
  if (action !== "show") throw usageError(spec, `Unknown action "${action}": expected show`);
  const named = sections().find((s) => s.name === rest[0]);
  const subject = named ?? findCommand("mount")!;
  if (named) rest.shift();
  // The options given must be the subject's: its own record, as its command line would give.
  const values = new Map<string, unknown>();
  const sources = new Map<string, SettingSource>();
  for (const o of spec.options) {
    if (o.name === "json") continue;
    const mine = subject.options.find((x) => x.name === o.name);
    if (args.source(o.name) === "flag" && mine === undefined) {
      throw usageError(spec, `${optionFlag(o)} is not an option of ${subject.name}`, false);
    }
    if (mine === undefined || !args.has(o.name)) continue;
    values.set(o.name, args.value(o.name));
    sources.set(o.name, args.source(o.name)!);
  }
  if (rest.length > subject.arity[1]) {
    throw usageError(spec, `Unexpected argument "${rest[subject.arity[1]]}"`);
  }
  const own = new ParsedArgs(values, rest, args.raw, sources);
  const { args: merged, file, lines } = loadSettings(subject, own, { complete: false });
  const settings = effectiveSettings(subject, merged, lines);
  if (args.flag("json")) {
    console.log(JSON.stringify({ command: subject.name, file: file ?? null, settings }, null, 2));
    return Promise.resolve();
  }
  const rows = Object.entries(settings).map(([key, s]) => [
    key,
    s.text,
    s.source === "file" ? `file ${file}:${s.line}` : s.source,
  ]);
  const w0 = Math.max(...rows.map((r) => r[0]!.length));
  const w1 = Math.min(60, Math.max(...rows.map((r) => r[1]!.length)));
  console.log(`${subject.name} settings${file ? ` (config file ${file})` : ""}:`);
  for (const [k, v, s] of rows) console.log(`  ${k!.padEnd(w0)}  ${v!.padEnd(w1)}  ${s}`);
  return Promise.resolve();
}
