// deno-lint-ignore-file
// @ts-nocheck AssemblyScript source, compiled by asc (not by Deno).

// The last part of engine.wasm's source (wasm/build.ts concatenates assembly/*.ts in a fixed
// order, since asc does not resolve the `.ts` import specifiers Deno needs): exports not defined
// elsewhere.

/** First free byte after the static data: scratch memory managed by the host starts here. */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}
