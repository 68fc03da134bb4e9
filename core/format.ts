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

/** Parses a size such as `4M`, `512K`, `1G` or `4096` into bytes; throws on bad input. */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*([kmgtp]?)(i?b)?$/i.exec(text.trim());
  if (!m) throw new Error(`Invalid size "${text}": expected a number with an optional K/M/G/T`);
  const unit = (m[2] ?? "").toLowerCase();
  const mult = { "": 1, k: 1 << 10, m: 1 << 20, g: 1 << 30, t: 2 ** 40, p: 2 ** 50 }[unit] ?? 1;
  return Number(m[1]) * mult;
}

/** Checks the settings of a new volume; throws an Error naming the bad value. */
export function validateFormat(f: VolumeFormat): void {
  if (!f.name || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(f.name)) {
    throw new Error(`Invalid volume name "${f.name}": use 1-63 letters, digits, ".", "_" or "-"`);
  }
  const bs = f.blockSize;
  if (!Number.isInteger(bs) || bs < 64 * 1024 || bs > 16 << 20 || (bs & (bs - 1)) !== 0) {
    throw new Error(`Invalid block size ${bs}: expected a power of two from 64K to 16M`);
  }
  const im = f.inlineMax ?? 0;
  if (!Number.isInteger(im) || im < 0 || im > Math.min(bs, 65536)) {
    throw new Error(`Invalid inline size ${im}: expected 0 to 64K (and at most the block size)`);
  }
  if (f.chunkSize % bs !== 0 || f.chunkSize > 2 ** 31) {
    throw new Error(`Invalid chunk size ${f.chunkSize}: expected a multiple of the block size`);
  }
}
