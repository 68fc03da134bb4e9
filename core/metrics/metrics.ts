/**
 * The Prometheus metrics of one mount ({@linkcode MountMetrics}), through `prom-client`.
 *
 * Every name starts with `slayerfs_`, and every sample carries the labels `volume` and
 * `mountpoint` (set with {@linkcode MountMetrics.setMount}). What moves on the request path is
 * counted as it happens: FUSE requests (through the adapter's `onOp` hook), object store requests
 * (an instrumented store, `store.ts`) and metadata transactions (an instrumented engine, `kv.ts`).
 * What the mount already keeps (cache tiers, writeback staging, open handles, usage) is read when
 * Prometheus scrapes, through {@linkcode MountMetrics.watch}. {@linkcode METRIC_NAMES} lists every
 * name, for the README, the dashboard and their tests.
 *
 * @example
 * ```ts
 * import { MountMetrics } from "./metrics.ts";
 *
 * const m = new MountMetrics();
 * m.setMount("vol1", "/mnt/vol1");
 * m.fuseOp("read", 0.2, false, new Uint8Array(4096));
 * const text = await m.text();
 * if (!text.includes('slayerfs_fuse_read_bytes_total{volume="vol1",mountpoint="/mnt/vol1"} 4096')) {
 *   throw new Error(text);
 * }
 * ```
 *
 * @module
 */

import { Counter, Histogram, Registry } from "prom-client";
import type { BlockStore } from "../block_store.ts";
import type { KvEngine } from "../kv.ts";
import { instrumentKv } from "./kv.ts";
import { instrumentStore } from "./store.ts";
import { traceCache, traceOps, type Tracer } from "./trace.ts";
import { type ScrapeSources, watchSources } from "./sources.ts";

export type { ScrapeSources };

/** The prefix of every metric name. */
export const PREFIX = "slayerfs_";

/** Latency buckets in seconds, 50 µs to 1 min: FUSE requests, object requests, transactions. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
];

/** The histograms and counters on the request path (the rest is sampled at scrape time). */
export interface RequestMetrics {
  /** FUSE request latency by operation (`op`); its `_count` is the request count. */
  readonly fuseDuration: Histogram<"op">;
  /** FUSE requests answered with an error, by operation. */
  readonly fuseErrors: Counter<"op">;
  /** Bytes returned by FUSE reads. */
  readonly fuseReadBytes: Counter;
  /** Bytes accepted by FUSE writes. */
  readonly fuseWrittenBytes: Counter;
  /** Object store request latency by method (`put`, `get`, `head`, `delete`, `list`). */
  readonly objectDuration: Histogram<"method">;
  /** Object store requests that failed, by method. */
  readonly objectErrors: Counter<"method">;
  /** Bytes sent (`put`) and received (`get`) by method. */
  readonly objectBytes: Counter<"method">;
  /** Metadata transaction latency, by `kind` (`read` or `write`). */
  readonly txnDuration: Histogram<"kind">;
  /** Extra runs of a transaction's body after a conflict. */
  readonly txnRestarts: Counter;
  /** Metadata transactions that failed. */
  readonly txnErrors: Counter;
}

/**
 * The registry and metrics of one mount. Create it before opening the volume, wrap the engine and
 * store with {@linkcode MountMetrics.kv} and {@linkcode MountMetrics.store}, pass
 * {@linkcode MountMetrics.fuseOp} to the FUSE adapter, and call {@linkcode MountMetrics.watch} once
 * the mount serves.
 */
export class MountMetrics {
  /** The registry Prometheus scrapes (`text()`). */
  readonly registry: Registry = new Registry();
  /** The request-path metrics. */
  readonly requests: RequestMetrics;

  /** Spans of requests, transactions, lookups and object requests, when tracing is on. */
  readonly tracer: Tracer | undefined;

  /** Creates the registry and the request-path metrics (and traces with `tracer`). */
  constructor(tracer?: Tracer) {
    this.tracer = tracer;
    const registers = [this.registry];
    this.requests = {
      fuseDuration: new Histogram({
        name: `${PREFIX}fuse_op_duration_seconds`,
        help: "FUSE requests by operation: time from arrival to reply (the count is the requests)",
        labelNames: ["op"],
        buckets: [...LATENCY_BUCKETS],
        registers,
      }),
      fuseErrors: new Counter({
        name: `${PREFIX}fuse_op_errors_total`,
        help: "FUSE requests answered with an error, by operation",
        labelNames: ["op"],
        registers,
      }),
      fuseReadBytes: new Counter({
        name: `${PREFIX}fuse_read_bytes_total`,
        help: "Bytes returned by FUSE reads",
        registers,
      }),
      fuseWrittenBytes: new Counter({
        name: `${PREFIX}fuse_written_bytes_total`,
        help: "Bytes accepted by FUSE writes",
        registers,
      }),
      objectDuration: new Histogram({
        name: `${PREFIX}object_request_duration_seconds`,
        help: "Object store requests by method (the count is the requests)",
        labelNames: ["method"],
        buckets: [...LATENCY_BUCKETS],
        registers,
      }),
      objectErrors: new Counter({
        name: `${PREFIX}object_request_errors_total`,
        help: "Object store requests that failed, by method",
        labelNames: ["method"],
        registers,
      }),
      objectBytes: new Counter({
        name: `${PREFIX}object_request_bytes_total`,
        help: "Bytes sent (put) and received (get) by the object store requests",
        labelNames: ["method"],
        registers,
      }),
      txnDuration: new Histogram({
        name: `${PREFIX}meta_txn_duration_seconds`,
        help: "Metadata transactions by kind (read or write), restarts included",
        labelNames: ["kind"],
        buckets: [...LATENCY_BUCKETS],
        registers,
      }),
      txnRestarts: new Counter({
        name: `${PREFIX}meta_txn_restarts_total`,
        help: "Extra runs of metadata transactions after a conflict",
        registers,
      }),
      txnErrors: new Counter({
        name: `${PREFIX}meta_txn_errors_total`,
        help: "Metadata transactions that failed",
        registers,
      }),
    };
    // Every operation and method shows from the start (at zero), so rates exist at once.
    for (const method of ["put", "get", "head", "delete", "list"]) {
      this.requests.objectErrors.inc({ method }, 0);
      this.requests.objectBytes.inc({ method }, 0);
    }
    for (const op of ["read", "write", "lookup", "getattr"]) {
      this.requests.fuseErrors.inc({ op }, 0);
    }
    this.requests.txnRestarts.inc(0);
    this.requests.txnErrors.inc(0);
  }

  /** Labels every sample with the volume's name and the mountpoint. */
  setMount(volume: string, mountpoint: string): void {
    this.registry.setDefaultLabels({ volume, mountpoint });
  }

  /**
   * Records one answered FUSE request: its operation, its time in milliseconds, whether it failed,
   * and the value it answered (the bytes of a read, the count of a write).
   */
  readonly fuseOp = (op: string, ms: number, error: boolean, value?: unknown): void => {
    const r = this.requests;
    r.fuseDuration.observe({ op }, ms / 1000);
    if (error) r.fuseErrors.inc({ op });
    else if (op === "read" && value instanceof Uint8Array) r.fuseReadBytes.inc(value.byteLength);
    else if (op === "write" && typeof value === "number") r.fuseWrittenBytes.inc(value);
  };

  /** `kv` with its transactions counted (see `kv.ts`). */
  kv(kv: KvEngine): KvEngine {
    return instrumentKv(kv, this.requests, this.tracer);
  }

  /** `store` with its requests counted (see `store.ts`). */
  store(store: BlockStore): BlockStore {
    return instrumentStore(store, this.requests, this.tracer);
  }

  /** `ops` (the mount's `FsOps`) with a span per call when tracing, else `ops` itself. */
  ops<T extends object>(ops: T, attributes: Record<string, string>): T {
    return this.tracer ? traceOps(ops, this.tracer, attributes) : ops;
  }

  /** `cache` with a span per lookup when tracing, else `cache` itself. */
  cache<T extends object>(cache: T): T {
    return this.tracer ? traceCache(cache, this.tracer) : cache;
  }

  /** Reads what the mount keeps (caches, staging, handles, usage, process) at every scrape. */
  watch(sources: ScrapeSources): void {
    watchSources(this.registry, sources);
  }

  /** The exposition text of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of {@linkcode MountMetrics.text}. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * Every metric name a mount exports (histograms by their base name; Prometheus adds `_bucket`,
 * `_sum` and `_count`), except the {@linkcode OPTIONAL_METRIC_NAMES}.
 */
export const METRIC_NAMES: readonly string[] = [
  "fuse_op_duration_seconds",
  "fuse_op_errors_total",
  "fuse_read_bytes_total",
  "fuse_written_bytes_total",
  "object_request_duration_seconds",
  "object_request_errors_total",
  "object_request_bytes_total",
  "meta_txn_duration_seconds",
  "meta_txn_restarts_total",
  "meta_txn_errors_total",
  "blockcache_hits_total",
  "blockcache_misses_total",
  "blockcache_bytes",
  "blockcache_blocks",
  "blockcache_tier_hits_total",
  "blockcache_tier_misses_total",
  "blockcache_tier_bytes",
  "blockcache_tier_capacity_bytes",
  "blockcache_tier_blocks",
  "blockcache_evictions_total",
  "blockcache_promotions_total",
  "blockcache_demotions_total",
  "blockcache_dropped_writes_total",
  "blockcache_pending_write_bytes",
  "used_space_bytes",
  "used_inodes",
  "capacity_bytes",
  "capacity_inodes",
  "open_files",
  "open_handles",
  "fuse_requests_pending",
  "process_cpu_seconds_total",
  "process_resident_memory_bytes",
  "process_heap_used_bytes",
  "process_heap_total_bytes",
  "process_external_memory_bytes",
  "process_open_fds",
  "process_start_time_seconds",
  "uptime_seconds",
].map((n) => PREFIX + n);

/**
 * The metric names only some mounts export: the staging of a `--writeback` mount, and the round
 * trips of a metadata engine that counts them (the network engines).
 */
export const OPTIONAL_METRIC_NAMES: readonly string[] = [
  "staging_blocks",
  "staging_bytes",
  "staging_oldest_age_seconds",
  "staging_uploading",
  "staging_uploaded_total",
  "staging_upload_failures_total",
  "meta_round_trips_total",
].map((n) => PREFIX + n);
