/**
 * The FUSE layer of SlayerFS: mount an {@linkcode FsOps} through libfuse3's low-level API,
 * called directly through `Deno.dlopen` (no C shim).
 *
 * @module
 */

export type { FsOps } from "../core/fs_ops.ts";
export type * from "../core/types.ts";
export type { OpObserver, OpStat } from "./adapter.ts";
export { FuseSession, mountFs, type MountOptions } from "./session.ts";
export { forceUnmount, isMounted, type MountInfo, mountInfo } from "./mounts.ts";
export type { InitInfo } from "./_takeover.ts";
