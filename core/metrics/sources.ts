/**
 * The metrics read at scrape time from what a mount already keeps: the block cache per tier, the
 * writeback staging, open files and handles, used space and inodes, pending FUSE requests and the
 * process (CPU, memory, file descriptors, uptime). One snapshot of the sources serves all of them
 * per scrape.
 *
 * @module
 */

import { cpuUsage } from "node:process";
import type { Metric, Registry } from "prom-client";
import type { CacheStats } from "../cache/types.ts";

/** What a mount's writeback staging reports (`WritebackStats` and the oldest staging time). */
export interface StagingSample {
  /** Blocks staged and not uploaded yet. */
  stagedObjects: number;
  /** Their bytes. */
  stagedBytes: number;
  /** Uploads in flight. */
  uploading: number;
  /** Uploads done since the mount. */
  uploaded: number;
  /** Failed upload attempts since the mount. */
  failures: number;
  /** When the oldest staged block was staged (ms since the epoch), if any is. */
  oldestStagedAt?: number;
}

/** Where {@linkcode watchSources} reads a mount's state. */
export interface ScrapeSources {
  /** Open files and handles, and the block cache (per tier when it keeps tiers). */
  vfs(): {
    openFiles: number;
    handles: number;
    cacheBytes: number;
    cacheHits: number;
    cacheMisses: number;
    cache?: CacheStats;
  };
  /** A cache without tiers (memory only): its capacity in bytes and the blocks it holds. */
  memoryCache?: () => { capacity: number; entries: number };
  /** Used space and inodes (a metadata read). */
  usage(): Promise<{ space: number; inodes: number }>;
  /** The capacity and inode count `df` reports. */
  capacity: { bytes: number; inodes: number };
  /** The writeback staging, with `--writeback`. */
  staging?: () => StagingSample;
  /** FUSE requests started and not answered yet. */
  pending?: () => number;
  /** The metadata engine's requests to its server, for an engine that counts them. */
  roundTrips?: () => number | undefined;
}

type Labels = Record<string, string>;
/** One sample: a value, with labels or without. */
type Sample = { labels?: Labels; value: number };

/** What one scrape reads of the sources. */
interface Snapshot {
  vfs: ReturnType<ScrapeSources["vfs"]>;
  usage: { space: number; inodes: number } | undefined;
  staging: StagingSample | undefined;
  pending: number;
  roundTrips: number | undefined;
  cpuSeconds: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  fds: number | undefined;
}

/** A snapshot is reused by the metrics of one scrape (they are read concurrently). */
const SNAPSHOT_TTL_MS = 250;

/** A metric whose samples are computed from the snapshot when it is scraped. */
class Sampled {
  readonly aggregator = "sum";
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "gauge" | "counter",
    readonly read: (s: Snapshot) => Sample[] | number | undefined,
    readonly snapshot: () => Promise<Snapshot>,
  ) {}

  async get() {
    const v = this.read(await this.snapshot());
    const values = v === undefined
      ? []
      : typeof v === "number"
      ? [{ value: v, labels: {} }]
      : v.map((s) => ({ value: s.value, labels: s.labels ?? {} }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: "sum" };
  }

  reset(): void {}
}

function openFds(): number | undefined {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    return n;
  } catch {
    return undefined;
  }
}

/** Registers, on `registry`, every metric read from `sources` at scrape time. */
export function watchSources(registry: Registry, sources: ScrapeSources): void {
  let taken: { at: number; snap: Promise<Snapshot> } | undefined;
  const snapshot = (): Promise<Snapshot> => {
    const now = performance.now();
    if (taken === undefined || now - taken.at > SNAPSHOT_TTL_MS) {
      taken = { at: now, snap: take() };
    }
    return taken.snap;
  };
  const take = async (): Promise<Snapshot> => {
    const cpu = cpuUsage();
    const mem = Deno.memoryUsage();
    return {
      vfs: sources.vfs(),
      usage: await sources.usage().catch(() => undefined),
      staging: sources.staging?.(),
      pending: sources.pending?.() ?? 0,
      roundTrips: sources.roundTrips?.(),
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      heapTotal: mem.heapTotal,
      external: mem.external,
      fds: openFds(),
    };
  };
  const add = (
    name: string,
    type: "gauge" | "counter",
    help: string,
    read: (s: Snapshot) => Sample[] | number | undefined,
  ) => {
    registry.registerMetric(
      new Sampled(`slayerfs_${name}`, help, type, read, snapshot) as unknown as Metric,
    );
  };
  /** Per tier: the tiered cache's tiers, or the memory cache alone as tier "memory". */
  const tiers = (s: Snapshot, pick: (t: TierSample) => number): Sample[] =>
    tierSamples(s, sources).map((t) => ({
      labels: { tier: t.name },
      value: pick(t),
    }));
  const cache = (s: Snapshot) => s.vfs.cache;

  add(
    "blockcache_hits_total",
    "counter",
    "Block lookups the cache answered",
    (s) => s.vfs.cacheHits,
  );
  add(
    "blockcache_misses_total",
    "counter",
    "Block lookups that went to the object store",
    (s) => s.vfs.cacheMisses,
  );
  add("blockcache_bytes", "gauge", "Bytes in the block cache (all tiers)", (s) => s.vfs.cacheBytes);
  add(
    "blockcache_blocks",
    "gauge",
    "Distinct blocks in the block cache",
    (s) => cache(s)?.entries ?? sources.memoryCache?.().entries,
  );
  add(
    "blockcache_tier_hits_total",
    "counter",
    "Block lookups answered, by cache tier",
    (s) => tiers(s, (t) => t.hits),
  );
  add(
    "blockcache_tier_misses_total",
    "counter",
    "Block lookups that missed, by cache tier",
    (s) => tiers(s, (t) => t.misses),
  );
  add(
    "blockcache_tier_bytes",
    "gauge",
    "Bytes held, by cache tier",
    (s) => tiers(s, (t) => t.bytes),
  );
  add(
    "blockcache_tier_capacity_bytes",
    "gauge",
    "Byte cap, by cache tier",
    (s) => tiers(s, (t) => t.capacity),
  );
  add(
    "blockcache_tier_blocks",
    "gauge",
    "Blocks held, by cache tier",
    (s) => tiers(s, (t) => t.entries),
  );
  add(
    "blockcache_evictions_total",
    "counter",
    "Blocks evicted from a cache tier",
    (s) => cache(s)?.evictions ?? 0,
  );
  add(
    "blockcache_promotions_total",
    "counter",
    "Disk-cached blocks copied into memory",
    (s) => cache(s)?.promotions ?? 0,
  );
  add("blockcache_demotions_total", "counter", "Blocks written to disk on eviction from memory", (
    s,
  ) => cache(s)?.demotions ?? 0);
  add("blockcache_dropped_writes_total", "counter", "Disk cache writes skipped (full, no room)", (
    s,
  ) => cache(s)?.droppedWrites ?? 0);
  add("blockcache_pending_write_bytes", "gauge", "Bytes waiting to be written to the disk cache", (
    s,
  ) => cache(s)?.pendingBytes ?? 0);

  if (sources.staging !== undefined) {
    const st = (s: Snapshot) => s.staging;
    add(
      "staging_blocks",
      "gauge",
      "Blocks staged by --writeback, not uploaded yet",
      (s) => st(s)?.stagedObjects,
    );
    add(
      "staging_bytes",
      "gauge",
      "Bytes staged by --writeback, not uploaded yet",
      (s) => st(s)?.stagedBytes,
    );
    add("staging_oldest_age_seconds", "gauge", "Age of the oldest staged block (0: none)", (s) => {
      const at = st(s)?.oldestStagedAt;
      return at === undefined ? 0 : Math.max(0, (Date.now() - at) / 1000);
    });
    add("staging_uploading", "gauge", "Staged blocks being uploaded", (s) => st(s)?.uploading);
    add("staging_uploaded_total", "counter", "Staged blocks uploaded", (s) => st(s)?.uploaded);
    add("staging_upload_failures_total", "counter", "Failed upload attempts of staged blocks", (
      s,
    ) => st(s)?.failures);
  }
  if (sources.roundTrips?.() !== undefined) {
    add(
      "meta_round_trips_total",
      "counter",
      "Requests to the metadata server",
      (s) => s.roundTrips,
    );
  }

  add("used_space_bytes", "gauge", "Bytes used by files", (s) => s.usage?.space);
  add("used_inodes", "gauge", "Inodes in use", (s) => s.usage?.inodes);
  add("capacity_bytes", "gauge", "The capacity df reports", () => sources.capacity.bytes);
  add("capacity_inodes", "gauge", "The inode count df reports", () => sources.capacity.inodes);
  add("open_files", "gauge", "Files open through the mount", (s) => s.vfs.openFiles);
  add("open_handles", "gauge", "Open file and directory handles", (s) => s.vfs.handles);
  add(
    "fuse_requests_pending",
    "gauge",
    "FUSE requests started and not answered yet",
    (s) => s.pending,
  );

  add("process_cpu_seconds_total", "counter", "User and system CPU time", (s) => s.cpuSeconds);
  add("process_resident_memory_bytes", "gauge", "Resident memory", (s) => s.rss);
  add("process_heap_used_bytes", "gauge", "JavaScript heap in use", (s) => s.heapUsed);
  add("process_heap_total_bytes", "gauge", "JavaScript heap reserved", (s) => s.heapTotal);
  add(
    "process_external_memory_bytes",
    "gauge",
    "Memory outside the JavaScript heap that V8 accounts for (ArrayBuffers: block buffers)",
    (s) => s.external,
  );
  add("process_open_fds", "gauge", "Open file descriptors", (s) => s.fds);
  add(
    "process_start_time_seconds",
    "gauge",
    "Start of the process, since the Unix epoch",
    () => Math.floor(performance.timeOrigin / 1000),
  );
  add(
    "uptime_seconds",
    "gauge",
    "Seconds since the process started",
    () => Math.round(performance.now()) / 1000,
  );
}

/** The counters of one cache tier. */
interface TierSample {
  name: string;
  hits: number;
  misses: number;
  bytes: number;
  capacity: number;
  entries: number;
}

/** The tiers of the snapshot: the tiered cache's, or the memory cache as one tier. */
function tierSamples(s: Snapshot, sources: ScrapeSources): TierSample[] {
  const cache = s.vfs.cache;
  if (cache !== undefined) return cache.tiers;
  const memory = sources.memoryCache?.();
  if (memory === undefined) return [];
  return [{
    name: "memory",
    hits: s.vfs.cacheHits,
    misses: s.vfs.cacheMisses,
    bytes: s.vfs.cacheBytes,
    capacity: memory.capacity,
    entries: memory.entries,
  }];
}
