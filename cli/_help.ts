/**
 * The `--help` texts, generated from the command descriptions in `_commands.ts`.
 *
 * @module
 */

import { kvSchemes, storeSchemes } from "../backends/mod.ts";
import { COMMANDS, MOUNT_OPTIONS } from "./_commands.ts";
import {
  type CommandSpec,
  defaultText,
  HELP_OPTION,
  optionNames,
  type OptionSpec,
} from "./_spec.ts";
import { urlExamples } from "./_urls.ts";

/** The width help text is wrapped to. */
const WIDTH = 100;

/** `text` in lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/)) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}

/** Lines of `[left, right]` pairs with the right column aligned and wrapped. */
function table(rows: readonly (readonly [string, string])[], indent = "  "): string {
  const width = Math.max(0, ...rows.map(([l]) => l.length)) + 2;
  const pad = " ".repeat(indent.length + width);
  return rows.map(([l, r]) =>
    `${indent}${l.padEnd(width)}${wrap(r, WIDTH - pad.length).join(`\n${pad}`)}`.trimEnd()
  ).join("\n");
}

function optionRow(o: OptionSpec): [string, string] {
  const left = optionNames(o) + (o.arg ? ` ${o.arg}` : "");
  const def = defaultText(o);
  return [left, o.help + (def === undefined ? "" : ` (default: ${def})`)];
}

/** The `--help` text of one command. */
export function commandHelp(spec: CommandSpec): string {
  const usage = spec.usage.map((u, i) =>
    `${i === 0 ? "Usage:" : "      "} slayerfs ${spec.name} [OPTIONS]${u ? ` ${u}` : ""}`
  );
  const parts = [usage.join("\n"), "", capitalize(spec.summary) + "."];
  if (spec.description) parts.push("", wrap(spec.description, WIDTH).join("\n"));
  if (spec.args.length) {
    parts.push("", "Arguments:", table(spec.args.map((a) => [a.name, a.help])));
  }
  parts.push("", "Options:", table([...spec.options, HELP_OPTION].map(optionRow)));
  if (spec.name === "mount") {
    parts.push("", "Mount options (-o a,b=c):", table(MOUNT_OPTIONS.map((o) => [o.name, o.help])));
  }
  if (spec.options.some((o) => o.kind === "size")) {
    parts.push("", "Sizes take a unit: 4M, 512MiB, 20G, 64K (binary: K = KiB = 1024 bytes).");
  }
  if (spec.args.some((a) => a.name.includes("META_URL"))) {
    parts.push("", `Metadata URLs: ${urlExamples(kvSchemes())}`);
  }
  if (spec.options.some((o) => o.name === "storage")) {
    parts.push(`Storage URLs:  ${urlExamples(storeSchemes())}`);
  }
  parts.push("", spec.examples.length > 1 ? "Examples:" : "Example:");
  parts.push(...spec.examples.map((e) => `  ${e}`));
  return parts.join("\n") + "\n";
}

/** The `slayerfs --help` text: every command with its summary. */
export function mainHelp(): string {
  return `SlayerFS: a POSIX filesystem on object storage

Usage: slayerfs COMMAND [OPTIONS] [ARGS...]

Commands:
${table(COMMANDS.map((c) => [c.name, c.summary]))}

Options:
${
    table([["-h, --help", "show this help (COMMAND --help: that command's)"], [
      "-V, --version",
      "print the versions of SlayerFS, Deno and libfuse",
    ]])
  }

Metadata URLs: ${urlExamples(kvSchemes())}
Storage URLs:  ${urlExamples(storeSchemes())}

Run "slayerfs COMMAND --help" for a command's options, defaults and examples.
`;
}

function capitalize(s: string): string {
  return s[0]!.toUpperCase() + s.slice(1);
}
