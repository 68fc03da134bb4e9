/**
 * Exponential backoff with jitter, shared by the backends that retry (S3 requests, writeback
 * uploads).
 *
 * Decision: "equal jitter". Attempt `n` (from 1) has a ceiling of `baseMs * 2^(n-1)`, capped at
 * `maxMs`, and waits between half and all of it: never less than half (so a failing server gets
 * breathing room) and never in lockstep with other clients.
 *
 * @module
 */

/** Backoff bounds: the first ceiling and the largest one, in ms. */
export interface Backoff {
  /** The ceiling of the first wait; each later attempt doubles it. */
  baseMs: number;
  /** The largest ceiling. */
  maxMs: number;
}

/**
 * The wait after failed attempt `attempt` (1 for the first): between half and all of
 * `min(maxMs, baseMs * 2^(attempt-1))`.
 *
 * @example
 * ```ts
 * import { backoffDelay } from "./_retry.ts";
 * import { ok } from "node:assert/strict";
 *
 * const ms = backoffDelay(3, { baseMs: 100, maxMs: 5_000 }); // ceiling 400 ms
 * ok(ms >= 200 && ms <= 400);
 * ```
 */
export function backoffDelay(attempt: number, backoff: Backoff): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(attempt - 1, 30));
  return ceiling / 2 + Math.random() * ceiling / 2;
}

/** Options of {@linkcode retry}. */
export interface RetryOptions extends Backoff {
  /** Attempts at most, the first included. */
  maxAttempts: number;
  /** Whether the error an attempt threw is worth another attempt. */
  retryable: (error: unknown) => boolean;
}

/**
 * Calls `op` until it resolves, waiting {@linkcode backoffDelay} between attempts. Rethrows the
 * error of an attempt that is not retryable, or of the last attempt.
 *
 * @example
 * ```ts
 * import { retry } from "./_retry.ts";
 * import { equal } from "node:assert/strict";
 *
 * let calls = 0;
 * const value = await retry(() => ++calls < 3 ? Promise.reject(new Error("busy")) : Promise.resolve(calls), {
 *   maxAttempts: 5,
 *   baseMs: 1,
 *   maxMs: 10,
 *   retryable: () => true,
 * });
 * equal(value, 3);
 * ```
 */
export async function retry<T>(
  op: (attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await op(attempt);
    } catch (err) {
      if (attempt >= options.maxAttempts || !options.retryable(err)) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, backoffDelay(attempt, options)));
  }
}
