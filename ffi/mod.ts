/**
 * The FUSE layer of SlayerFS: mount an {@linkcode FsOps} through libfuse3's low-level API,
 * called directly through `Deno.dlopen` (no C shim).
 *
 * @module
 */

export { FuseSession, mountFs, type MountOptions } from "./session.ts";
export { forceUnmount, isMounted, type MountInfo, mountInfo } from "./mounts.ts";
