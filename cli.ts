/**
 * The `slayerfs` command line: format, mount, umount, status, info, warmup, gc, completion,
 * version (the commands live in `cli/`, one module per command family, each described once in
 * `cli/_commands.ts`).
 *
 * Usage: `deno task cli <command> ...` or `deno task mount ...`; `slayerfs --help` lists the
 * commands and `slayerfs <command> --help` their options. Bad input prints one line
 * `slayerfs: <message>` and exits 2 (usage) or 1 (anything else).
 *
 * @module
 */

import { main } from "./cli/main.ts";

export { main };
export { CliError } from "./cli/_errors.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
