/**
 * A time bound on a promise, for block fetches (`io_deadline`).
 *
 * @module
 */

/** `promise`, or a rejection with `error()` if it has not settled within `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
