/**
 * Background deletion of freed slices for a `Vfs`: a request that frees slices (truncate, unlink,
 * overwrite) queues them and returns; batches of up to 1000 are deleted a few milliseconds later,
 * one metadata commit per batch.
 *
 * @module
 */

import type { FreedSlice } from "./meta/mod.ts";

/** What {@linkcode FreeQueue} needs of the block layer. */
export interface SliceDeleter {
  /** Deletes the blocks of `freed` and forgets them in the metadata. */
  deleteSlices(freed: FreedSlice[]): Promise<void>;
}

/** Freed slices waiting for deletion, and the one loop that deletes them. */
export class FreeQueue {
  readonly #data: SliceDeleter;
  readonly #onError: (err: unknown) => void;
  #queue: FreedSlice[] = [];
  #freeing: Promise<void> | undefined;

  /** Deletes through `data`; a failed batch goes to `onError`. */
  constructor(data: SliceDeleter, onError: (err: unknown) => void) {
    this.#data = data;
    this.#onError = onError;
  }

  /** Queues `freed` for deletion in the background. */
  add(freed: FreedSlice[]): void {
    if (freed.length === 0) return;
    this.#queue.push(...freed);
    if (this.#freeing) return;
    this.#freeing = (async () => {
      while (this.#queue.length) {
        await new Promise((r) => setTimeout(r, 5));
        const batch = this.#queue.splice(0, 1000);
        await this.#data.deleteSlices(batch).catch(this.#onError);
      }
    })().finally(() => {
      this.#freeing = undefined;
    });
  }

  /** Resolves once the queue is empty. */
  async idle(): Promise<void> {
    await this.#freeing;
  }
}
