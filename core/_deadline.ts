/**
 * A time bound on a promise, for block fetches (`io_deadline`).
 *
 * A random read makes one fetch per request, each bounded: a timer per fetch (created, then
 * cleared) and a `Promise.race` cost a few percent of such a read. The bounds of one duration
 * expire in the order they were set, so they wait in one queue per duration, with one timer for
 * its oldest bound; a settled fetch only marks its entry.
 *
 * @module
 */

interface Bound {
  /** When it expires (`performance.now()` time). */
  at: number;
  /** Rejects the bounded promise; undefined once settled. */
  expire: (() => void) | undefined;
}

/** The bounds of one duration, oldest first, and the timer of the oldest. */
interface Queue {
  items: Bound[];
  head: number;
  /** Bounds not settled yet. */
  pending: number;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const queues = new Map<number, Queue>();

/** `promise`, or a rejection with `error()` if it has not settled within `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let q = queues.get(ms);
  if (q === undefined) queues.set(ms, q = { items: [], head: 0, pending: 0, timer: undefined });
  const queue = q;
  return new Promise<T>((resolve, reject) => {
    const bound: Bound = { at: performance.now() + ms, expire: () => reject(error()) };
    queue.items.push(bound);
    queue.pending++;
    if (queue.timer === undefined) arm(queue, ms);
    promise.then(
      (v) => {
        settled(queue, bound);
        resolve(v);
      },
      (err) => {
        settled(queue, bound);
        reject(err);
      },
    );
  });
}

/**
 * Marks `b` settled: the queue drops the settled bounds at its head. Its timer stays (it finds
 * nothing to do when it fires, and stops): one fetch at a time would otherwise set and clear one
 * timer per fetch again.
 */
function settled(q: Queue, b: Bound): void {
  if (b.expire === undefined) return; // expired already
  b.expire = undefined;
  if (--q.pending === 0) {
    q.items = [];
    q.head = 0;
    return;
  }
  while (q.head < q.items.length && q.items[q.head]!.expire === undefined) q.head++;
  if (q.head > 1024 && q.head * 2 > q.items.length) {
    q.items = q.items.slice(q.head);
    q.head = 0;
  }
}

/** Sets the queue's timer for its oldest pending bound (none if it has none left). */
function arm(q: Queue, ms: number): void {
  while (q.head < q.items.length && q.items[q.head]!.expire === undefined) q.head++;
  if (q.head === q.items.length) {
    q.items = [];
    q.head = 0;
    q.timer = undefined;
    return;
  }
  const wait = Math.max(0, q.items[q.head]!.at - performance.now());
  q.timer = setTimeout(() => fire(q, ms), wait);
  // The fetch it bounds keeps the process alive, if anything does; the timer need not.
  Deno.unrefTimer(q.timer);
}

/** Expires the queue's bounds that are due, then sets the timer again. */
function fire(q: Queue, ms: number): void {
  const now = performance.now();
  while (q.head < q.items.length && q.items[q.head]!.at <= now) {
    const b = q.items[q.head++]!;
    const expire = b.expire;
    if (expire === undefined) continue;
    b.expire = undefined;
    q.pending--;
    expire();
  }
  arm(q, ms);
}
