/**
 * `slayerfs status [--json] PATH|META_URL`: for any path inside a mount, the mount's daemon state
 * (volume, storage, cache tiers with sizes and hit rates, staged uploads, the hottest files by
 * path, FUSE requests) with the volume's usage; for a metadata URL, the volume's format, usage
 * (bytes and inodes) and sessions (the mounts of the volume: id, host, pid, mountpoint, version,
 * last heartbeat, and whether that is within the mount's session timeout).
 * Human-readable by default, the raw state as JSON with `--json`. A dead mount (its daemon gone)
 * is an error (exit 1).
 *
 * @module
 */

import type { CacheStats } from "../core/cache/mod.ts";
import { Meta } from "../core/meta/mod.ts";
import type { KvEngine } from "../core/kv.ts";
import { DEFAULT_SESSION_TIMEOUT_MS, isStale, Session } from "../core/session.ts";
import type { VolumeFormat } from "../core/format.ts";
import type { Ino } from "../core/types.ts";
import { humanAge, humanBytes, percent, table } from "./_human.ts";
import { openMeta, volumeSummary } from "./_meta.ts";
import { hidePassword } from "./_urls.ts";
import { Redactor } from "../core/_log_output.ts";
import { liveMountOf } from "./_mount_of.ts";
import { pathsOf } from "./_paths.ts";
import type { ParsedArgs } from "./_spec.ts";
import type { MountState } from "./_state.ts";

/** Runs `slayerfs status` with its checked arguments. */
export async function cmdStatus(args: ParsedArgs): Promise<void> {
  const target = args.positionals[0]!;
  const json = args.flag("json");
  if (/^[a-z0-9+.-]+:\/\//i.test(target)) {
    const kv = await openMeta(target, true);
    try {
      const { format, usage } = await volumeSummary(kv);
      const used = await (await Meta.open(kv)).usage();
      const sessions = await sessionsOf(kv);
      console.log(masked(
        json
          ? JSON.stringify(
            { ...format, usage, space: used.space, inodes: used.inodes, sessions },
            null,
            2,
          )
          : volumeText(format, usage, sessions),
      ));
    } finally {
      await kv.close();
    }
    return;
  }
  const { mountpoint, state } = await liveMountOf(target);
  const { out, paths } = await mountStatus(state, !json);
  console.log(masked(json ? JSON.stringify(out, null, 2) : mountText(mountpoint, out, paths)));
}

/**
 * What `status` prints goes to terminals, tickets and CI logs: the metadata URL's password, the
 * daemon's secret arguments and the environment's secrets are masked (`***`), as in the logs.
 */
function masked(text: string): string {
  return new Redactor().redact(text);
}

/**
 * What `status --json` prints for a live mount: its daemon's state with `alive` and the volume's
 * usage; with `withPaths`, the paths of its hottest files too (for the text).
 */
export async function mountStatus(
  state: MountState,
  withPaths = false,
): Promise<{ out: MountState & { alive: boolean; usage?: string }; paths: Map<Ino, string> }> {
  const out: MountState & { alive: boolean; usage?: string } = { ...state, alive: true };
  let paths = new Map<Ino, string>();
  // A mem:// volume lives in the daemon; any other engine can be read beside the mount.
  if (!state.meta.startsWith("mem:")) {
    const kv = await openMeta(state.meta, true);
    try {
      out.usage = (await volumeSummary(kv)).usage;
      const hot = (state.hottestFiles ?? []) as Array<{ ino: Ino }>;
      if (withPaths && hot.length) {
        paths = await pathsOf(await Meta.open(kv), hot.map((h) => h.ino));
      }
    } finally {
      await kv.close();
    }
  }
  return { out, paths };
}

/** A session as `status` shows it. */
interface SessionView {
  id: number;
  host: string;
  pid: number;
  mountpoint: string;
  version: string;
  started: string;
  heartbeat: string;
  /** Whether its heartbeat is within its timeout (else another mount will clean it up). */
  live: boolean;
}

async function sessionsOf(kv: KvEngine): Promise<SessionView[]> {
  const now = Date.now();
  return (await Session.list(kv)).map((r) => ({
    id: r.id,
    host: r.host,
    pid: r.pid,
    mountpoint: r.mountpoint,
    version: r.version,
    started: new Date(r.started).toISOString(),
    heartbeat: new Date(r.heartbeat).toISOString(),
    live: !isStale(r, now, DEFAULT_SESSION_TIMEOUT_MS),
  }));
}

function sessionsText(sessions: SessionView[]): string[] {
  if (!sessions.length) return ["Sessions: none (not mounted)"];
  return [
    `Sessions: ${sessions.filter((x) => x.live).length} live`,
    ...table([
      ["id", "host", "pid", "mountpoint", "version", "last heartbeat"],
      ...sessions.map((x) => [
        String(x.id),
        x.host,
        String(x.pid),
        x.mountpoint,
        x.version,
        `${humanAge(Date.now() - Date.parse(x.heartbeat))} ago${x.live ? "" : " (stale)"}`,
      ]),
    ], "  "),
  ];
}

function volumeText(f: VolumeFormat, usage: string, sessions: SessionView[]): string {
  return [
    `Volume "${f.name}" (uuid ${f.uuid}, formatted ${f.createdAt})`,
    ...table([
      ["Storage:", f.storage],
      [
        "Blocks:",
        `${humanBytes(f.blockSize)}, compression ${f.compression}, dedup ${
          f.dedup ? "on" : "off"
        }, inline up to ${humanBytes(f.inlineMax ?? 0)}, encryption ${
          f.encryption?.cipher ?? "off"
        }`,
      ],
      ["Capacity:", `${humanBytes(f.capacity)}, ${f.inodes} inodes`],
      ["Usage:", usage],
    ]),
    ...sessionsText(sessions),
  ].join("\n");
}

function mountText(mnt: string, s: MountState & { usage?: string }, paths: Map<Ino, string>) {
  const rows = [
    ["Metadata:", hidePassword(s.meta)],
    ["Storage:", s.storage],
    ...(s.usage ? [["Usage:", s.usage]] : []),
    ...(s.session !== undefined ? [["Session:", String(s.session)]] : []),
    ["Open:", `${s.openFiles ?? 0} files, ${s.handles ?? 0} handles`],
    ...(s.metrics ? [["Metrics:", `http://${s.metrics}/metrics (slayerfs stats ${mnt})`]] : []),
  ];
  const cache = s.cache as CacheStats | undefined;
  const hits = cache?.hits ?? s.cacheHits ?? 0;
  const misses = cache?.misses ?? s.cacheMisses ?? 0;
  rows.push([
    "Cache:",
    `${humanBytes(s.cacheBytes ?? 0)}${cache ? "" : " in memory"}, ${hits} hits, ${misses} ` +
    `misses (${percent(hits + misses ? hits / (hits + misses) : 0)} hit rate)`,
  ]);
  if (s.storeGets !== undefined) {
    rows.push([
      "Fetched:",
      `${s.storeGets} objects, ${humanBytes(s.storeGetBytes ?? 0)} from the store`,
    ]);
  }
  if (s.readAround) {
    rows.push([
      "Read-around:",
      `${s.readAround.windows} windows, ${humanBytes(s.readAround.bytes)} to the page cache`,
    ]);
  }
  if (s.randomFill?.files) {
    const { files, blocks } = s.randomFill;
    rows.push(["Random fill:", `${files} files read at random, ${blocks} blocks fetched whole`]);
  }
  if (s.bandwidth) rows.push(["Bandwidth:", bandwidthText(s.bandwidth)]);
  const wb = s.writeback;
  if (wb) {
    rows.push([
      "Staged:",
      `${wb.stagedObjects} blocks, ${humanBytes(wb.stagedBytes)} not uploaded yet (` +
      `${wb.uploading} uploading, ${wb.uploaded} uploaded, ${wb.failures} failed)` +
      (wb.dir ? ` in ${wb.dir}` : ""),
    ]);
    if (wb.lastError) rows.push(["", `last upload error: ${wb.lastError}`]);
  }
  const lines = [
    `Volume "${s.volume}" mounted at ${mnt} (pid ${s.pid}${
      s.supervisor ? `, supervisor pid ${s.supervisor}` : ""
    }, up ${humanAge(Date.now() - Date.parse(s.started))}, state of ${
      humanAge(Date.now() - Date.parse(s.updated))
    } ago)`,
    ...table(rows),
  ];
  if (cache) {
    lines.push(
      "  Cache tiers:",
      ...table(
        cache.tiers.map((t) => [
          t.name,
          `${humanBytes(t.bytes)} of ${humanBytes(t.capacity)}`,
          `${t.entries} blocks`,
          `${percent(t.hitRate)} hits`,
        ]),
        "    ",
      ),
    );
  }
  const hot = (s.hottestFiles ?? []) as Array<{ ino: Ino; frequency: number }>;
  if (hot.length) {
    lines.push(
      "  Hottest files (cache hits, path):",
      ...table(hot.map((h) => [String(h.frequency), paths.get(h.ino) ?? `inode ${h.ino}`]), "    "),
    );
  }
  const ops = Object.entries(s.ops ?? {}).filter(([, o]) => o.count > 0);
  if (ops.length) {
    lines.push(
      "  FUSE requests:",
      ...table([
        ["operation", "count", "errors", "mean"],
        ...ops.map(([op, o]) => [op, String(o.count), String(o.errors), `${o.meanUs} µs`]),
      ], "    "),
    );
  }
  return lines.join("\n");
}

/** The limits of a mount (`--upload-limit`, `--download-limit`, `--upload-window`). */
function bandwidthText(b: NonNullable<MountState["bandwidth"]>): string {
  const mbit = (r: { bytesPerSec: number; burst: number } | undefined) =>
    r ? `${Math.round(r.bytesPerSec * 8 / 1e6)} Mbit/s (burst ${humanBytes(r.burst)})` : "no limit";
  const window = b.uploadWindow
    ? `, uploads in ${b.uploadWindow} (${b.windowOpen ? "open" : "closed"} now)`
    : "";
  return `upload ${mbit(b.upload)}, download ${mbit(b.download)}${window}; ` +
    `${humanBytes(b.uploadedBytes)} up, ${humanBytes(b.downloadedBytes)} down`;
}
