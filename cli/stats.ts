/**
 * `slayerfs stats [--interval SEC] [--count N] MOUNTPOINT`: a live view of a mount, like
 * `juicefs stats`. It finds the mount's metrics endpoint in the daemon's state file, scrapes it
 * every interval, and prints one line of rates per interval: FUSE operations per second and their
 * mean latency, read and write throughput, the block cache's hit rate, object store requests and
 * throughput, metadata transactions and their latency, blocks staged by `--writeback`, and the
 * daemon's CPU and memory. The column headers repeat every screenful on a terminal (in bold);
 * elsewhere the lines are plain text.
 *
 * @module
 */

import { type MetricSample, parseMetrics, sum } from "../core/metrics/parse.ts";
import { CliError, describe } from "./_errors.ts";
import { liveMountOf } from "./_mount_of.ts";
import type { ParsedArgs } from "./_spec.ts";

const MiB = 2 ** 20;
const P = "slayerfs_";

/** One column: its group, header, width, and how it is computed from two scrapes. */
interface Column {
  group: string;
  head: string;
  width: number;
  value: (r: Rates) => string;
}

/** Two scrapes and the seconds between them. */
interface Rates {
  /** The increase of a counter (summed over the matching samples) between the scrapes. */
  d(name: string, match?: Record<string, string>): number;
  /** A gauge's value at the second scrape. */
  now(name: string): number;
  /** Seconds between the scrapes. */
  dt: number;
}

/** A number in at most 6 characters: 12.3, 1234, 12.3k, 1.2M. */
export function compact(n: number): string {
  if (!Number.isFinite(n)) return "-";
  const a = Math.abs(n);
  if (a >= 1e6) return `${(n / 1e6).toFixed(a >= 1e8 ? 0 : 1)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(a >= 1e5 ? 0 : 1)}k`;
  if (a >= 100 || n === 0) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

const perSec = (r: Rates, name: string, match?: Record<string, string>) =>
  compact(r.d(name, match) / r.dt);
/** Mean latency in ms of a histogram between the scrapes, or "-" with no observation. */
const meanMs = (r: Rates, hist: string, match?: Record<string, string>) => {
  const n = r.d(`${hist}_count`, match);
  return n > 0 ? compact(r.d(`${hist}_sum`, match) / n * 1000) : "-";
};

const FUSE = `${P}fuse_op_duration_seconds`;
const OBJ = `${P}object_request_duration_seconds`;
const TXN = `${P}meta_txn_duration_seconds`;

/** The columns, in order; the staging ones are left out for a mount without `--writeback`. */
const COLUMNS: Column[] = [
  { group: "fuse", head: "ops/s", width: 7, value: (r) => perSec(r, `${FUSE}_count`) },
  { group: "fuse", head: "lat ms", width: 7, value: (r) => meanMs(r, FUSE) },
  {
    group: "fuse",
    head: "rd MiB/s",
    width: 8,
    value: (r) => compact(r.d(`${P}fuse_read_bytes_total`) / r.dt / MiB),
  },
  {
    group: "fuse",
    head: "wr MiB/s",
    width: 8,
    value: (r) => compact(r.d(`${P}fuse_written_bytes_total`) / r.dt / MiB),
  },
  {
    group: "cache",
    head: "hit%",
    width: 5,
    value: (r) => {
      const h = r.d(`${P}blockcache_hits_total`);
      const m = r.d(`${P}blockcache_misses_total`);
      return h + m > 0 ? (h / (h + m) * 100).toFixed(0) : "-";
    },
  },
  {
    group: "cache",
    head: "MiB",
    width: 6,
    value: (r) => compact(r.now(`${P}blockcache_bytes`) / MiB),
  },
  { group: "object", head: "get/s", width: 6, value: (r) => perSec(r, `${OBJ}_count`, M("get")) },
  { group: "object", head: "put/s", width: 6, value: (r) => perSec(r, `${OBJ}_count`, M("put")) },
  {
    group: "object",
    head: "MiB/s",
    width: 6,
    value: (r) => compact(r.d(`${P}object_request_bytes_total`) / r.dt / MiB),
  },
  { group: "object", head: "lat ms", width: 6, value: (r) => meanMs(r, OBJ) },
  {
    group: "object",
    head: "err",
    width: 4,
    value: (r) => compact(r.d(`${P}object_request_errors_total`)),
  },
  { group: "meta", head: "txn/s", width: 6, value: (r) => perSec(r, `${TXN}_count`) },
  { group: "meta", head: "lat ms", width: 6, value: (r) => meanMs(r, TXN) },
  { group: "staged", head: "blocks", width: 6, value: (r) => compact(r.now(`${P}staging_blocks`)) },
  {
    group: "staged",
    head: "MiB",
    width: 6,
    value: (r) => compact(r.now(`${P}staging_bytes`) / MiB),
  },
  {
    group: "daemon",
    head: "cpu%",
    width: 5,
    value: (r) => compact(r.d(`${P}process_cpu_seconds_total`) / r.dt * 100),
  },
  {
    group: "daemon",
    head: "MiB",
    width: 6,
    value: (r) => compact(r.now(`${P}process_resident_memory_bytes`) / MiB),
  },
];

function M(method: string): Record<string, string> {
  return { method };
}

/** The two header lines (groups over their columns, then the column names). */
export function headerLines(columns: readonly Column[]): [string, string] {
  const groups: string[] = [];
  const heads: string[] = [];
  for (let i = 0; i < columns.length;) {
    const name = columns[i]!.group;
    const mine: Column[] = [];
    for (; i < columns.length && columns[i]!.group === name; i++) mine.push(columns[i]!);
    const width = mine.reduce((w, c) => w + c.width + 1, -1);
    const dashes = Math.max(0, width - name.length);
    groups.push(`${"-".repeat(Math.floor(dashes / 2))}${name}${"-".repeat(Math.ceil(dashes / 2))}`);
    heads.push(mine.map((c) => c.head.padStart(c.width)).join(" "));
  }
  return [groups.join("|"), heads.join("|")];
}

/** One line of values from two scrapes `dt` seconds apart. */
export function statsLine(
  columns: readonly Column[],
  before: readonly MetricSample[],
  after: readonly MetricSample[],
  dt: number,
): string {
  const rates: Rates = {
    d: (name, match) => Math.max(0, sum(after, name, match) - sum(before, name, match)),
    now: (name) => sum(after, name),
    dt: dt > 0 ? dt : 1,
  };
  let group = columns[0]?.group;
  return columns.map((c) => {
    const sep = c.group === group ? " " : "|";
    group = c.group;
    return sep + c.value(rates).padStart(c.width);
  }).join("").slice(1);
}

/** The columns for a mount whose scrape is `samples` (staging only with `--writeback`). */
export function columnsFor(samples: readonly MetricSample[]): Column[] {
  const staging = samples.some((s) => s.name === `${P}staging_blocks`);
  return COLUMNS.filter((c) => c.group !== "staged" || staging);
}

/** One scrape of the metrics endpoint at `address` (`HOST:PORT`). */
export async function scrape(address: string): Promise<MetricSample[]> {
  let res: Response;
  try {
    res = await fetch(`http://${address}/metrics`, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    throw new CliError(`Cannot read the metrics at http://${address}/metrics: ${describe(err)}`);
  }
  const text = await res.text();
  if (!res.ok) throw new CliError(`http://${address}/metrics answered ${res.status}: ${text}`);
  return parseMetrics(text);
}

/** Runs `slayerfs stats` with its checked arguments. */
export async function cmdStats(args: ParsedArgs): Promise<void> {
  const { mountpoint, state } = await liveMountOf(args.positionals[0]!);
  if (state.metrics === undefined) {
    throw new CliError(
      `The mount at "${mountpoint}" serves no metrics (mounted with --no-metrics, or its port ` +
        "was taken; see its log)",
    );
  }
  const intervalMs = Math.max(0.1, args.number("interval")) * 1000;
  const count = args.has("count") ? args.number("count") : Infinity;
  const tty = Deno.stdout.isTerminal();
  const rows = tty ? Math.max(5, (Deno.consoleSize?.().rows ?? 24) - 3) : Infinity;
  const bold = (s: string) => tty ? `\x1b[1m${s}\x1b[0m` : s;
  let before = await scrape(state.metrics);
  let t0 = performance.now();
  const columns = columnsFor(before);
  const [groups, heads] = headerLines(columns);
  let stop = false;
  const onInt = () => stop = true;
  Deno.addSignalListener("SIGINT", onInt);
  try {
    for (let n = 0; n < count && !stop; n++) {
      if (n % rows === 0) console.log(`${bold(groups)}\n${bold(heads)}`);
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + intervalMs - performance.now())));
      if (stop) break;
      const after = await scrape(state.metrics);
      const t1 = performance.now();
      console.log(statsLine(columns, before, after, (t1 - t0) / 1000));
      before = after;
      t0 = t1;
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
  }
}
