/**
 * What the daemon (`serve.ts`) is given and the pieces it sets up before serving: the mount
 * options, the malloc tuning, the block store (offline with `--writeback` when S3 does not
 * answer), the disk cache folders and the `--subdir` directory.
 *
 * @module
 */

import type { AtimeMode } from "../core/_atime.ts";
import { openBlockStore } from "../backends/mod.ts";
import type { BlockStore } from "../core/block_store.ts";
import { type CacheDirOptions, DiskBudget } from "../core/cache/mod.ts";
import { tryLoadLibc } from "../core/libc.ts";
import { getLog } from "../core/log.ts";
import { Meta } from "../core/meta/mod.ts";
import type { Ino } from "../core/types.ts";
import type { KvEngine } from "../core/kv.ts";
import { CliError, describe } from "./_errors.ts";
import type { TelemetryOpts } from "./_telemetry.ts";

const log = getLog("daemon");

/** The default cap of the disk cache: this share of its filesystem's free space at mount. */
const CACHE_SHARE = 0.5;

/** How `slayerfs mount` was asked to serve (the metrics and log options: `_telemetry.ts`). */
export interface MountOpts extends TelemetryOpts {
  /** Serve in this process instead of a detached daemon. */
  foreground: boolean;
  /** The `-o` mount options, by name (`""` for a flag). */
  options: Map<string, string>;
  /** The memory cache, in MiB. */
  cacheMiB: number;
  /** Disk cache folders (a remote store gets one under the home by default). */
  cacheDirs: string[];
  /** No disk cache even for a remote store. */
  noCacheDir: boolean;
  /** Written blocks of the full block size go into the disk cache too. */
  cacheLargeWrite?: boolean;
  /** The size of each disk cache folder, in MiB (default: a share of the free space). */
  cacheDirMiB: number | undefined;
  /** Stage writes on disk and upload them in the background. */
  writeback: boolean;
  /** The staging folder (under the home by default). */
  writebackDir: string | undefined;
  /** The staging capacity, in MiB (default: none, only the free space limits it). */
  writebackMiB: number | undefined;
  /** The background daemon's log file. */
  log: string;
  /** Another mount takes this one for dead after this long without its heartbeat (s). */
  sessionTimeoutSec: number;
  /** How reads change atime (`--atime-mode`). */
  atimeMode: AtimeMode;
  /** The effective settings and where each came from (`_config.ts`), for the state file. */
  settings?: Record<string, unknown>;
  /** The key file of an encrypted volume (`--encrypt-key`; else `$SLAYERFS_ENCRYPTION_KEY`). */
  encryptKeyFile?: string;
  /** The directory of the volume to serve as the root (`--subdir`), if not the volume's root. */
  subdir?: string | undefined;
  /** `--upload-limit` and `--download-limit`, in Mbit/s (none: unlimited). */
  uploadLimitMbit?: number | undefined;
  downloadLimitMbit?: number | undefined;
  /** `--upload-window HH:MM-HH:MM`: staged uploads wait outside it. */
  uploadWindow?: string | undefined;
}

/**
 * Keeps the daemon's memory from creeping up while it streams: the I/O threads share two malloc
 * arenas instead of one each, and every second the freed block buffers go back to the kernel
 * (`malloc_trim`, on a worker thread: it walks every arena, which took ~20 ms of the JS thread per
 * call once the heap had grown, a stall of every request each second). (A fixed mmap threshold
 * kept RSS low too, but the page faults of a fresh mapping per block halved sequential
 * throughput.) Returns a function that stops the trimming.
 */
export function tuneMalloc(): () => void {
  if (Deno.env.get("SLAYERFS_MALLOPT") === "0") return () => {};
  const libc = tryLoadLibc();
  const mallopt = libc?.mallopt;
  const mallocTrim = libc?.malloc_trim;
  if (!mallopt || !mallocTrim) return () => {}; // Not glibc: nothing to tune.
  const M_ARENA_MAX = -8;
  mallopt(M_ARENA_MAX, 2);
  let trimming = false;
  const timer = setInterval(() => {
    if (trimming) return;
    trimming = true;
    mallocTrim(0n).finally(() => trimming = false);
  }, 1000);
  Deno.unrefTimer(timer);
  return () => clearInterval(timer);
}

/** Whether `err` says that the store could not be reached (not that it refused us). */
function unreachable(err: unknown): boolean {
  const e = err as { name?: unknown; status?: unknown; code?: unknown } | null;
  if (e?.name !== "S3StoreError") return false;
  if (typeof e.status === "number") return e.status >= 500 || e.status === 429;
  return e.code !== "CredentialsProviderError";
}

/**
 * Opens the volume's block store. With `--writeback`, a store that does not answer (an S3
 * outage, no network) is opened anyway, offline: cached reads and staged writes work, uploads
 * wait for it, and reads of uncached blocks fail with `EIO` until it is back.
 */
export async function openStore(url: string, writeback: boolean): Promise<BlockStore> {
  try {
    return await openBlockStore(url);
  } catch (err) {
    if (!writeback || !unreachable(err)) throw err;
    log.warn(
      "Storage {url} does not answer ({reason}): mounting offline; cached reads and staged " +
        "writes work, uploads resume when it answers",
      { url, reason: describe(err), error: err },
    );
    return await openBlockStore(url, { verify: false });
  }
}

/**
 * The disk cache folders: `mib` each, or by default {@linkcode CACHE_SHARE} of the free space
 * of their filesystem (split among the folders on it), each with its filesystem's budget.
 */
export async function cacheDirOptions(
  paths: string[],
  mib: number | undefined,
  budgets: Map<string, DiskBudget>,
): Promise<CacheDirOptions[]> {
  return await Promise.all(paths.map(async (path) => {
    const budget = budgets.get(path)!;
    const sharing = paths.filter((p) => budgets.get(p) === budget).length;
    return {
      path,
      capacityBytes: mib !== undefined
        ? mib * 2 ** 20
        : await DiskBudget.shareOfFreeSpace(path, CACHE_SHARE / sharing),
      budget,
    };
  }));
}

/**
 * The inode of directory `path` of the volume (`--subdir`); a {@linkcode CliError} if it is
 * missing or not a directory (as JuiceFS, the mount fails: nothing is created).
 */
export async function resolveSubdir(kv: KvEngine, path: string): Promise<Ino> {
  const meta = await Meta.open(kv);
  const a = await meta.resolve(path).catch((err) => {
    throw new CliError(`Subdirectory "${path}" of the volume: ${describe(err)}`);
  });
  if ((a.mode & 0o170000) !== 0o040000) {
    throw new CliError(`Subdirectory "${path}" of the volume is not a directory`);
  }
  return a.ino;
}
