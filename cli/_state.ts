/**
 * Where the CLI keeps things (`$SLAYERFS_HOME`, `~/.slayerfs` by default) and the state file each
 * running daemon writes about its mount (`run/<mountpoint>.json`), which `status`, `info`,
 * `umount` and the next `mount` read. The run folder is owner-only (0700) and the state files
 * 0600, as is everything else SlayerFS keeps on the local disk (`core/_private_fs.ts`).
 *
 * @module
 */

import {
  makePrivateDir,
  PRIVATE_DIR_MODE,
  PRIVATE_FILE_MODE,
  tightenMode,
} from "../core/_private_fs.ts";
import type { WritebackStats } from "../backends/store_writeback.ts";
import type { BandwidthStats } from "../backends/store_limited.ts";
import { CliError } from "./_errors.ts";

/** What a daemon records of its `--writeback` staging: the counters and the folder. */
export type StagedStats = WritebackStats & { dir?: string };

/** The CLI's home: `$SLAYERFS_HOME`, else `~/.slayerfs`. */
export function home(): string {
  return Deno.env.get("SLAYERFS_HOME") ?? `${Deno.env.get("HOME") ?? "/root"}/.slayerfs`;
}

/**
 * Creates folder `dir` (with its parents) for the CLI's own files; a folder that cannot be made
 * is a {@linkcode CliError} that, under the home, says how to choose another home.
 */
export async function makeHomeDir(dir: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (err) {
    const reason = err instanceof Error ? err.message.replace(/ \(os error \d+\).*$/, "") : err;
    const hint = dir.startsWith(home())
      ? `; set SLAYERFS_HOME to a folder you can write (default ~/.slayerfs)`
      : "";
    throw new CliError(`Cannot create "${dir}": ${reason}${hint}`);
  }
}

/** The folder of the daemons' state files. */
export function runDir(): string {
  return `${home()}/run`;
}

/** The state file of the daemon serving `mountpoint`. */
export function stateFile(mountpoint: string): string {
  return `${runDir()}/${encodeURIComponent(mountpoint)}.json`;
}

/** What a running daemon records about its mount. */
export interface MountState {
  /** The daemon's process id. */
  pid: number;
  /** The metadata URL it serves. */
  meta: string;
  /** The absolute mountpoint. */
  mountpoint: string;
  /** The volume's name. */
  volume: string;
  /** The volume's block-store URL. */
  storage: string;
  /** When it mounted (ISO 8601). */
  started: string;
  /** When it last wrote this state (every 2 s). */
  updated: string;
  /** The mount's session id in the volume's metadata (`status META_URL` lists the sessions). */
  session?: number;
  /** Files open through the mount. */
  openFiles?: number;
  /** Open file and directory handles. */
  handles?: number;
  /** Bytes in the memory block cache. */
  cacheBytes?: number;
  /** Block reads the cache answered. */
  cacheHits?: number;
  /** FUSE requests answered per operation, with errors and mean latency in microseconds. */
  ops?: Record<string, { count: number; errors: number; meanUs: number }>;
  /** Block reads that went to the store. */
  cacheMisses?: number;
  /** Objects fetched from the block store for reads. */
  storeGets?: number;
  /** Stored (compressed) bytes of those objects. */
  storeGetBytes?: number;
  /** Windows read-around handed to the kernel's page cache, and their bytes. */
  readAround?: { windows: number; bytes: number };
  /** The read-pattern predictor's counters. */
  predictor?: { recorded: number; replays: number; prefetchedBlocks: number };
  /** Files read at random filled into the disk cache (`random_fill`), and the blocks fetched. */
  randomFill?: { files: number; blocks: number };
  /** The tiered cache's statistics, when there is one. */
  cache?: unknown;
  /** The files with the most cached blocks, with the tiered cache. */
  hottestFiles?: unknown;
  /** The writeback staging's counters and folder, with `--writeback`. */
  writeback?: StagedStats;
  /** Bandwidth limits (`--upload-limit`, `--download-limit`, `--upload-window`) and bytes moved. */
  bandwidth?: BandwidthStats & { uploadWindow?: string; windowOpen?: boolean };
  /** The daemon's control socket (`_control.ts`), for `clone` and `snapshot`. */
  control?: string;
  /** The metrics endpoint's address (`HOST:PORT`, serving `/metrics`), unless `--no-metrics`. */
  metrics?: string;
  /** The signal that asks the daemon for a CPU profile (`_profiler.ts`), if it answers one. */
  profiler?: string;
  /** The mount's effective settings (the options as parsed, defaults filled in). */
  config?: Record<string, unknown>;
  /**
   * The mount's effective settings by key (`cache-size`), each with its value (credentials
   * masked), its source (flag, env, file or default) and its text (`slayerfs config show`).
   */
  settings?: Record<string, unknown>;
  /** The supervisor's pid, with `mount --supervise`. */
  supervisor?: number;
  /** The daemon this one took the connection over from (`mount --upgrade`, a restart). */
  tookOverFrom?: number;
  /** The daemon's `mount` arguments (`mount --upgrade` without options reuses them). */
  args?: string[];
}

/** Whether process `pid` runs (a zombie, killed and not yet reaped, does not). */
export function processAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) [ZX]/s.test(stat);
  } catch {
    return false;
  }
}

/** The state of the daemon serving `mnt`, if there is a readable one. */
export async function readState(mnt: string): Promise<MountState | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(stateFile(mnt))) as MountState;
  } catch {
    return undefined;
  }
}

/** The mountpoint that the daemon `pid` serves, from the state files. */
export async function mountOf(pid: number): Promise<string | undefined> {
  try {
    for await (const e of Deno.readDir(runDir())) {
      if (!e.name.endsWith(".json")) continue;
      const state = await readState(decodeURIComponent(e.name.slice(0, -".json".length)));
      if (state?.pid === pid) return state.mountpoint;
    }
  } catch {
    // no run folder: no mounts
  }
  return undefined;
}

/** Creates the run folder owner-only, or makes an existing one so (once, at mount). */
export async function makeRunDir(): Promise<void> {
  await makePrivateDir(runDir(), () => true);
}

/** Writes the daemon's state file (0600); the run folder must exist ({@linkcode makeRunDir}). */
export async function writeState(s: MountState): Promise<void> {
  const path = stateFile(s.mountpoint);
  await Deno.writeTextFile(path + ".tmp", JSON.stringify(s, null, 2), { mode: PRIVATE_FILE_MODE });
  await Deno.rename(path + ".tmp", path);
}

/**
 * Creates the log file `path` owner-only (and its missing folders), or makes an existing one so:
 * a background daemon appends to it.
 */
export async function makeLogFile(path: string): Promise<void> {
  const at = path.lastIndexOf("/");
  if (at > 0) await Deno.mkdir(path.slice(0, at), { recursive: true, mode: PRIVATE_DIR_MODE });
  await Deno.writeFile(path, new Uint8Array(), { append: true, mode: PRIVATE_FILE_MODE });
  await tightenMode(path, PRIVATE_FILE_MODE);
}
