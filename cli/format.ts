/**
 * `slayerfs format [--storage URL] [--block-size SIZE] ... META_URL NAME`: creates a volume, or
 * checks that an existing one has the same settings.
 *
 * @module
 */

import { dirname } from "node:path";
import { openBlockStore, openKvEngine } from "../backends/mod.ts";
import { FsError } from "../core/errno.ts";
import { formatVolume } from "../core/volume.ts";
import { expectArgs, parse, sizeArg } from "./_args.ts";
import { CliError } from "./_errors.ts";
import { sqlitePath } from "./_meta.ts";

/** Runs `slayerfs format` with the arguments after the command name. */
export async function cmdFormat(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    storage: { type: "string" },
    "block-size": { type: "string" },
    capacity: { type: "string" },
    inodes: { type: "string" },
    compress: { type: "string" },
    dedup: { type: "boolean" },
    "inline-max": { type: "string" },
  });
  const compress = (values.compress as string | undefined) ?? "lz4";
  if (compress !== "lz4" && compress !== "none") {
    throw new CliError(`Invalid --compress "${compress}": expected lz4 or none`, 2);
  }
  expectArgs(positionals, 2, "META_URL NAME");
  const [metaUrl, name] = positionals as [string, string];
  const dbPath = sqlitePath(metaUrl);
  let storage = values.storage as string | undefined;
  if (!storage) {
    storage = dbPath !== undefined
      ? `file://${dirname(dbPath)}/${name}-data`
      : "mem://" + (metaUrl.slice("mem://".length) || name);
  }
  const blockSize = values["block-size"] ? sizeArg(values["block-size"] as string) : undefined;
  const capacity = values.capacity ? sizeArg(values.capacity as string) : undefined;
  if (dbPath !== undefined) await Deno.mkdir(dirname(dbPath), { recursive: true });
  // Check the storage first, so a bad URL leaves no half-formatted volume behind.
  const store = await openBlockStore(storage);
  await store.close();
  const kv = await openKvEngine(metaUrl);
  try {
    const f = await formatVolume(kv, {
      name,
      storage,
      compression: compress,
      ...(values.dedup ? { dedup: true } : {}),
      ...(values["inline-max"] !== undefined
        ? { inlineMax: sizeArg(values["inline-max"] as string) }
        : {}),
      ...(blockSize ? { blockSize } : {}),
      ...(capacity ? { capacity } : {}),
      ...(values.inodes ? { inodes: Number(values.inodes) } : {}),
    });
    console.log(
      `Volume "${f.name}" (${f.uuid}): metadata ${metaUrl}, storage ${f.storage}, ` +
        `block size ${f.blockSize >> 10} KiB, compression ${f.compression}` +
        (f.dedup ? ", dedup" : ""),
    );
  } catch (err) {
    if (err instanceof FsError) throw new CliError(err.message);
    if (err instanceof Error && /Invalid/.test(err.message)) throw new CliError(err.message, 2);
    throw err;
  } finally {
    await kv.close();
  }
}
