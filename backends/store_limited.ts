/**
 * `LimitedBlockStore`: a block store decorator that holds the object-store traffic of a mount to
 * `--upload-limit` and `--download-limit` (token buckets of `core/_bandwidth.ts`). A `put` takes
 * its bytes from the upload bucket before it starts; a `get` takes the bytes it received from the
 * download bucket before it returns (its size is not known before), so the next one waits. `head`,
 * `list` and `delete` move little and are not limited. Under `--writeback` it sits below the
 * staging, so only uploads to the store wait; reads of staged blocks never reach it.
 *
 * @module
 */

import type { BlockStore, ListPage, ObjectInfo, StoreLimits } from "../core/block_store.ts";
import { TokenBucket } from "../core/_bandwidth.ts";

/** What a {@linkcode LimitedBlockStore} limits. */
export interface BandwidthLimits {
  /** Upload bytes per second (none: unlimited). */
  uploadBytesPerSec?: number;
  /** Download bytes per second (none: unlimited). */
  downloadBytesPerSec?: number;
}

/** Counters of a {@linkcode LimitedBlockStore}, for `slayerfs status`. */
export interface BandwidthStats {
  /** The upload limit and burst (bytes per second, bytes), if any. */
  upload?: { bytesPerSec: number; burst: number };
  /** The download limit and burst, if any. */
  download?: { bytesPerSec: number; burst: number };
  /** Bytes put and got since the mount. */
  uploadedBytes: number;
  downloadedBytes: number;
}

/** A block store whose traffic is held to limits; see the module documentation. */
export class LimitedBlockStore implements BlockStore {
  readonly #inner: BlockStore;
  readonly #up: TokenBucket | undefined;
  readonly #down: TokenBucket | undefined;
  readonly #closing = new AbortController();
  #uploaded = 0;
  #downloaded = 0;

  /** Limits the traffic of `inner` (which it owns: `close` closes it). */
  constructor(inner: BlockStore, limits: BandwidthLimits) {
    this.#inner = inner;
    if (limits.uploadBytesPerSec) this.#up = new TokenBucket(limits.uploadBytesPerSec);
    if (limits.downloadBytesPerSec) this.#down = new TokenBucket(limits.downloadBytesPerSec);
  }

  /** The inner store's URL. */
  get url(): string {
    return this.#inner.url;
  }

  /** The inner store's limits. */
  get limits(): StoreLimits {
    return this.#inner.limits;
  }

  /** The limits and the bytes moved so far. */
  stats(): BandwidthStats {
    const b = (t: TokenBucket | undefined) => t && { bytesPerSec: t.rate, burst: t.burst };
    const up = b(this.#up);
    const down = b(this.#down);
    return {
      ...(up ? { upload: up } : {}),
      ...(down ? { download: down } : {}),
      uploadedBytes: this.#uploaded,
      downloadedBytes: this.#downloaded,
    };
  }

  /** Waits for upload tokens, then puts. */
  async put(key: string, data: Uint8Array): Promise<void> {
    await this.#up?.take(data.byteLength, this.#closing.signal);
    await this.#inner.put(key, data);
    this.#uploaded += data.byteLength;
  }

  /** Gets, then waits for download tokens for what came. */
  async get(
    key: string,
    offset?: number,
    length?: number,
    into?: Uint8Array,
  ): Promise<Uint8Array> {
    const data = await this.#inner.get(key, offset, length, into);
    await this.chargeDownload(data.byteLength);
    return data;
  }

  /**
   * Counts `bytes` downloaded outside this store and waits for their tokens, as a `get` of them
   * would: the ranged reads of imported objects (`core/import/external.ts`) are object-store
   * traffic of the mount too.
   */
  async chargeDownload(bytes: number): Promise<void> {
    this.#downloaded += bytes;
    await this.#down?.take(bytes, this.#closing.signal);
  }

  /** Not limited. */
  head(key: string): Promise<ObjectInfo | undefined> {
    return this.#inner.head(key);
  }

  /** Not limited. */
  delete(keys: readonly string[]): Promise<void> {
    return this.#inner.delete(keys);
  }

  /** Not limited. */
  list(prefix: string, options?: { startAfter?: string; limit?: number }): Promise<ListPage> {
    return this.#inner.list(prefix, options);
  }

  /** Stops every wait (they reject) and closes the inner store. */
  async close(): Promise<void> {
    this.#closing.abort(new Error("The store is closed"));
    await this.#inner.close();
  }
}
