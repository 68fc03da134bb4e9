/**
 * The key of an encrypted volume on the command line: `--encrypt-key FILE`, or the key text in
 * `$SLAYERFS_ENCRYPTION_KEY` (see `core/_crypto.ts`). The key itself never appears in a message.
 *
 * @module
 */

import {
  BlockCipher,
  EncryptionKeyError,
  KEY_ENV,
  parseKey,
  readKeyFile,
} from "../core/_crypto.ts";
import type { VolumeFormat } from "../core/format.ts";
import { Meta } from "../core/meta/mod.ts";
import { CliError } from "./_errors.ts";
import { openMeta } from "./_meta.ts";

/** Reads the key file `path`; a missing or malformed file is a {@linkcode CliError} (exit 1). */
export async function readKeyArg(path: string): Promise<Uint8Array> {
  try {
    return await readKeyFile(path);
  } catch (err) {
    if (err instanceof EncryptionKeyError) throw new CliError(err.message);
    throw err;
  }
}

/**
 * The checked key of the volume `format`: from the file `file` (`--encrypt-key`) or else from
 * `$SLAYERFS_ENCRYPTION_KEY`; `undefined` for a volume without encryption (which refuses
 * `--encrypt-key`, and ignores the variable). A missing or wrong key is a {@linkcode CliError}
 * (exit 1) that says which.
 */
export async function volumeKey(
  file: string | undefined,
  format: VolumeFormat,
): Promise<Uint8Array | undefined> {
  if (!format.encryption) {
    if (file !== undefined) {
      throw new CliError(`Volume "${format.name}" is not encrypted: leave out --encrypt-key`);
    }
    return undefined;
  }
  const env = Deno.env.get(KEY_ENV);
  let key: Uint8Array;
  let where: string;
  if (file !== undefined) {
    key = await readKeyArg(file);
    where = `the key in "${file}"`;
  } else if (env) {
    where = `the key in $${KEY_ENV}`;
    try {
      key = parseKey(new TextEncoder().encode(env), `$${KEY_ENV}`);
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  } else {
    throw new CliError(
      `Volume "${format.name}" is encrypted: give its key with --encrypt-key FILE ` +
        `(or as text in $${KEY_ENV})`,
    );
  }
  try {
    await BlockCipher.forVolume(format, key);
  } catch (err) {
    if (!(err instanceof EncryptionKeyError)) throw err;
    throw new CliError(
      /^Wrong key/.test(err.message)
        ? `Wrong key: ${where} is not the key of volume "${format.name}"`
        : err.message,
    );
  }
  return key;
}

/** {@linkcode volumeKey} of the volume whose metadata `metaUrl` names (opened read-only). */
export async function volumeKeyOf(
  metaUrl: string,
  file: string | undefined,
): Promise<Uint8Array | undefined> {
  const kv = await openMeta(metaUrl, true);
  try {
    const format = await Meta.readFormat(kv);
    return format ? await volumeKey(file, format) : undefined;
  } finally {
    await kv.close();
  }
}
