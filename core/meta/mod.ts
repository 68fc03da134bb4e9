/**
 * POSIX metadata over a transactional key-value engine: {@linkcode Meta} and the types of its
 * results. The parts are described in `meta.ts`; every key is listed in `keys.ts`.
 *
 * @module
 */

export { Meta } from "./meta.ts";
export { now } from "./_inode.ts";
export type { MetaEntry } from "./namespace.ts";
export { applyAttrChanges, type AttrChanges } from "./_inode.ts";
export {
  type Committed,
  type FreedSlice,
  type Freeing,
  NeedUploadError,
  type NewSlice,
  type WithAttr,
} from "./slices.ts";
export type { FullChunk } from "./slice_reads.ts";
export type { PatternEntry } from "./patterns.ts";
export type { QuotaCheck, QuotaInfo, QuotaLimits, QuotaUsage } from "./quotas.ts";
export type { SessionInfo, SessionRecord } from "./sessions.ts";
export { KvLocks, type KvLocksOptions, listLocks, releaseSessionLocks } from "./kv_locks.ts";
