/**
 * What a SlayerFS mount did while `slayerfs bench` ran: counter increases read from the mount's
 * metrics endpoint, or from its state file (refreshed every 2 s) when it serves no metrics.
 *
 * @module
 */

import { type MetricSample, sum } from "../core/metrics/parse.ts";
import { liveMountOf, slayerMountpoint } from "./_mount_of.ts";
import { readState } from "./_state.ts";
import { scrape } from "./stats.ts";

const P = "slayerfs_";

/** The counters of a mount before the benchmark. */
export interface MountProbe {
  /** The mountpoint. */
  mountpoint: string;
  /** The metrics endpoint, if it serves one. */
  metrics: string | undefined;
  /** The counters before. */
  before: Record<string, number>;
}

function fromMetrics(s: readonly MetricSample[]): Record<string, number> {
  const obj = `${P}object_request_duration_seconds_count`;
  return {
    fuseRequests: sum(s, `${P}fuse_op_duration_seconds_count`),
    fuseReadBytes: sum(s, `${P}fuse_read_bytes_total`),
    fuseWrittenBytes: sum(s, `${P}fuse_written_bytes_total`),
    cacheHits: sum(s, `${P}blockcache_hits_total`),
    cacheMisses: sum(s, `${P}blockcache_misses_total`),
    objectGets: sum(s, obj, { method: "get" }),
    objectPuts: sum(s, obj, { method: "put" }),
    objectGetBytes: sum(s, `${P}object_request_bytes_total`, { method: "get" }),
    objectPutBytes: sum(s, `${P}object_request_bytes_total`, { method: "put" }),
    objectErrors: sum(s, `${P}object_request_errors_total`),
  };
}

async function counters(mountpoint: string, metrics: string | undefined, after?: number) {
  if (metrics !== undefined) return fromMetrics(await scrape(metrics));
  // The state file: wait (up to 5 s) for one written after the run ended.
  let state = await readState(mountpoint);
  for (let i = 0; after !== undefined && i < 50; i++) {
    if (state !== undefined && Date.parse(state.updated) > after) break;
    await new Promise((r) => setTimeout(r, 100));
    state = await readState(mountpoint);
  }
  return {
    cacheHits: state?.cacheHits ?? 0,
    cacheMisses: state?.cacheMisses ?? 0,
    objectGets: state?.storeGets ?? 0,
    objectGetBytes: state?.storeGetBytes ?? 0,
  };
}

/** The counters of the SlayerFS mount holding `path`, or `undefined` for another filesystem. */
export async function probeMount(path: string): Promise<MountProbe | undefined> {
  if ((await slayerMountpoint(path)) === undefined) return undefined;
  const { mountpoint, state } = await liveMountOf(path);
  return { mountpoint, metrics: state.metrics, before: await counters(mountpoint, state.metrics) };
}

/** How much each counter of `probe` grew since it was taken. */
export async function mountDeltas(probe: MountProbe): Promise<Record<string, number>> {
  const after = await counters(probe.mountpoint, probe.metrics, Date.now());
  return Object.fromEntries(
    Object.entries(after).map(([k, v]) => [k, Math.max(0, v - (probe.before[k] ?? 0))]),
  );
}
