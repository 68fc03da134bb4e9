/**
 * The daemon's metrics endpoint (`mount --metrics ADDR`, on by default, `--no-metrics` off): the
 * volume's and the mount's labels, the scrape-time sources (the VFS's cache and handle counters,
 * the writeback staging, usage, pending FUSE requests), and the HTTP server, whose address goes
 * into the mount's state file for `slayerfs status` and `slayerfs stats`.
 *
 * @module
 */

import { BlockCache } from "../core/cache/mod.ts";
import { configureLogging, getLog, type LogLevel, stderrLogFile } from "../core/log.ts";
import { type MetricsServer, parseAddress, serveMetrics } from "../core/metrics/http.ts";
import { MountMetrics, type ScrapeSources } from "../core/metrics/metrics.ts";
import { daemonTracer } from "../core/metrics/trace.ts";
import type { StagingSample } from "../core/metrics/sources.ts";
import type { KvEngine } from "../core/kv.ts";
import { usage } from "../core/meta/reclaim.ts";
import type { Volume } from "../core/volume.ts";
import { CliError, describe } from "./_errors.ts";
import type { ParsedArgs } from "./_spec.ts";

const log = getLog("metrics");

/** The mount's metrics and log options. */
export interface TelemetryOpts {
  /** The metrics endpoint's address (`--metrics`); none when undefined (`--no-metrics`). */
  metrics?: string | undefined;
  /** The lowest level logged (`--log-level`; default info, debug with `-o debug`). */
  logLevel?: LogLevel | undefined;
  /** Log lines as text or JSON (`--log-format`). */
  logFormat?: "text" | "json";
  /** Rotate the log file at this many bytes (`--log-max-size`; 0: never). */
  logMaxBytes?: number;
  /** Rotated log files kept (`--log-max-files`). */
  logMaxFiles?: number;
}

/**
 * Configures the daemon's logging from its options: the level (`-o debug` means debug unless
 * `--log-level` says otherwise), text or JSON, and the size cap of the log file when standard
 * error appends to one. Returns the context every JSON record carries (the mountpoint now; the
 * caller adds the volume once it is known).
 */
export function configureDaemonLogging(
  opts: TelemetryOpts,
  debug: boolean,
  mountpoint: string,
): Record<string, unknown> {
  const context: Record<string, unknown> = { mountpoint };
  const file = stderrLogFile();
  configureLogging({
    level: opts.logLevel ?? (debug ? "debug" : "info"),
    format: opts.logFormat ?? "text",
    context,
    ...(file !== undefined && (opts.logMaxBytes ?? 0) > 0
      ? { rotate: { path: file, maxBytes: opts.logMaxBytes!, keep: opts.logMaxFiles ?? 5 } }
      : {}),
  });
  return context;
}

/** The {@linkcode TelemetryOpts} of a `mount` command line; a bad address is a usage error. */
export function telemetryOptions(args: ParsedArgs): TelemetryOpts {
  const metrics = args.flag("no-metrics") ? undefined : args.string("metrics");
  if (metrics !== undefined) {
    try {
      parseAddress(metrics);
    } catch (err) {
      throw new CliError(`${describe(err)} (see slayerfs mount --help)`, 2);
    }
  }
  return {
    metrics,
    logLevel: args.string("log-level") as LogLevel | undefined,
    logFormat: args.string("log-format") === "json" ? "json" : "text",
    logMaxBytes: args.number("log-max-size"),
    logMaxFiles: args.number("log-max-files"),
  };
}

/** What the endpoint reads besides the volume. */
export interface ExportOptions {
  /** The address to bind (the next free port when its port is taken). */
  address: string;
  /** The mountpoint (a label). */
  mountpoint: string;
  /** The metadata engine as opened, not counted (usage; its round trips, if it counts them). */
  kv: KvEngine;
  /** FUSE requests not answered yet. */
  pending: () => number;
  /** The writeback staging's counters, with `--writeback`. */
  staging?: (() => StagingSample) | undefined;
}

/**
 * The mount's request-path instrumentation: metrics unless `--no-metrics`, and spans when Deno's
 * OpenTelemetry is on (`OTEL_DENO=true`); `undefined` when neither is wanted.
 */
export function mountMetrics(opts: TelemetryOpts): MountMetrics | undefined {
  const tracer = daemonTracer();
  if (tracer !== undefined) log.info("Tracing to OpenTelemetry (OTEL_DENO)");
  return opts.metrics === undefined && tracer === undefined ? undefined : new MountMetrics(tracer);
}

/**
 * Labels `metrics` with the volume and mountpoint, reads the mount's counters at every scrape,
 * and serves them; returns the server, or `undefined` (with a warning) when no port could be
 * bound: a mount does not fail for its metrics.
 */
export function exportMetrics(
  metrics: MountMetrics,
  vol: Volume,
  opts: ExportOptions,
): MetricsServer | undefined {
  metrics.setMount(vol.format.name, opts.mountpoint);
  const cache = vol.vfs.data.cache;
  const sources: ScrapeSources = {
    vfs: () => vol.vfs.stats(),
    // Through the engine as opened: the endpoint's own reads are not counted as transactions.
    usage: () => opts.kv.txn((tx) => usage(tx), { readOnly: true }),
    capacity: { bytes: vol.format.capacity, inodes: vol.format.inodes },
    pending: opts.pending,
    roundTrips: () => opts.kv.roundTrips,
    ...(cache instanceof BlockCache
      ? { memoryCache: () => ({ capacity: cache.capacity, entries: cache.entries }) }
      : {}),
    ...(opts.staging ? { staging: opts.staging } : {}),
  };
  metrics.watch(sources);
  try {
    const server = serveMetrics(metrics, opts.address);
    log.info("Metrics at http://{address}/metrics", { address: server.address });
    return server;
  } catch (error) {
    log.warn("No metrics endpoint: cannot listen on {address}: {reason}", {
      address: opts.address,
      reason: describe(error),
    });
    return undefined;
  }
}
