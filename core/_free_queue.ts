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

  /**
   * Queues `freed` for deletion in the background. A slice that left nothing in the store (its
   * blocks were all inline, no blob went with it) has no garbage entry either
   * (`core/meta/slices.ts`): there is nothing to delete, so it is dropped here, and an unlink of
   * a small file costs no later transaction.
   */
  add(freed: FreedSlice[]): void {
    freed = freed.filter((f) => f.size > 0 || (f.blobs?.length ?? 0) > 0);
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
