/**
 * The options of a FUSE session ({@linkcode MountOptions}) and the `-o` list libfuse gets for them.
 *
 * @module
 */

import type { OpObserver } from "./adapter.ts";
import type { InitInfo } from "./_takeover.ts";

/** How a session is mounted and cached. */
export interface MountOptions {
  /** The mount source shown in `/proc/mounts` (default `"slayerfs"`). */
  fsname?: string;
  /** The type suffix: the mount shows as `fuse.<subtype>` (default `"slayerfs"`). */
  subtype?: string;
  /** `-o allow_other`: let other users in (non-root needs `user_allow_other` in fuse.conf). */
  allowOther?: boolean;
  /** `-o default_permissions`: the kernel checks modes and owners (default true). */
  defaultPermissions?: boolean;
  /** `-o auto_unmount`: fusermount3 unmounts when this process dies. */
  autoUnmount?: boolean;
  /** Seconds the kernel caches attributes (default 1). */
  attrTimeout?: number;
  /** Seconds the kernel caches names (default 1). */
  entryTimeout?: number;
  /** Seconds the kernel caches a failed lookup (default `entryTimeout`; 0 disables). */
  negativeTimeout?: number;
  /** `-o max_read=`: the largest read request in bytes. */
  maxRead?: number;
  /** Ask for the kernel's writeback cache (default false). */
  writebackCache?: boolean;
  /** Send flock(2) to the filesystem instead of keeping it in the kernel (see the adapter). */
  flockLocks?: boolean;
  /** `-o ro`. */
  readOnly?: boolean;
  /** libfuse's request trace on stderr. */
  debug?: boolean;
  /** More `-o` options, passed as is (e.g. `"noatime"`). */
  extraOptions?: string[];
  /** Readahead in KiB written to the mount's bdi after mounting (default 1024; 0 leaves it). */
  readAheadKb?: number;
  /**
   * The request loop: `"mt"` (default; `fuse_session_loop_mt` threads calling thread-safe
   * callbacks) or `"js"` (the JS thread reads the non-blocking /dev/fuse fd, spins, awaits `poll`:
   * fewer thread switches per request, but see the module notes before using it in a process that
   * also calls into its own mount).
   */
  loop?: "js" | "mt";
  /**
   * `"js"` loop: microseconds to keep looking for the next request once the fd is empty, before
   * parking in `poll` (default 500; 0 parks at once). A client's next request usually comes
   * within that time, and parking costs two thread switches per request.
   */
  spinUs?: number;
  /** Milliseconds `unmount` waits for the loop and for running requests (default 5000). */
  unmountTimeoutMs?: number;
  /** Milliseconds after which a request still running is answered `EIO` (see the adapter). */
  deadlineMs?: number;
  /** Called for every answered request (see the adapter's `onOp`). */
  onOp?: OpObserver;
  /**
   * Serve a connection another process opened and initialised (`_takeover.ts`) instead of
   * mounting: its `/dev/fuse` descriptor, what its INIT offered, and whether a dead daemon may
   * have left requests unanswered (they are answered `EIO`). Implies the `"js"` loop.
   */
  takeover?: { fd: number; init: InitInfo; answerLost: boolean };
}

/** Escapes a value for a libfuse `-o` list (commas and backslashes). */
function escapeOpt(value: string): string {
  return value.replace(/[\\,]/g, (c) => "\\" + c);
}

/** The `-o` option list for `options`. */
export function mountOptionList(options: MountOptions): string[] {
  const o = [
    `fsname=${escapeOpt(options.fsname ?? "slayerfs")}`,
    `subtype=${escapeOpt(options.subtype ?? "slayerfs")}`,
  ];
  if (options.allowOther) o.push("allow_other");
  if (options.defaultPermissions ?? true) o.push("default_permissions");
  if (options.autoUnmount) o.push("auto_unmount");
  if (options.readOnly) o.push("ro");
  if (options.maxRead !== undefined) o.push(`max_read=${options.maxRead}`);
  if (options.debug) o.push("debug");
  o.push(...(options.extraOptions ?? []));
  return o;
}
