/**
 * Opening a volume's metadata engine from the CLI: a missing SQLite file is reported as such
 * instead of being created empty.
 *
 * @module
 */

import { openKvEngine } from "../backends/mod.ts";
import type { KvEngine } from "../core/kv.ts";
import { Meta } from "../core/meta/mod.ts";
import type { VolumeFormat } from "../core/format.ts";
import { mib } from "./_args.ts";
import { CliError } from "./_errors.ts";

/** The database file of a `sqlite3://` metadata URL, or `undefined` for another scheme. */
export function sqlitePath(url: string): string | undefined {
  return url.startsWith("sqlite3://") ? decodeURIComponent(new URL(url).pathname) : undefined;
}

/** Opens an existing volume's metadata engine; a missing SQLite file is a {@linkcode CliError}. */
export async function openMeta(url: string, readOnly = false): Promise<KvEngine> {
  const path = sqlitePath(url);
  if (path !== undefined) {
    try {
      const st = await Deno.stat(path);
      if (!st.isFile) throw new CliError(`Metadata file "${path}" is not a file`);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new CliError(`Metadata file "${path}" does not exist: run slayerfs format first`);
      }
      throw err;
    }
  }
  return await openKvEngine(url, readOnly ? { readOnly: true } : {});
}

/** The volume's format and a line on its usage (`1.5 MiB used, 12 inodes`). */
export async function volumeSummary(
  kv: KvEngine,
): Promise<{ format: VolumeFormat; usage: string }> {
  const meta = await Meta.open(kv);
  const u = await meta.usage();
  return { format: meta.format, usage: `${mib(u.space)} MiB used, ${u.inodes} inodes` };
}
