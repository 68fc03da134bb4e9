/**
 * Encryption at rest: every object of an encrypted volume is sealed with AES-256-GCM (WebCrypto)
 * on its way to the block store, after compression, and opened (authenticated) on its way back.
 *
 * ## Decisions
 *
 * - **Where.** {@linkcode EncryptedBlockStore} is a block-store decorator that `Volume` puts on
 *   top of whatever store it is given, so everything below it (the writeback stage on local disk,
 *   the metrics wrapper, S3) only ever sees sealed objects. The block codec (`block_codec.ts`)
 *   still compresses and checksums the raw block first: encryption comes after compression
 *   (ciphertext does not compress). What is not sealed: the metadata (names, sizes, attributes,
 *   block records, checksums), and the blocks a disk cache tier keeps (decoded, on the local
 *   disk). Encrypted volumes keep no inline blocks (they would sit in the metadata unsealed).
 * - **Object layout.** `[version 1][12-byte nonce][ciphertext][16-byte GCM tag]`: 29 bytes more
 *   than the encoded block ({@linkcode SEALED_OVERHEAD}; `fsck` adds them to each record's
 *   `storedLen`). The nonce is random per object (96 bits, so a key can seal some 2^32 objects
 *   before the chance of a repeat reaches 2^-32).
 * - **Associated data.** The volume's uuid and the object's key (`chunks/…/<slice>_<index>_<len>`
 *   or a dedup blob's `blobs/…/<hash>_<slice>_<index>`), so a block moved or copied under another
 *   key, or into another volume with the same key file, fails to open: `EIO` naming the block.
 * - **Engine.** AES-256-GCM runs in OpenSSL's libcrypto through FFI (`_crypto_openssl.ts`) when
 *   it loads, else in WebCrypto (`crypto.subtle`), which also does the HKDF. Deno's WebCrypto does
 *   not use the CPU's AES instructions: it sealed 40-200 MB/s here, libcrypto 1-4 GB/s (see
 *   `bench/README.md`). Both write the same objects and open each other's;
 *   `SLAYERFS_CRYPTO=webcrypto` forces WebCrypto.
 * - **Keys.** The key file holds 32 random bytes (raw, 64 hex digits, or base64). It is never
 *   used directly: HKDF-SHA-256 with the volume's uuid as salt derives the AES key and, with
 *   another label, a key check value stored in the volume's format, so that a wrong or missing key
 *   is refused at mount instead of failing every read. The check value reveals nothing about the
 *   AES key (independent HKDF outputs).
 *
 * @module
 */

import type { BlockStore, ListPage, ObjectInfo, StoreLimits } from "./block_store.ts";
import { Errno, FsError } from "./errno.ts";
import type { VolumeFormat } from "./format.ts";
import { toHex } from "./block_codec.ts";
import { getLog } from "./log.ts";
import { OpenSslGcm } from "./_crypto_openssl.ts";

const log = getLog("crypto");

/** Bytes of a key (AES-256). */
export const KEY_BYTES = 32;
/** Bytes an object gains when sealed: version, nonce and tag. */
export const SEALED_OVERHEAD = 1 + 12 + 16;
/** The version byte of sealed objects. */
const VERSION = 1;
/** The environment variable that may hold the key as text (hex or base64) instead of a file. */
export const KEY_ENV = "SLAYERFS_ENCRYPTION_KEY";

/** What an encrypted volume's format records. */
export interface EncryptionRecord {
  /** The cipher of every object. */
  cipher: "aes-256-gcm";
  /** HKDF-derived check value of the key (hex), to refuse a wrong key at mount. */
  keyCheck: string;
}

/** A key that is missing, malformed, or not the volume's. */
export class EncryptionKeyError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "EncryptionKeyError";
  }
}

const HOW_TO_MAKE = "make one with: openssl rand -out FILE 32";

/**
 * The 32-byte key that `bytes` (a key file's contents, or the text of {@linkcode KEY_ENV})
 * holds: exactly 32 raw bytes, or 64 hex digits, or base64 of 32 bytes (standard or URL-safe),
 * the text forms with surrounding whitespace allowed. `source` names it in errors.
 *
 * @example
 * ```ts
 * import { parseKey } from "./_crypto.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(parseKey(new TextEncoder().encode("ab".repeat(32) + "\n"), "k")[0], 0xab);
 * ```
 */
export function parseKey(bytes: Uint8Array, source: string): Uint8Array {
  if (bytes.byteLength === KEY_BYTES) return bytes.slice();
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes).trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) {
    const out = new Uint8Array(KEY_BYTES);
    for (let i = 0; i < KEY_BYTES; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
    return out;
  }
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/").replace(/=?$/, "="));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }
  throw new EncryptionKeyError(
    `${source} holds ${bytes.byteLength} bytes that are not a key: expected 32 random bytes, ` +
      `64 hex digits or base64 of 32 bytes (${HOW_TO_MAKE})`,
  );
}

/** Reads and parses the key file at `path` (see {@linkcode parseKey}). */
export async function readKeyFile(path: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (err as Error).message;
    throw new EncryptionKeyError(`Cannot read key file "${path}": ${why}`, { cause: err });
  }
  return parseKey(bytes, `Key file "${path}"`);
}

const enc = new TextEncoder();

/** HKDF-SHA-256 of `key` with the volume's uuid as salt and `label` as info. */
async function hkdf(
  key: Uint8Array,
  uuid: string,
  label: string,
  bits = 256,
): Promise<ArrayBuffer> {
  const ikm = await crypto.subtle.importKey("raw", key as BufferSource, "HKDF", false, [
    "deriveBits",
  ]);
  return await crypto.subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: enc.encode(uuid), info: enc.encode(label) },
    ikm,
    bits,
  );
}

/** The format record of a volume with uuid `uuid` encrypted with `key`. */
export async function encryptionRecord(key: Uint8Array, uuid: string): Promise<EncryptionRecord> {
  checkKeyLength(key);
  const check = await hkdf(key, uuid, "slayerfs key check v1");
  return { cipher: "aes-256-gcm", keyCheck: toHex(new Uint8Array(check)) };
}

function checkKeyLength(key: Uint8Array): void {
  if (key.byteLength !== KEY_BYTES) {
    throw new EncryptionKeyError(`An encryption key has 32 bytes, not ${key.byteLength}`);
  }
}

/** Which implementation of AES-256-GCM a {@linkcode BlockCipher} uses. */
export type CipherEngine = "openssl" | "webcrypto";

/**
 * The engine to use by default: libcrypto through FFI when it loads (many times faster here), else
 * WebCrypto; `SLAYERFS_CRYPTO=webcrypto` forces WebCrypto. Both write the same objects.
 */
function defaultEngine(): CipherEngine {
  try {
    return Deno.env.get("SLAYERFS_CRYPTO") === "webcrypto" ? "webcrypto" : "openssl";
  } catch {
    return "openssl"; // no permission to read the environment
  }
}

/**
 * Seals and opens the objects of one volume: AES-256-GCM with a random 96-bit nonce per object
 * and the volume's uuid and the object's key as associated data.
 */
export class BlockCipher {
  readonly #key: CryptoKey;
  readonly #native: OpenSslGcm | undefined;
  readonly #aadPrefix: Uint8Array;

  private constructor(key: CryptoKey, native: OpenSslGcm | undefined, uuid: string) {
    this.#key = key;
    this.#native = native;
    this.#aadPrefix = enc.encode(`slayerfs v1\0${uuid}\0`);
  }

  /** The implementation in use: libcrypto when asked for and loadable, else WebCrypto. */
  get engine(): CipherEngine {
    return this.#native ? "openssl" : "webcrypto";
  }

  /**
   * The cipher of the volume `format` for `key`. Throws {@linkcode EncryptionKeyError} if the
   * volume is not encrypted, or `key` is not its key (the check value differs).
   */
  static async forVolume(
    format: Pick<VolumeFormat, "name" | "uuid" | "encryption">,
    key: Uint8Array,
  ): Promise<BlockCipher> {
    if (!format.encryption) {
      throw new EncryptionKeyError(`Volume "${format.name}" is not encrypted: it takes no key`);
    }
    if (format.encryption.cipher !== "aes-256-gcm") {
      throw new EncryptionKeyError(
        `Volume "${format.name}" uses cipher "${format.encryption.cipher}", unknown to this version`,
      );
    }
    const { keyCheck } = await encryptionRecord(key, format.uuid);
    if (keyCheck !== format.encryption.keyCheck) {
      throw new EncryptionKeyError(`Wrong key: it is not the key of volume "${format.name}"`);
    }
    return await BlockCipher.create(key, format.uuid);
  }

  /**
   * The cipher of volume `uuid` for `key`, unchecked (see {@linkcode forVolume}), with `engine`
   * (default: libcrypto if it loads, unless `SLAYERFS_CRYPTO=webcrypto`).
   */
  static async create(
    key: Uint8Array,
    uuid: string,
    engine: CipherEngine = defaultEngine(),
  ): Promise<BlockCipher> {
    checkKeyLength(key);
    const bits = new Uint8Array(await hkdf(key, uuid, "slayerfs block encryption v1"));
    const aes = await crypto.subtle.importKey("raw", bits, "AES-GCM", false, [
      "encrypt",
      "decrypt",
    ]);
    const native = engine === "openssl" ? OpenSslGcm.create(bits) : undefined;
    bits.fill(0);
    return new BlockCipher(aes, native, uuid);
  }

  #aad(objectKey: string): Uint8Array {
    const k = enc.encode(objectKey);
    const out = new Uint8Array(this.#aadPrefix.byteLength + k.byteLength);
    out.set(this.#aadPrefix);
    out.set(k, this.#aadPrefix.byteLength);
    return out;
  }

  /** `data` sealed for the object `objectKey`: version, random nonce, ciphertext and tag. */
  async seal(data: Uint8Array, objectKey: string): Promise<Uint8Array> {
    const out = new Uint8Array(SEALED_OVERHEAD + data.byteLength);
    out[0] = VERSION;
    const iv = crypto.getRandomValues(out.subarray(1, 13));
    const aad = this.#aad(objectKey);
    if (this.#native) {
      await this.#native.seal(iv, aad, data, out.subarray(13));
      return out;
    }
    const ct = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: iv.slice(), additionalData: aad as BufferSource },
      this.#key,
      data as BufferSource,
    );
    out.set(new Uint8Array(ct), 13);
    return out;
  }

  /**
   * The data sealed in `sealed` for `objectKey`. Throws `EIO` naming the object if it was
   * changed, sealed for another key or volume, or with another key: never wrong bytes.
   */
  async open(sealed: Uint8Array, objectKey: string): Promise<Uint8Array> {
    if (sealed.byteLength < SEALED_OVERHEAD || sealed[0] !== VERSION) {
      throw new FsError(
        Errno.EIO,
        `Block "${objectKey}" is not a sealed block (${sealed.byteLength} bytes, version ${
          sealed[0]
        })`,
      );
    }
    const iv = sealed.slice(1, 13);
    const aad = this.#aad(objectKey);
    try {
      if (this.#native) return await this.#native.open(iv, aad, sealed.subarray(13));
      const plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv, additionalData: aad as BufferSource },
        this.#key,
        sealed.subarray(13) as BufferSource,
      );
      return new Uint8Array(plain);
    } catch (err) {
      throw new FsError(
        Errno.EIO,
        `Block "${objectKey}" fails authentication: changed, moved from another key, or ` +
          "sealed with another key",
        { cause: err },
      );
    }
  }
}

/**
 * A block store whose objects are sealed by a {@linkcode BlockCipher}: `put` seals, `get` opens
 * (a ranged `get` opens the whole object, then cuts the range), and listings report the sizes
 * of the unsealed data (the stored size less {@linkcode SEALED_OVERHEAD}).
 */
export class EncryptedBlockStore implements BlockStore {
  readonly #inner: BlockStore;
  readonly #cipher: BlockCipher;

  /** Seals the objects of `inner` with `cipher`; closing this store closes `inner`. */
  constructor(inner: BlockStore, cipher: BlockCipher) {
    this.#inner = inner;
    this.#cipher = cipher;
  }

  /** The inner store's URL. */
  get url(): string {
    return this.#inner.url;
  }

  /** The inner store's limits; sealed objects are opened whole (`wholeObjects`). */
  get limits(): StoreLimits {
    return { ...this.#inner.limits, wholeObjects: true };
  }

  /** Seals `data` for `key` and stores it. */
  async put(key: string, data: Uint8Array): Promise<void> {
    await this.#inner.put(key, await this.#cipher.seal(data, key));
  }

  /**
   * Opens the object `key` (`EIO` if it fails authentication, logged as an error naming it: the
   * FUSE layer logs at most one failed read a second); a range of it if asked.
   */
  async get(key: string, offset?: number, length?: number): Promise<Uint8Array> {
    const sealed = await this.#inner.get(key);
    let plain: Uint8Array;
    try {
      plain = await this.#cipher.open(sealed, key);
    } catch (error) {
      log.error("{message}", { message: (error as Error).message, key, error });
      throw error;
    }
    if (offset === undefined && length === undefined) return plain;
    const start = Math.min(offset ?? 0, plain.byteLength);
    return plain.subarray(start, length === undefined ? undefined : start + length);
  }

  /** The object's unsealed size. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    const info = await this.#inner.head(key);
    return info && unsealedInfo(info);
  }

  /** Deletes keys. */
  delete(keys: readonly string[]): Promise<void> {
    return this.#inner.delete(keys);
  }

  /** Lists keys, with unsealed sizes. */
  async list(prefix: string, options?: { startAfter?: string; limit?: number }): Promise<ListPage> {
    const page = await this.#inner.list(prefix, options);
    return { ...page, objects: page.objects.map(unsealedInfo) };
  }

  /** Closes the inner store. */
  close(): Promise<void> {
    return this.#inner.close();
  }
}

function unsealedInfo(info: ObjectInfo): ObjectInfo {
  return { ...info, size: Math.max(0, info.size - SEALED_OVERHEAD) };
}

/**
 * The cipher of the volume `format` for `key`, or `undefined` for a volume without encryption
 * and no key. Throws {@linkcode EncryptionKeyError} for a missing or wrong key, or a key for a
 * volume without encryption.
 */
export async function volumeCipher(
  format: Pick<VolumeFormat, "name" | "uuid" | "encryption">,
  key: Uint8Array | undefined,
): Promise<BlockCipher | undefined> {
  if (!format.encryption && key === undefined) return undefined;
  if (key === undefined) {
    throw new EncryptionKeyError(`Volume "${format.name}" is encrypted: it needs its key`);
  }
  return await BlockCipher.forVolume(format, key);
}

/** `store` with its objects sealed by `cipher`, or `store` itself without one. */
export function sealedStore(store: BlockStore, cipher: BlockCipher | undefined): BlockStore {
  return cipher ? new EncryptedBlockStore(store, cipher) : store;
}
