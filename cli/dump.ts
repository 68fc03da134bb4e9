/**
 * `slayerfs dump META_URL FILE` and `slayerfs load META_URL FILE`: a volume's metadata to a JSON
 * file and back, streamed both ways (see `core/dump/mod.ts` for the format), with a progress bar
 * on a terminal. `-` is standard output or input. A dump to a file goes to a temporary file
 * renamed at the end, so a failed dump leaves no partial file behind; a failed load into a new
 * SQLite file removes that file.
 *
 * @module
 */

import { dirname } from "node:path";
import { openKvEngine } from "../backends/mod.ts";
import { DumpError, dumpMeta, type DumpStats, loadMeta, readLines } from "../core/dump/mod.ts";
import type { KvEngine } from "../core/kv.ts";
import { humanBytes, Progress } from "./_human.ts";
import { CliError } from "./_errors.ts";
import { openMeta, sqlitePath } from "./_meta.ts";
import type { ParsedArgs } from "./_spec.ts";
import { checkMetaUrl } from "./_urls.ts";

/** Text collected up to this size before a write. */
const WRITE_BUFFER = 1 << 20;

/** Writes all of `bytes` to `w`. */
async function writeAll(w: { write(p: Uint8Array): Promise<number> }, bytes: Uint8Array) {
  for (let o = 0; o < bytes.byteLength;) o += await w.write(bytes.subarray(o));
}

/** An OS error's message without the path Deno appends (`: open '/x.tmp-12'`). */
function osMessage(err: unknown): string {
  return (err as Error).message.replace(/ \(os error \d+\)/, "").replace(/: \w+ '.*'$/, "");
}

function summary(verb: string, s: DumpStats, where: string): string {
  return `${verb} ${s.keys} keys (${s.inodes} inodes` +
    (s.raw ? `, ${s.raw} kept as raw keys` : "") + `) ${where}`;
}

/** Runs `slayerfs dump` with its checked arguments. */
export async function cmdDump(args: ParsedArgs): Promise<void> {
  const [url, file] = args.positionals as [string, string];
  const kv = await openMeta(url, true);
  const toStdout = file === "-";
  const tmp = toStdout ? undefined : `${file}.tmp-${Deno.pid}`;
  let out: Deno.FsFile;
  try {
    out = toStdout ? undefined! : await Deno.open(tmp!, { write: true, createNew: true });
  } catch (err) {
    await kv.close();
    throw new CliError(`Cannot write "${file}": ${osMessage(err)}`);
  }
  const sink = toStdout ? Deno.stdout : out;
  const enc = new TextEncoder();
  let buffered = "";
  let written = 0;
  const write = async (text: string) => {
    buffered += text;
    if (buffered.length < WRITE_BUFFER) return;
    const bytes = enc.encode(buffered);
    buffered = "";
    written += bytes.byteLength;
    await writeAll(sink, bytes);
  };
  let seen = { keys: 0, inodes: 0, raw: 0 };
  let total = 0;
  const progress = new Progress(() => ({
    fraction: total ? seen.inodes / total : 0,
    text: `${seen.inodes}/${total} inodes, ${seen.keys} keys, ${humanBytes(written)}`,
  }), { quiet: args.flag("quiet") || !Deno.stderr.isTerminal() });
  let ok = false;
  try {
    const stats = await dumpMeta(kv, write, {
      batch: args.number("batch"),
      onProgress: (s, h) => {
        seen = s;
        total = h.inodes;
      },
    });
    const bytes = enc.encode(buffered);
    written += bytes.byteLength;
    await writeAll(sink, bytes);
    if (!toStdout) {
      await out!.sync();
      out!.close();
      await Deno.rename(tmp!, file);
    }
    ok = true;
    progress.done();
    console.error(summary("dumped", stats, `to ${toStdout ? "standard output" : file}`));
  } finally {
    if (!ok) {
      progress.done();
      if (!toStdout) {
        try {
          out!.close();
        } catch { /* closed */ }
        await Deno.remove(tmp!).catch(() => {});
      }
    }
    await kv.close();
  }
}

/** Opens the target of a load: a new SQLite file is created (and `created` tells so). */
async function openTarget(url: string): Promise<{ kv: KvEngine; created?: string }> {
  checkMetaUrl(url);
  const path = sqlitePath(url);
  let created: string | undefined;
  if (path !== undefined) {
    const exists = await Deno.stat(path).then(() => true, () => false);
    if (!exists) {
      const dir = await Deno.stat(dirname(path)).catch(() => undefined);
      if (!dir?.isDirectory) throw new CliError(`Folder "${dirname(path)}" does not exist`);
      created = path;
    }
  }
  return { kv: await openKvEngine(url), ...(created ? { created } : {}) };
}

/** Runs `slayerfs load` with its checked arguments. */
export async function cmdLoad(args: ParsedArgs): Promise<void> {
  const [url, file] = args.positionals as [string, string];
  let input: Deno.FsFile | undefined;
  let size = 0;
  if (file !== "-") {
    try {
      input = await Deno.open(file, { read: true });
      size = (await input.stat()).size;
    } catch (err) {
      throw new CliError(`Cannot read "${file}": ${osMessage(err)}`);
    }
  }
  let target: { kv: KvEngine; created?: string };
  try {
    target = await openTarget(url);
  } catch (err) {
    input?.close();
    throw err;
  }
  let read = 0;
  let seen = { keys: 0, inodes: 0, raw: 0 };
  let total = 0;
  const progress = new Progress(() => ({
    fraction: size ? read / size : total ? seen.inodes / total : 0,
    text: `${seen.inodes} inodes, ${seen.keys} keys, ${humanBytes(read)} read`,
  }), { quiet: args.flag("quiet") || !Deno.stderr.isTerminal() });
  let ok = false;
  try {
    const stream = input ? input.readable : Deno.stdin.readable;
    const stats = await loadMeta(target.kv, readLines(stream, (n) => read += n), {
      batch: args.number("batch"),
      onProgress: (s, h) => {
        seen = s;
        total = h.inodes;
      },
    });
    ok = true;
    progress.done();
    console.error(summary("loaded", stats, `into ${url}`));
  } catch (err) {
    if (err instanceof DumpError) throw new CliError(err.message);
    throw err;
  } finally {
    if (!ok) progress.done();
    await target.kv.close();
    if (!ok && target.created) {
      for (const suffix of ["", "-wal", "-shm"]) {
        await Deno.remove(target.created + suffix).catch(() => {});
      }
    }
  }
}
