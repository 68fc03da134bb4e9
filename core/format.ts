/**
 * The volume format: settings fixed when a volume is formatted.
 *
 * @module
 */

/** Settings of a volume, stored once in its metadata engine. */
export interface VolumeFormat {
  /** Format version of the metadata layout. */
  version: 1;
  /** The volume's name (shown by `slayerfs status` and as the mount's source). */
  name: string;
  /** A random id given at format time; names the volume's local caches and staging folders. */
  uuid: string;
  /** Where the blocks live (a block-store URL without secrets). */
  storage: string;
  /** Maximum block size in bytes. */
  blockSize: number;
  /** Chunk size in bytes (a multiple of the block size). */
  chunkSize: number;
  /** Block compression. */
  compression: "none" | "lz4";
  /** Content-addressed blocks: identical blocks are stored once (BLAKE3 keys, refcounted). */
  dedup?: boolean;
  /**
   * Blocks of at most this many bytes (small files, tails) are kept in the metadata engine
   * instead of the block store: one transaction instead of an object per small file.
   */
  inlineMax?: number;
  /**
   * Encryption at rest (`core/_crypto.ts`): every object is sealed with AES-256-GCM under a key
   * derived from the volume's key file; the check value refuses a wrong key at mount.
   */
  encryption?: { cipher: "aes-256-gcm"; keyCheck: string };
  /** Capacity reported by statfs, in bytes. */
  capacity: number;
  /** Inode limit reported by statfs. */
  inodes: number;
  /** When the volume was formatted (ISO 8601). */
  createdAt: string;
}

/** Default block size: 4 MiB. */
export const DEFAULT_BLOCK_SIZE = 4 << 20;
/** Default largest inline block: 16 KiB. */
export const DEFAULT_INLINE_MAX = 16 * 1024;
/** Default chunk size: 64 MiB. */
export const DEFAULT_CHUNK_SIZE = 64 << 20;

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
  p: 2 ** 50,
};

/**
 * Parses a size such as `4M`, `512MiB`, `1.5G`, `64k` or `4096` into bytes; units are binary
 * (`K` = `KiB` = 1024), `B` is optional. A plain number counts `unit` bytes each (default 1).
 * Throws a `RangeError` that says what is wrong with the value.
 *
 * @example
 * ```ts
 * import { parseSize } from "./format.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(parseSize("4M"), 4 << 20);
 * equal(parseSize("512MiB"), 512 << 20);
 * equal(parseSize("20", 2 ** 20), 20 << 20);
 * ```
 */
export function parseSize(text: string, unit = 1): number {
  const t = text.trim();
  if (/^-/.test(t)) throw new RangeError(`Invalid size "${text}": must not be negative`);
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*(?:([kmgtp])(i?b)?|(b))?$/i.exec(t);
  if (!m) {
    throw new RangeError(
      `Invalid size "${text}": expected a number with an optional unit K, M, G or T (4M, 512MiB)`,
    );
  }
  const mult = m[2] !== undefined ? SIZE_UNITS[m[2].toLowerCase()]! : m[4] !== undefined ? 1 : unit;
  const bytes = Number(m[1]) * mult;
  if (!Number.isSafeInteger(bytes)) {
    throw new RangeError(`Invalid size "${text}": not a whole number of bytes`);
  }
  return bytes;
}

/**
 * A byte count as people read it, in the largest binary unit that keeps at least 1:
 * `4 MiB`, `1.5 GiB`, `512 B`.
 *
 * @example
 * ```ts
 * import { formatSize } from "./format.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(formatSize(4 << 20), "4 MiB");
 * equal(formatSize(1536 << 20), "1.5 GiB");
 * ```
 */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (i < units.length - 1 && Math.abs(bytes) >= 1024 ** (i + 1)) i++;
  const n = bytes / 1024 ** i;
  const text = Number.isInteger(n) ? String(n) : n.toFixed(1).replace(/\.0$/, "");
  return `${text} ${units[i]}`;
}

/** Checks the settings of a new volume; throws an Error naming the bad value. */
export function validateFormat(f: VolumeFormat): void {
  if (!f.name || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(f.name)) {
    throw new Error(`Invalid volume name "${f.name}": use 1-63 letters, digits, ".", "_" or "-"`);
  }
  const bs = f.blockSize;
  if (!Number.isInteger(bs) || bs < 64 * 1024 || bs > 16 << 20 || (bs & (bs - 1)) !== 0) {
    throw new Error(
      `Invalid block size ${formatSize(bs)}: expected a power of two from 64 KiB to 16 MiB`,
    );
  }
  const im = f.inlineMax ?? 0;
  if (!Number.isInteger(im) || im < 0 || im > Math.min(bs, 65536)) {
    throw new Error(
      `Invalid inline size ${formatSize(im)}: expected 0 to 64 KiB (and at most the block size)`,
    );
  }
  if (!Number.isSafeInteger(f.capacity) || f.capacity <= 0) {
    throw new Error(`Invalid capacity ${f.capacity}: expected a size above 0`);
  }
  if (!Number.isSafeInteger(f.inodes) || f.inodes <= 0) {
    throw new Error(`Invalid inode limit ${f.inodes}: expected a whole number above 0`);
  }
  if (f.chunkSize % bs !== 0 || f.chunkSize > 2 ** 31) {
    throw new Error(`Invalid chunk size ${f.chunkSize}: expected a multiple of the block size`);
  }
}
