/**
 * CPU-time rates for the codec benchmarks (`lz4_kinds.ts`, `segments_kinds.ts`): the best of
 * interleaved rounds, each at least `minMs` of this process's CPU time (FFI calls run on the same
 * thread, so native and Wasm code are measured alike).
 *
 * @module
 */

import process from "node:process";

/** CPU time of this process in ms. */
export function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Bytes per CPU second of one round of `fn` lasting at least `minMs`. */
function round(bytes: number, fn: () => void, minMs: number): number {
  let n = 0;
  const t0 = cpuMs();
  let t = t0;
  while (t - t0 < minMs) {
    fn();
    n++;
    t = cpuMs();
  }
  return (bytes * n) / ((t - t0) / 1000);
}

/** Best rates (bytes per CPU second) of several functions measured in `rounds` interleaved rounds. */
export function rates(bytes: number, fns: (() => void)[], rounds: number, minMs: number): number[] {
  fns.forEach((fn) => fn());
  const best = fns.map(() => 0);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, i) => best[i] = Math.max(best[i]!, round(bytes, fn, minMs)));
  }
  return best;
}
