/**
 * `slayerfs warmup [--threads N] [--quiet] PATH...`: reads files (folders recursively) through the
 * mount so that their blocks land in the cache, with a progress bar on a terminal.
 *
 * @module
 */

import { resolve } from "node:path";
import pLimit from "p-limit";
import { humanBytes, Progress } from "./_human.ts";
import { CliError, describe } from "./_errors.ts";
import type { ParsedArgs } from "./_spec.ts";

/** The read buffer of each file being read. */
const BUFFER_BYTES = 1 << 20;

/** Runs `slayerfs warmup` with its checked arguments. */
export async function cmdWarmup(args: ParsedArgs): Promise<void> {
  const positionals = args.positionals;
  const threads = args.number("threads");
  const quiet = args.flag("quiet");
  const files: Array<{ path: string; size: number }> = [];
  const walk = async (path: string) => {
    const st = await Deno.lstat(path);
    if (st.isFile) files.push({ path, size: st.size });
    else if (st.isDirectory) {
      for await (const e of Deno.readDir(path)) await walk(`${path}/${e.name}`);
    }
  };
  for (const p of positionals) {
    try {
      await walk(resolve(p));
    } catch (err) {
      throw new CliError(`Cannot read "${p}": ${describe(err)}`);
    }
  }
  const total = files.reduce((n, f) => n + f.size, 0);
  let done = 0;
  let doneFiles = 0;
  const started = Date.now();
  const progress = new Progress(() => ({
    fraction: total ? done / total : 1,
    text: `${humanBytes(done)} of ${humanBytes(total)}, ${doneFiles}/${files.length} files, ` +
      `${humanBytes(done / Math.max(0.001, (Date.now() - started) / 1000))}/s`,
  }), { quiet });
  const failures: string[] = [];
  // One buffer per file being read, reused: at most `threads` of them.
  const spare: Uint8Array[] = [];
  await pLimit(threads).map(files, async (f) => {
    const b = spare.pop() ?? new Uint8Array(BUFFER_BYTES);
    try {
      using file = await Deno.open(f.path, { read: true });
      for (;;) {
        const n = await file.read(b);
        if (n === null) break;
        done += n;
      }
    } catch (err) {
      failures.push(`${f.path}: ${describe(err)}`);
    } finally {
      spare.push(b);
    }
    doneFiles++;
  });
  progress.done();
  if (failures.length) {
    throw new CliError(`${failures.length} files could not be read, first: ${failures[0]}`);
  }
}
