/**
 * Figures the commands print: `mib()` for tables of MiB. Sizes people read go through
 * `formatSize()` (`core/format.ts`); arguments are read by `_spec.ts`.
 *
 * @module
 */

/** `bytes` in MiB with one decimal, without the unit: `1.5`. */
export function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}
