/**
 * Reading backend URLs' query parameters (private to the backends).
 *
 * @module
 */

/**
 * The boolean query parameter `name`: `true`, `1` or an empty value (`?durable`) is true; `false`
 * or `0` is false; `undefined` when absent. Throws a `TypeError` that quotes anything else.
 *
 * @example
 * ```ts
 * import { urlFlag } from "./_url.ts";
 * import { equal, throws } from "node:assert/strict";
 *
 * const url = new URL("file:///tmp/blocks?durable=1&fast=no");
 * equal(urlFlag(url, "durable"), true);
 * equal(urlFlag(url, "readonly"), undefined);
 * throws(() => urlFlag(url, "fast"), /Invalid fast "no": expected true or false/);
 * ```
 */
export function urlFlag(url: URL, name: string): boolean | undefined {
  const value = url.searchParams.get(name);
  if (value === null) return undefined;
  if (value === "" || value === "1" || value === "true") return true;
  if (value === "0" || value === "false") return false;
  throw new TypeError(`Invalid ${name} "${value}": expected true or false`);
}
