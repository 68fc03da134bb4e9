/**
 * The extended attributes a `Vfs` knows to be missing, for {@linkcode XATTR_MISS_TTL_MS}: the
 * kernel asks for `security.capability` before every write to a file, and nearly always gets
 * ENODATA, so remembering the miss saves a metadata read per write.
 *
 * @module
 */

import type { Ino, Name } from "./types.ts";

/** How long a missing xattr is remembered (ms), as long as the kernel's default attr timeout. */
export const XATTR_MISS_TTL_MS = 1000;

/** Entries kept per map before it is cleared (a bound, not an LRU: misses are cheap to relearn). */
const MAX_ENTRIES = 65536;

/** Inodes known to have no xattrs, and xattr names known to be missing, each until a time. */
export class XattrMisses {
  readonly #noXattrs = new Map<Ino, number>();
  readonly #missing = new Map<string, number>();

  /** Notes that `ino` was just created here, so has no xattrs. */
  created(ino: Ino): void {
    if (this.#noXattrs.size >= MAX_ENTRIES) this.#noXattrs.clear();
    this.#noXattrs.set(ino, performance.now() + XATTR_MISS_TTL_MS);
  }

  /** Whether `name` of `ino` is known to be missing. */
  has(ino: Ino, name: Name): boolean {
    const now = performance.now();
    return (this.#noXattrs.get(ino) ?? 0) > now ||
      (this.#missing.get(`${ino}/${name}`) ?? 0) > now;
  }

  /** Remembers that `name` of `ino` is missing. */
  add(ino: Ino, name: Name): void {
    if (this.#missing.size >= MAX_ENTRIES) this.#missing.clear();
    this.#missing.set(`${ino}/${name}`, performance.now() + XATTR_MISS_TTL_MS);
  }

  /** Forgets what is known missing of `ino` (another mount changed it). */
  forgetIno(ino: Ino): void {
    this.#noXattrs.delete(ino);
    const prefix = `${ino}/`;
    for (const key of this.#missing.keys()) if (key.startsWith(prefix)) this.#missing.delete(key);
  }

  /** Forgets what is known missing of `ino`'s `name` (it is being set). */
  forget(ino: Ino, name: Name): void {
    this.#noXattrs.delete(ino);
    this.#missing.delete(`${ino}/${name}`);
  }
}
