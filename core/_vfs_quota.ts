/**
 * The quota check of `Vfs.write` (`vfs.ts`): a write that makes a file longer fails with `EDQUOT`
 * when a quota above the file has no room for the growth, counting the data not committed yet of
 * this file and of the other files this mount is writing under that quota (each growing write
 * records its file's uncommitted growth until its commits catch up or it is closed). The limits and usage are read from the metadata engine at each such write, so a
 * `slayerfs quota set` reaches running mounts at once; whether the volume has quotas at all is
 * cached for {@linkcode QUOTA_CACHE_MS}, so a volume's first quota takes up to that long to be
 * enforced on writes (creates and commits see it at once: they charge quotas in their transaction).
 *
 * @module
 */

import { Errno, FsError } from "./errno.ts";
import type { Meta } from "./meta/mod.ts";
import type { Ino } from "./types.ts";

/** How long whether the volume has any quota is cached. */
export const QUOTA_CACHE_MS = 1000;

const spaceOf = (size: number) => Math.ceil(size / 4096) * 4096;

/** Checks growing writes against the quotas above the file. */
export class QuotaGate {
  readonly #meta: Meta;
  #any: boolean | undefined;
  #at = 0;
  /** Files written past their committed size, with the quotas above them. */
  readonly #pending = new Map<Ino, { quotas: Ino[]; end: number; committed: number }>();

  /** A gate over the quotas of `meta`. */
  constructor(meta: Meta) {
    this.#meta = meta;
  }

  /**
   * Checks that file `ino`, committed up to `committed` bytes, may grow to `newEnd`: `EDQUOT` if
   * not. `undefined` when there is nothing to check (no quota on the volume, as last seen).
   */
  check(ino: Ino, committed: number, newEnd: number): Promise<void> | undefined {
    const fresh = Date.now() - this.#at < QUOTA_CACHE_MS;
    if (fresh && this.#any === false) return undefined;
    return this.#check(ino, committed, newEnd, fresh);
  }

  async #check(ino: Ino, committed: number, newEnd: number, fresh: boolean): Promise<void> {
    if (!fresh) {
      this.#any = await this.#meta.hasQuotas();
      this.#at = Date.now();
      if (!this.#any) return;
    }
    const need = spaceOf(newEnd) - spaceOf(committed);
    if (need <= 0) return;
    const qs = await this.#meta.quotasOfFile(ino);
    for (const q of qs) {
      if (q.capacity === null) continue;
      let others = 0;
      for (const [other, p] of this.#pending) {
        if (other !== ino && p.quotas.includes(q.ino)) {
          others += Math.max(0, spaceOf(p.end) - spaceOf(p.committed));
        }
      }
      if (q.usedSpace + need + others > q.capacity) {
        throw new FsError(Errno.EDQUOT, "Quota exceeded");
      }
    }
    if (qs.length) this.#pending.set(ino, { quotas: qs.map((q) => q.ino), end: newEnd, committed });
  }

  /** File `ino` has `size` bytes committed: its growth up to there is in the usage now. */
  committed(ino: Ino, size: number): void {
    const p = this.#pending.get(ino);
    if (!p) return;
    p.committed = Math.max(p.committed, size);
    if (spaceOf(p.end) <= spaceOf(p.committed)) this.#pending.delete(ino);
  }

  /** File `ino` was closed (its data committed) or dropped. */
  forget(ino: Ino): void {
    this.#pending.delete(ino);
  }
}
