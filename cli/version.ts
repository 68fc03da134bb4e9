/**
 * `slayerfs --version`: the versions of SlayerFS (`deno.json`), Deno and libfuse3.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { DEFAULT_LIBFUSE } from "../ffi/libfuse.ts";

/** SlayerFS's version, from `deno.json`. */
export const VERSION: string = denoJson.version;

/**
 * libfuse3's version from its `fuse_pkgversion()` (the library `SLAYERFS_LIBFUSE` names, else
 * `libfuse3.so.3`), or `undefined` when it cannot be loaded.
 */
export function libfuseVersion(): string | undefined {
  const path = Deno.env.get("SLAYERFS_LIBFUSE") || DEFAULT_LIBFUSE;
  let lib;
  try {
    lib = Deno.dlopen(
      path,
      {
        /** const char *fuse_pkgversion(void); */
        fuse_pkgversion: { parameters: [], result: "pointer" },
      } as const,
    );
  } catch {
    return undefined;
  }
  try {
    const p = lib.symbols.fuse_pkgversion();
    return p === null ? undefined : Deno.UnsafePointerView.getCString(p);
  } finally {
    lib.close();
  }
}

/** Runs `slayerfs version` (or `--version`): one line per component. */
export function cmdVersion(): Promise<void> {
  const fuse = libfuseVersion();
  console.log(`slayerfs ${VERSION}`);
  console.log(
    `deno ${Deno.version.deno} (v8 ${Deno.version.v8}, typescript ${Deno.version.typescript})`,
  );
  console.log(`libfuse ${fuse ?? "not found (apt-get install fuse3)"}`);
  return Promise.resolve();
}
