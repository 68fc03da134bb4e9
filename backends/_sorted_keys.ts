/**
 * An ordered set of strings as a list of sorted chunks (a flat, one-level B+tree).
 *
 * Decisions: chunks hold at most {@linkcode CHUNK_MAX} keys, so an insert or delete moves at
 * most that many pointers plus, on a split or merge, one pointer per chunk; lookups are two
 * binary searches. With a million keys that is ~2,000 chunks — cheap to search and to splice.
 *
 * @module
 */

const CHUNK_MAX = 512;

/** The index of the first element of `keys` that is `>= key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** An ordered set of strings supporting ordered iteration from any key. */
export class SortedKeys {
  #chunks: string[][] = [];
  #size = 0;

  /** How many keys the set holds. */
  get size(): number {
    return this.#size;
  }

  /** The chunk that holds `key` or would hold it. */
  #chunkFor(key: string): number {
    const chunks = this.#chunks;
    // The last chunk whose first key is <= key (or 0).
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (chunks[mid]![0]! <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : lo - 1;
  }

  /** Adds `key`; returns whether it was absent. */
  add(key: string): boolean {
    if (this.#chunks.length === 0) {
      this.#chunks.push([key]);
      this.#size = 1;
      return true;
    }
    const c = this.#chunkFor(key);
    const chunk = this.#chunks[c]!;
    const at = lowerBound(chunk, key);
    if (chunk[at] === key) return false;
    if (at === chunk.length) chunk.push(key);
    else chunk.splice(at, 0, key);
    this.#size++;
    if (chunk.length > CHUNK_MAX) {
      this.#chunks.splice(c + 1, 0, chunk.splice(chunk.length >>> 1));
    }
    return true;
  }

  /** Removes `key`; returns whether it was present. */
  delete(key: string): boolean {
    if (this.#chunks.length === 0) return false;
    const c = this.#chunkFor(key);
    const chunk = this.#chunks[c]!;
    const at = lowerBound(chunk, key);
    if (chunk[at] !== key) return false;
    chunk.splice(at, 1);
    this.#size--;
    if (chunk.length === 0) {
      this.#chunks.splice(c, 1);
    } else if (chunk.length < CHUNK_MAX / 8 && c + 1 < this.#chunks.length) {
      const next = this.#chunks[c + 1]!;
      if (chunk.length + next.length <= CHUNK_MAX) {
        for (const k of next) chunk.push(k);
        this.#chunks.splice(c + 1, 1);
      }
    }
    return true;
  }

  /** Yields the keys `>= from`, ascending. The set must not change while iterating. */
  *from(from: string): Generator<string> {
    const chunks = this.#chunks;
    if (chunks.length === 0) return;
    let c = this.#chunkFor(from);
    let at = lowerBound(chunks[c]!, from);
    for (; c < chunks.length; c++, at = 0) {
      const chunk = chunks[c]!;
      for (; at < chunk.length; at++) yield chunk[at]!;
    }
  }

  /** Removes every key. */
  clear(): void {
    this.#chunks = [];
    this.#size = 0;
  }
}
