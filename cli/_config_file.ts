/**
 * Reading a settings file (`--config FILE`): YAML (`.yaml`, `.yml`, with the `yaml` package) or
 * TOML (`.toml`, with `smol-toml`), chosen by the file's extension, into plain data and a way to
 * find the line of any key in it, so that every error names the file, the line and the key.
 *
 * YAML keeps the position of every node (`parseDocument` with a `LineCounter`). `smol-toml` gives
 * positions only for syntax errors, so the lines of TOML keys come from a scan of the text: table
 * headers (`[mount]`) and `key = value` lines, with bare, quoted and dotted keys.
 *
 * @module
 */

import { parse as parseToml, TomlError } from "smol-toml";
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { CliError, describe } from "./_errors.ts";

/** A key's path in the data: section, key, and list index or map key below it. */
export type KeyPath = readonly (string | number)[];

/** A settings file as read: its data, and where each key is. */
export interface SettingsFile {
  /** The file's path as given. */
  readonly path: string;
  /** The file's contents as plain data (objects, lists, strings, numbers, booleans). */
  readonly data: unknown;
  /** The line (from 1) of the key at `path`, or of the nearest enclosing key that has one. */
  line(path: KeyPath): number;
}

/** The extensions a settings file may have, and their formats. */
const FORMATS: Record<string, "yaml" | "toml"> = { yaml: "yaml", yml: "yaml", toml: "toml" };

/** Reads the settings file at `path`; a missing, unreadable or malformed file is a usage error. */
export function readSettingsFile(path: string): SettingsFile {
  const ext = /\.([^./]+)$/.exec(path)?.[1]?.toLowerCase() ?? "";
  const format = FORMATS[ext];
  if (format === undefined) {
    throw new CliError(
      `Config file "${path}" must end in .yaml, .yml or .toml (its format comes from its name)`,
      2,
    );
  }
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    const why = describe(err).replace(/ \(os error \d+\).*$/, "").replace(/: readfile '.*'$/, "");
    throw new CliError(`Cannot read config file "${path}": ${why}`, 2);
  }
  return format === "yaml" ? readYaml(path, text) : readToml(path, text);
}

function readYaml(path: string, text: string): SettingsFile {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const error = doc.errors[0];
  if (error !== undefined) {
    const line = error.linePos?.[0].line ?? lineCounter.linePos(error.pos[0]).line;
    throw new CliError(`${path}:${line}: ${firstLine(error.message)}`, 2);
  }
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;
  return {
    path,
    data: doc.toJS() ?? {},
    line(keys) {
      let node: unknown = doc.contents;
      let line = 1;
      for (const k of keys) {
        if (isMap(node)) {
          const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === k);
          if (pair === undefined) break;
          const key = pair.key as Node;
          if (key.range) line = lineAt(key.range[0]);
          node = pair.value;
        } else if (isSeq(node) && typeof k === "number") {
          node = node.items[k];
          const range = (node as Node | undefined)?.range;
          if (range) line = lineAt(range[0]);
        } else {
          break;
        }
      }
      return line;
    },
  };
}

function readToml(path: string, text: string): SettingsFile {
  let data: unknown;
  try {
    data = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      throw new CliError(`${path}:${err.line}: ${firstLine(err.message)}`, 2);
    }
    throw err;
  }
  const lines = tomlKeyLines(text);
  return {
    path,
    data,
    line(keys) {
      // The longest prefix of the path that is a key (a list's items are on its key's line).
      const names = keys.filter((k): k is string => typeof k === "string");
      for (let n = names.length; n > 0; n--) {
        const line = lines.get(names.slice(0, n).join("\0"));
        if (line !== undefined) return line;
      }
      return 1;
    },
  };
}

const KEY_PART = String.raw`(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')`;
const DOTTED = String.raw`${KEY_PART}(?:\s*\.\s*${KEY_PART})*`;
const HEADER = new RegExp(String.raw`^\s*\[\[?\s*(${DOTTED})\s*\]\]?\s*(?:#.*)?$`);
const ASSIGN = new RegExp(String.raw`^\s*(${DOTTED})\s*=`);
const INLINE_KEY = new RegExp(String.raw`[{,]\s*(${DOTTED})\s*=`, "g");

/** The parts of a dotted TOML key, unquoted: `a."b.c"` is `["a", "b.c"]`. */
function keyParts(dotted: string): string[] {
  return [...dotted.matchAll(new RegExp(KEY_PART, "g"))].map(([p]) =>
    p.startsWith('"') ? JSON.parse(p) : p.startsWith("'") ? p.slice(1, -1) : p
  );
}

/**
 * The line of every key of a TOML text, by its full path joined with NUL: the table headers, the
 * `key = value` lines below them, and the keys of inline tables on such a line.
 */
function tomlKeyLines(text: string): Map<string, number> {
  const lines = new Map<string, number>();
  const note = (path: string[], line: number) => {
    const k = path.join("\0");
    if (!lines.has(k)) lines.set(k, line);
  };
  let table: string[] = [];
  text.split("\n").forEach((l, i) => {
    const header = HEADER.exec(l);
    if (header) {
      table = keyParts(header[1]!);
      note(table, i + 1);
      return;
    }
    const assign = ASSIGN.exec(l);
    if (!assign) return;
    const key = [...table, ...keyParts(assign[1]!)];
    note(key, i + 1);
    for (const m of l.slice(assign[0].length).matchAll(INLINE_KEY)) {
      note([...key, ...keyParts(m[1]!)], i + 1);
    }
  });
  return lines;
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.replace(/\s+at line \d+, column \d+:?$/, "").replace(/\.$/, "");
}
