/**
 * `slayerfs completion bash|zsh`: a shell completion script generated from the command
 * descriptions in `_commands.ts` (commands, options, choices, `-o` mount options, files and
 * folders where a command takes them).
 *
 * @module
 */

import { COMMANDS, MOUNT_OPTIONS } from "./_commands.ts";
import { CliError } from "./_errors.ts";
import { type CommandSpec, HELP_OPTION, optionFlag, type OptionSpec } from "./_spec.ts";
import type { ParsedArgs } from "./_spec.ts";

/** The `-o` option names, without `=VALUE`. */
const MOUNT_OPTION_NAMES = MOUNT_OPTIONS.map((o) => o.name.replace(/=.*$/, ""));

/** Every way to write option `o`: `-d --background`. */
function flags(o: OptionSpec): string[] {
  return o.short ? [`-${o.short}`, optionFlag(o)] : [optionFlag(o)];
}

/** The bash `compgen` arguments that complete a value or an argument of kind `what`. */
function bashWords(what: CommandSpec["complete"] | OptionSpec["complete"]): string {
  if (what === "file") {
    return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur"))';
  }
  if (what === "dir") {
    return 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"))';
  }
  if (what) return `COMPREPLY=($(compgen -W "${what.join(" ")}" -- "$cur"))`;
  return "COMPREPLY=()";
}

function bashCommand(c: CommandSpec): string {
  const options = [...c.options, HELP_OPTION];
  // The options that take a value, grouped by how the value completes.
  const byAction = new Map<string, string[]>();
  for (const o of options.filter((o) => o.kind !== "flag")) {
    const action = o.name === "o"
      ? `local pre=""; [[ $cur == *,* ]] && pre=\${cur%,*},\n` +
        `          COMPREPLY=($(compgen -P "$pre" -W "${
          MOUNT_OPTION_NAMES.join(" ")
        }" -- "\${cur##*,}"))`
      : bashWords(o.choices ?? o.complete);
    byAction.set(action, [...byAction.get(action) ?? [], ...flags(o)]);
  }
  const values = [...byAction].map(([action, names]) =>
    `        ${names.join("|")})\n          ${action}\n          return ;;`
  );
  const all = options.flatMap(flags).join(" ");
  const cases = values.length ? `      case "$prev" in\n${values.join("\n")}\n      esac\n` : "";
  return `    ${[c.name, ...(c.aliases ?? [])].join("|")})
${cases}      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${all}" -- "$cur"))
      else
        ${bashWords(c.complete)}
      fi ;;`;
}

/** The bash completion script. */
export function bashCompletion(): string {
  const names = COMMANDS.flatMap((c) => [c.name, ...(c.aliases ?? [])]);
  return `# bash completion for slayerfs: source <(slayerfs completion bash)
_slayerfs() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${names.join(" ")} --help --version" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${COMMANDS.map(bashCommand).join("\n")}
  esac
}
complete -F _slayerfs slayerfs
`;
}

/** `text` inside a single-quoted word: no brackets of its own (`_arguments` help ends at `]`). */
function zshText(text: string): string {
  return text.replaceAll("'", "'\\''").replaceAll("[", "(").replaceAll("]", ")");
}

function zshAction(what: CommandSpec["complete"] | OptionSpec["complete"]): string {
  if (what === "file") return "_files";
  if (what === "dir") return "_files -/";
  if (what) return `(${what.join(" ")})`;
  return " ";
}

function zshOption(o: OptionSpec): string {
  const value = o.kind === "flag"
    ? ""
    : o.name === "o"
    ? `:${o.arg}:_sequence compadd - ${MOUNT_OPTION_NAMES.join(" ")}`
    : `:${o.arg}:${zshAction(o.choices ?? o.complete)}`;
  const eq = o.kind === "flag" || o.name.length === 1 ? "" : "=";
  const spec = `[${zshText(o.help)}]${value}`;
  const repeat = o.multiple ? "*" : "";
  if (!o.short) return `'${repeat}${optionFlag(o)}${eq}${spec}'`;
  const both = flags(o);
  return `'${repeat}(${both.join(" ")})'{${
    both.map((f) => f + (f.startsWith("--") ? eq : "")).join(",")
  }}'${spec}'`;
}

function zshCommand(c: CommandSpec): string {
  const specs = [...c.options, HELP_OPTION].map(zshOption);
  const message = zshText(c.usage[0]!).replaceAll(":", "\\:");
  const rest = c.arity[1] === 0 ? [] : [`'*:${message}:${zshAction(c.complete)}'`];
  return `    ${[c.name, ...(c.aliases ?? [])].join("|")})
      _arguments -s \\
        ${[...specs, ...rest].join(" \\\n        ")} ;;`;
}

/** The zsh completion script. */
export function zshCompletion(): string {
  const described = COMMANDS.map((c) => `    '${c.name}:${zshText(c.summary)}'`);
  return `#compdef slayerfs
# zsh completion for slayerfs: slayerfs completion zsh > "\${fpath[1]}/_slayerfs"
_slayerfs() {
  local -a commands
  commands=(
${described.join("\n")}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'slayerfs command' commands
    return
  fi
  local cmd=$words[2]
  shift words
  (( CURRENT-- ))
  case $cmd in
${COMMANDS.map(zshCommand).join("\n")}
  esac
}
if [ "$funcstack[1]" = "_slayerfs" ]; then _slayerfs "$@"; else compdef _slayerfs slayerfs; fi
`;
}

/** Runs `slayerfs completion bash|zsh`. */
export function cmdCompletion(args: ParsedArgs): Promise<void> {
  const shell = args.positionals[0];
  if (shell === "bash") console.log(bashCompletion());
  else if (shell === "zsh") console.log(zshCompletion());
  else throw new CliError(`Unknown shell "${shell}": expected bash or zsh`, 2);
  return Promise.resolve();
}
