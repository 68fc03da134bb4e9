/**
 * SlayerFS backends: metadata engines and block stores, opened by URL.
 *
 * - Metadata: `sqlite3:///abs/path/meta.db` ({@linkcode SqliteKvEngine}), `mem://[name]`
 *   ({@linkcode MemoryKvEngine}).
 * - Blocks: `file:///abs/dir` ({@linkcode FileBlockStore}), `mem://[name]`
 *   ({@linkcode MemoryBlockStore}); decorators {@linkcode PrefixBlockStore} and
 *   {@linkcode FaultyBlockStore}.
 * - Conformance suites for new implementations live in `kv_conformance.ts` and
 *   `store_conformance.ts` (test-only, not re-exported here); the interfaces they check,
 *   {@linkcode KvEngine} and {@linkcode BlockStore}, are re-exported here.
 *
 * @example
 * ```ts
 * import { openBlockStore, openKvEngine } from "./mod.ts";
 * const kv = await openKvEngine("mem://");
 * const store = await openBlockStore("mem://");
 * await kv.close();
 * await store.close();
 * ```
 *
 * @module
 */

export {
  BackendError,
  dropMemoryBackends,
  type KvFactory,
  kvSchemes,
  openBlockStore,
  openKvEngine,
  type OpenKvOptions,
  type OpenStoreOptions,
  registerKvScheme,
  registerStoreScheme,
  type StoreFactory,
  storeSchemes,
} from "./registry.ts";
export { MemoryKvEngine } from "./kv_memory.ts";
export { SQLITE_APPLICATION_ID, SqliteKvEngine, type SqliteKvOptions } from "./kv_sqlite.ts";
export { DEFAULT_LIST_LIMIT, MemoryBlockStore } from "./store_memory.ts";
export {
  FILE_STORE_TEMP_PREFIX,
  FileBlockStore,
  type FileBlockStoreOptions,
} from "./store_file.ts";
export { PrefixBlockStore } from "./store_prefix.ts";
export {
  type FaultError,
  FaultyBlockStore,
  type FaultyBlockStoreOptions,
  type StoreCall,
  type StoreOp,
} from "./store_faulty.ts";
// The interfaces a backend implements, whole.
export type * from "../core/kv.ts";
export * from "../core/block_store.ts";
