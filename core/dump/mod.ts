/**
 * Dumping a volume's metadata to JSON and loading it into another engine: what `slayerfs dump`
 * and `slayerfs load` run, for any engine `openKvEngine` opens.
 *
 * The dump is one JSON document, laid out one record per line so that both sides stream:
 *
 * ```text
 * {"slayerfs_dump":{"version":1,"created":"2026-12-01T20:00:00.000Z","engine":"sqlite3","inodes":12},
 * "records":[
 * {"t":"format","format":{"version":1,"name":"vol1",...}},
 * {"t":"inode","ino":1,"mode":"40755",...},
 * ...
 * ],
 * "end":{"keys":57}}
 * ```
 *
 * The records (`records.ts`) come in key order, one per metadata key; `end.keys` counts them, so a
 * truncated dump is refused. {@linkcode dumpMeta} reads the engine in ordered scans of `batch`
 * keys, each in its own read-only transaction, and writes each page before it reads the next: a
 * dump is exact when no mount writes during it (a dump of a volume in use is a fuzzy copy, like
 * JuiceFS's). {@linkcode loadMeta} reads line by line and writes `batch` keys per transaction; it
 * writes the format record last, so a load that fails leaves no usable volume. A dump that is not
 * laid out one record per line (reformatted by `jq`, say) is still loaded, but read whole first.
 *
 * @module
 */

import type { KvEngine } from "../kv.ts";
import { keyFormat, keyUsedInodes } from "../meta/keys.ts";
import { decodeNum } from "../meta/_codec.ts";
import { type DumpRecord, recordLine, recordToKv } from "./records.ts";

export { type DumpRecord, recordLine, recordToKv } from "./records.ts";

/** The dump format version this code writes and reads. */
export const DUMP_VERSION = 1;

/** The header of a dump. */
export interface DumpHeader {
  /** {@linkcode DUMP_VERSION} of the writer. */
  version: number;
  /** When the dump started (ISO 8601). */
  created: string;
  /** The scheme of the engine dumped (`sqlite3`, `redis`, ...). */
  engine: string;
  /** The volume's inode count when the dump started (for progress bars). */
  inodes: number;
}

/** What a dump or load went through so far. */
export interface DumpStats {
  /** Keys written (dump) or loaded (load). */
  keys: number;
  /** Of which inodes. */
  inodes: number;
  /** Of which `raw` records (keys this version does not know). */
  raw: number;
}

/** Options of {@linkcode dumpMeta} and {@linkcode loadMeta}. */
export interface DumpOptions {
  /** Keys per scan (dump) or per transaction (load); default 500. */
  batch?: number;
  /** Called after each batch. */
  onProgress?: (stats: DumpStats, header: DumpHeader) => void;
}

/** A dump that cannot be loaded, or a target that must not be loaded into. */
export class DumpError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DumpError";
  }
}

/** Most bytes of values per load transaction (engines cap request sizes). */
const LOAD_BATCH_BYTES = 2 << 20;

/**
 * Writes the dump of every key of `kv` through `write` (called with text in order; the caller
 * buffers). Returns what it wrote.
 */
export async function dumpMeta(
  kv: KvEngine,
  write: (text: string) => Promise<void>,
  options: DumpOptions = {},
): Promise<DumpStats> {
  const batch = options.batch ?? 500;
  const inodes = decodeNum(await kv.txn((tx) => tx.get(keyUsedInodes), { readOnly: true }));
  const header: DumpHeader = {
    version: DUMP_VERSION,
    created: new Date().toISOString(),
    engine: kv.scheme,
    inodes,
  };
  const stats: DumpStats = { keys: 0, inodes: 0, raw: 0 };
  await write(`{"slayerfs_dump":${JSON.stringify(header)},\n"records":[\n`);
  let after: string | undefined;
  for (;;) {
    const page = await kv.txn(
      (tx) =>
        tx.scan("", after === undefined ? { limit: batch } : { limit: batch, startAfter: after }),
      { readOnly: true },
    );
    if (page.length === 0) break;
    let text = "";
    for (const [key, value] of page) {
      const { line, rec } = recordLine(key, value);
      text += (stats.keys === 0 ? "" : ",\n") + line;
      stats.keys++;
      if (rec.t === "inode") stats.inodes++;
      else if (rec.t === "raw") stats.raw++;
    }
    await write(text);
    options.onProgress?.(stats, header);
    after = page.at(-1)![0];
    if (page.length < batch) break;
  }
  await write(`${stats.keys ? "\n" : ""}],\n"end":${JSON.stringify({ keys: stats.keys })}}\n`);
  return stats;
}

/** Whether `kv` holds any key at all. */
export async function isEmpty(kv: KvEngine): Promise<boolean> {
  const any = await kv.txn((tx) => tx.scan("", { limit: 1, keysOnly: true }), { readOnly: true });
  return any.length === 0;
}

const HEADER = '{"slayerfs_dump":';
const TRUNCATED = "The dump is truncated (it ends before its end record)";

/** The header, records and end of a dump read from `lines`, streamed when laid out by a dump. */
async function* parseDump(
  lines: AsyncIterable<string>,
  onHeader: (h: DumpHeader) => void,
): AsyncGenerator<DumpRecord, void, void> {
  const it = lines[Symbol.asyncIterator]();
  const next = async () => {
    const r = await it.next();
    return r.done ? undefined : r.value;
  };
  const first = await next();
  if (first === undefined) throw new DumpError("The dump is empty");
  const checkHeader = (h: unknown) => {
    const v = (h as DumpHeader | undefined)?.version;
    if (typeof v !== "number") throw new DumpError("Not a SlayerFS dump (no slayerfs_dump header)");
    if (v > DUMP_VERSION) {
      throw new DumpError(`The dump has format version ${v}; this SlayerFS reads ${DUMP_VERSION}`);
    }
    onHeader(h as DumpHeader);
  };
  let keys = 0;
  const second = first.startsWith(HEADER) && first.endsWith(",") ? await next() : undefined;
  if (second === '"records":[') {
    checkHeader(parseLine(first.slice(0, -1) + "}", 1).slayerfs_dump);
    let n = 2;
    for (;;) {
      const line = await next();
      n++;
      if (line === undefined) throw new DumpError(TRUNCATED);
      if (line === "],") break;
      let rec: DumpRecord;
      try {
        rec = parseLine(line.endsWith(",") ? line.slice(0, -1) : line, n) as DumpRecord;
      } catch (err) {
        if ((await next()) === undefined) throw new DumpError(TRUNCATED);
        throw err;
      }
      keys++;
      yield rec;
    }
    const end = parseLine("{" + ((await next()) ?? ""), n + 1).end as { keys?: number } | undefined;
    checkEnd(end, keys);
    return;
  }
  // Not laid out by dump (reformatted): read it whole.
  if (!/^\s*(\{|$)/.test(first)) throw new DumpError("Not a SlayerFS dump (not a JSON object)");
  let text = first + "\n" + (second === undefined ? "" : second + "\n");
  for (let line = await next(); line !== undefined; line = await next()) text += line + "\n";
  if (text.trim() === "") throw new DumpError("The dump is empty");
  const doc = parseLine(text, 1);
  checkHeader(doc.slayerfs_dump);
  if (!Array.isArray(doc.records)) throw new DumpError("The dump has no records array");
  for (const rec of doc.records) {
    keys++;
    yield rec as DumpRecord;
  }
  checkEnd(doc.end as { keys?: number } | undefined, keys);
}

function checkEnd(end: { keys?: number } | undefined, keys: number): void {
  if (end?.keys !== keys) {
    throw new DumpError(
      `The dump is truncated or damaged: ${keys} records, its end says ${end?.keys ?? "nothing"}`,
    );
  }
}

function parseLine(text: string, line: number): Record<string, unknown> {
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== "object") throw new SyntaxError("not an object");
    return v;
  } catch (err) {
    throw new DumpError(`The dump is not valid JSON at line ${line}: ${(err as Error).message}`);
  }
}

/**
 * Loads the dump read from `lines` (without their newlines) into `kv`, which must be empty
 * ({@linkcode DumpError} otherwise, and for a damaged dump). Returns what it loaded.
 */
export async function loadMeta(
  kv: KvEngine,
  lines: AsyncIterable<string>,
  options: DumpOptions = {},
): Promise<DumpStats> {
  const batch = options.batch ?? 500;
  if (!await isEmpty(kv)) {
    throw new DumpError("The target metadata engine is not empty: load into a new, empty one");
  }
  const stats: DumpStats = { keys: 0, inodes: 0, raw: 0 };
  let header: DumpHeader | undefined;
  let pending: Array<[string, Uint8Array]> = [];
  let bytes = 0;
  let format: Uint8Array | undefined;
  const flush = async () => {
    const writes = pending;
    pending = [];
    bytes = 0;
    if (writes.length === 0) return;
    await kv.txn((tx) => {
      for (const [k, v] of writes) tx.set(k, v);
      return Promise.resolve();
    });
    options.onProgress?.(stats, header!);
  };
  for await (const rec of parseDump(lines, (h) => header = h)) {
    let kv: [string, Uint8Array];
    try {
      kv = recordToKv(rec);
    } catch (err) {
      throw new DumpError(`Bad record ${stats.keys + 1} of the dump: ${(err as Error).message}`);
    }
    stats.keys++;
    if (rec.t === "inode") stats.inodes++;
    else if (rec.t === "raw") stats.raw++;
    if (kv[0] === keyFormat) {
      format = kv[1];
      continue;
    }
    pending.push(kv);
    bytes += kv[0].length + kv[1].byteLength;
    if (pending.length >= batch || bytes >= LOAD_BATCH_BYTES) await flush();
  }
  if (format !== undefined) pending.push([keyFormat, format]);
  await flush();
  return stats;
}

/** The lines of a byte stream (UTF-8), without their `\n`; `onBytes` counts what was read. */
export async function* readLines(
  stream: ReadableStream<Uint8Array>,
  onBytes?: (n: number) => void,
): AsyncGenerator<string, void, void> {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    onBytes?.(chunk.byteLength);
    rest += decoder.decode(chunk, { stream: true });
    let at = rest.indexOf("\n");
    let from = 0;
    while (at >= 0) {
      yield rest.slice(from, at);
      from = at + 1;
      at = rest.indexOf("\n", from);
    }
    rest = rest.slice(from);
  }
  rest += decoder.decode();
  if (rest !== "") yield rest;
}
