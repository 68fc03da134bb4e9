/**
 * Opening a volume's metadata engine from the CLI: the URL is checked first, and a missing, empty
 * or foreign SQLite file is reported as such without being created or written to.
 *
 * @module
 */

import { openKvEngine } from "../backends/mod.ts";
import type { KvEngine } from "../core/kv.ts";
import { Meta } from "../core/meta/mod.ts";
import type { VolumeFormat } from "../core/format.ts";
import { mib } from "./_args.ts";
import { CliError } from "./_errors.ts";
import { checkMetaUrl } from "./_urls.ts";

/**
 * The local path of a `sqlite3://` URL (or of another `scheme`'s, `file://`), or `undefined` for
 * a URL of another scheme.
 */
export function sqlitePath(url: string, scheme = "sqlite3"): string | undefined {
  return url.startsWith(`${scheme}://`) ? decodeURIComponent(new URL(url).pathname) : undefined;
}

/**
 * Opens an existing volume's metadata engine. A bad URL is a usage {@linkcode CliError}; a
 * missing or empty SQLite file, or one that holds no volume, is a {@linkcode CliError} too, and
 * nothing is written to it (an engine opened for writing would create its schema).
 */
export async function openMeta(url: string, readOnly = false): Promise<KvEngine> {
  checkMetaUrl(url);
  const path = sqlitePath(url);
  if (path !== undefined) {
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new CliError(`Metadata file "${path}" does not exist: run slayerfs format first`);
      }
      throw err;
    }
    if (!st.isFile) throw new CliError(`Metadata file "${path}" is not a file`);
    if (st.size === 0) {
      throw new CliError(`Metadata file "${path}" is empty: run slayerfs format first`);
    }
    if (!readOnly) {
      const probe = await openKvEngine(url, { readOnly: true });
      try {
        if (!await Meta.readFormat(probe)) {
          throw new CliError(`Metadata file "${path}" holds no volume: run slayerfs format first`);
        }
      } finally {
        await probe.close();
      }
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
