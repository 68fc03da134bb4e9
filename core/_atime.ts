/**
 * Access times on read, like JuiceFS's `--atime-mode` and Linux's mount options:
 *
 * - `noatime` (the default): reads never change atime; it is set at create and by `utimensat`.
 * - `relatime`: the first read through an open file (and the first listing of an opened
 *   directory) sets atime to now when atime is not newer than mtime or ctime, or is a day old.
 *   So a file read many times after a change costs one metadata write, not one per read.
 * - `strictatime`: every read that reaches SlayerFS sets atime (concurrent ones share one write).
 *
 * Only reads the kernel sends to SlayerFS count: pages the kernel still caches from an earlier
 * read of an unchanged file are served without asking it, as on any FUSE filesystem. The kernel
 * drops its cached atime after each read it sends, so `stat` then shows the new value.
 *
 * @module
 */

import type { Meta } from "./meta/mod.ts";
import type { Attr, Ino, Timespec } from "./types.ts";

/** How reads change atime. */
export type AtimeMode = "noatime" | "relatime" | "strictatime";

/** The atime modes, for option parsing. */
export const ATIME_MODES: readonly AtimeMode[] = ["noatime", "relatime", "strictatime"];

const DAY_SEC = 24 * 3600;

/** Whether `a` <= `b`. */
function notAfter(a: Timespec, b: Timespec): boolean {
  return a.sec < b.sec || (a.sec === b.sec && a.nsec <= b.nsec);
}

/** Whether relatime updates `a`'s atime at `now`. */
export function relatimeDue(a: Attr, now: Timespec): boolean {
  return notAfter(a.atime, a.mtime) || notAfter(a.atime, a.ctime) ||
    now.sec - a.atime.sec >= DAY_SEC;
}

/** Sets atimes on reads as the mode says. */
export class AtimeUpdater {
  readonly mode: AtimeMode;
  readonly #meta: Meta;
  /** Updates in flight, by inode: concurrent reads share one. */
  readonly #inflight = new Map<Ino, Promise<void>>();

  constructor(meta: Meta, mode: AtimeMode) {
    this.#meta = meta;
    this.mode = mode;
  }

  /**
   * A read of `ino` (or a listing of it from its start) through handle `h`; `relatime` looks only
   * at a handle's first.
   */
  touched(ino: Ino, h: { accessed?: boolean }): Promise<void> | undefined {
    const first = !h.accessed;
    h.accessed = true;
    if (this.mode === "noatime" || (this.mode === "relatime" && !first)) return undefined;
    const running = this.#inflight.get(ino);
    if (running) return running;
    const p = this.#update(ino).finally(() => this.#inflight.delete(ino));
    this.#inflight.set(ino, p);
    return p;
  }

  async #update(ino: Ino): Promise<void> {
    const t = nowSpec();
    if (this.mode === "relatime" && !relatimeDue(await this.#meta.getattr(ino), t)) return;
    await this.#meta.update(ino, (a) => {
      if (this.mode === "relatime" && !relatimeDue(a, t)) return a;
      return { ...a, atime: t };
    });
  }
}

function nowSpec(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}
