/**
 * `slayerfs format [--storage URL] [--block-size SIZE] ... META_URL NAME`: creates a volume, or
 * checks that an existing one has the same settings. Every argument is checked before anything is
 * created, and a format that fails later removes the files and folders it created.
 *
 * @module
 */

import { dirname } from "node:path";
import { openBlockStore, openKvEngine } from "../backends/mod.ts";
import { FsError } from "../core/errno.ts";
import {
  DEFAULT_CHUNK_SIZE,
  formatSize,
  validateFormat,
  type VolumeFormat,
} from "../core/format.ts";
import { formatVolume } from "../core/volume.ts";
import { CliError } from "./_errors.ts";
import { EncryptionKeyError } from "../core/_crypto.ts";
import { readKeyArg } from "./_encrypt_key.ts";
import { sqlitePath } from "./_meta.ts";
import type { ParsedArgs } from "./_spec.ts";
import { checkMetaUrl, checkStorageUrl, hidePassword } from "./_urls.ts";

/** Runs `slayerfs format` with its checked arguments. */
export async function cmdFormat(args: ParsedArgs): Promise<void> {
  const [metaUrl, name] = args.positionals as [string, string];
  checkMetaUrl(metaUrl);
  const dbPath = sqlitePath(metaUrl);
  const storage = args.string("storage") ?? defaultStorage(metaUrl, dbPath, name);
  await checkStorageUrl(storage);
  const keyFile = args.string("encrypt-key");
  const inlineGiven = args.raw.some((a) => /^--inline-max(=|$)/.test(a));
  if (keyFile !== undefined && inlineGiven && args.number("inline-max") > 0) {
    throw new CliError(
      "--inline-max cannot be used with --encrypt-key: inline blocks would be kept unencrypted " +
        "in the metadata (an encrypted volume keeps none)",
      2,
    );
  }
  // Read before anything is created: a missing or malformed key file creates nothing.
  const encryptKey = keyFile !== undefined ? await readKeyArg(keyFile) : undefined;
  const settings = {
    name,
    storage,
    compression: args.string("compress") as VolumeFormat["compression"],
    ...(args.flag("dedup") ? { dedup: true } : {}),
    inlineMax: encryptKey ? 0 : args.number("inline-max"),
    blockSize: args.number("block-size"),
    chunkSize: DEFAULT_CHUNK_SIZE,
    capacity: args.number("capacity"),
    inodes: args.number("inodes"),
  };
  try {
    validateFormat({ ...settings, version: 1, uuid: "", createdAt: "" });
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  const created = new CreatedPaths();
  try {
    // A volume already there keeps its storage: only the settings are compared.
    const existing = dbPath !== undefined && await fileSize(dbPath) > 0;
    if (!existing) {
      if (dbPath !== undefined) await created.mkdir(dirname(dbPath));
      const storeDir = storage.startsWith("file:") ? sqlitePath(storage, "file") : undefined;
      if (storeDir !== undefined) await created.note(storeDir);
      const store = await openBlockStore(storage);
      await store.close();
      if (dbPath !== undefined) await created.note(dbPath, ["-wal", "-shm"]);
    }
    const kv = await openKvEngine(metaUrl);
    let f: VolumeFormat;
    try {
      f = await formatVolume(kv, { ...settings, ...(encryptKey ? { encryptKey } : {}) });
    } finally {
      await kv.close();
    }
    console.log(
      `Volume "${f.name}" (${f.uuid}): metadata ${hidePassword(metaUrl)}, storage ${f.storage}, ` +
        `block size ${formatSize(f.blockSize)}, compression ${f.compression}` +
        (f.dedup ? ", dedup" : "") + (f.encryption ? `, encrypted (${f.encryption.cipher})` : ""),
    );
  } catch (err) {
    await created.undo();
    if (err instanceof FsError || err instanceof EncryptionKeyError) {
      throw new CliError(err.message);
    }
    throw err;
  }
}

/**
 * The storage of a volume formatted without `--storage`: beside a SQLite file, or in the memory of
 * a `mem://` volume; a network metadata engine (shared by hosts) needs an explicit one.
 */
function defaultStorage(metaUrl: string, dbPath: string | undefined, name: string): string {
  if (dbPath !== undefined) return `file://${dirname(dbPath)}/${name}-data`;
  if (metaUrl.startsWith("mem:")) return "mem://" + (metaUrl.slice("mem://".length) || name);
  const scheme = metaUrl.slice(0, metaUrl.indexOf(":"));
  throw new CliError(
    `A volume with ${scheme}:// metadata needs --storage URL (s3://... or a file:///abs/dir ` +
      "that every host mounting it sees)",
    2,
  );
}

/** The size of the file at `path`, or -1 when there is none. */
async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return -1;
    throw err;
  }
}

/** Whether there is something at `path` (`a-file/below` is not there). */
async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** The files and folders a command is about to create, so that a failure can remove them. */
class CreatedPaths {
  readonly #paths: string[] = [];

  /** Creates folder `dir` and its missing parents, remembering the topmost one it made. */
  async mkdir(dir: string): Promise<void> {
    await this.note(dir);
    await Deno.mkdir(dir, { recursive: true });
  }

  /**
   * Remembers the topmost missing folder on the way to `path` (or `path` itself and the files
   * `path + suffix` when they are missing), which something is about to create.
   */
  async note(path: string, suffixes: readonly string[] = []): Promise<void> {
    let top: string | undefined;
    for (let p = path; p !== dirname(p); p = dirname(p)) {
      if (await exists(p)) break;
      top = p;
    }
    if (top !== undefined) this.#paths.push(top);
    for (const s of suffixes) if (!await exists(path + s)) this.#paths.push(path + s);
  }

  /** Removes what was remembered, newest first. */
  async undo(): Promise<void> {
    for (const p of this.#paths.reverse()) {
      await Deno.remove(p, { recursive: true }).catch(() => {});
    }
  }
}
