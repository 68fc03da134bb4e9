/**
 * SlayerFS: a POSIX filesystem on object storage, for Deno.
 *
 * Embed it to use a volume without mounting it:
 *
 * @example
 * ```ts
 * import { formatVolume, openVolume, openKvEngine } from "./mod.ts";
 * const kv = await openKvEngine("mem://mod-example");
 * await formatVolume(kv, { name: "demo", storage: "mem://mod-example" });
 * await kv.close();
 * const vol = await openVolume("mem://mod-example");
 * await vol.writeFile("/hello.txt", new TextEncoder().encode("hello"));
 * await vol.close();
 * ```
 *
 * @module
 */

import { openBlockStore, openKvEngine } from "./backends/mod.ts";
import { Volume } from "./core/volume.ts";
import type { VolumeOptions } from "./core/volume.ts";

export {
  type FormatOptions,
  formatVolume,
  Volume,
  VolumeFile,
  type VolumeOptions,
} from "./core/volume.ts";
export {
  EncryptionKeyError,
  type EncryptionRecord,
  KEY_ENV,
  parseKey,
  readKeyFile,
} from "./core/_crypto.ts";
export { Vfs, type VfsOptions, type VfsStats } from "./core/vfs.ts";
export type { AtimeMode } from "./core/_atime.ts";
export type { PageStore } from "./core/_read_around.ts";
export type {
  FillHost,
  RandomFill,
  RandomFillOptions,
  RandomFillStats,
} from "./core/_random_fill.ts";
export {
  type CleanupHook,
  DEFAULT_SESSION_TIMEOUT_MS,
  isStale,
  type LostHook,
  Session,
  type SessionInfo,
  type SessionOptions,
  type SessionRecord,
} from "./core/session.ts";
export { Meta } from "./core/meta/mod.ts";
export type { VolumeFormat } from "./core/format.ts";
export { DEFAULT_BLOCK_SIZE, DEFAULT_CHUNK_SIZE, parseSize } from "./core/format.ts";
export { Errno, FsError } from "./core/errno.ts";
export * from "./core/types.ts";
export type { FsOps } from "./core/fs_ops.ts";
export type { DataEngine, DataOptions, SliceMeta, StoredBlock } from "./core/data.ts";
export type { LockManager, LockWaitOptions, LostLock } from "./core/locks.ts";
export { KvLocks, type KvLocksOptions, releaseSessionLocks } from "./core/meta/mod.ts";
export type { Predictor, PredictorOptions, PredictorStats } from "./core/predict.ts";
export type { BlockCacheLike, CacheStats, HotBlock, TierStats } from "./core/cache/mod.ts";
export type {
  AttrChanges,
  Committed,
  FreedSlice,
  Freeing,
  FullChunk,
  MetaEntry,
  NewSlice,
  PatternEntry,
  QuotaCheck,
  QuotaInfo,
  QuotaLimits,
  QuotaUsage,
  WithAttr,
} from "./core/meta/mod.ts";
export type { SliceRecord } from "./core/slice.ts";
export type { BlockRecord } from "./core/block_codec.ts";
export type * from "./core/kv.ts";
export * from "./core/block_store.ts";
export {
  BackendError,
  openBlockStore,
  openKvEngine,
  registerKvScheme,
  registerStoreScheme,
} from "./backends/mod.ts";

/** Opens the volume whose metadata engine `metaUrl` names (`sqlite3:///path.db`, `mem://x`). */
export function openVolume(metaUrl: string, options?: VolumeOptions): Promise<Volume> {
  return Volume.open(metaUrl, { openKvEngine, openBlockStore }, options);
}
