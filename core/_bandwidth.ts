/**
 * Bandwidth limits of a mount's object-store traffic (`--upload-limit`, `--download-limit`,
 * `--upload-window`): a token bucket per direction and a daily upload window.
 *
 * The bucket fills at the limit's rate up to its **burst**: half a second of traffic at the limit,
 * but at least 64 KiB (at 100 Mbit/s, 6.25 MB). A request takes as many tokens as it moves
 * bytes, which may leave the bucket in debt, and waits until that debt is paid off at the limit's
 * rate (an upload waits before it starts, a download before it returns). Requests are served in
 * order, so a large one is not starved by small ones. A transfer of `B` bytes therefore takes at
 * least `(B - burst) / limit`: after an idle moment it gains at most one burst.
 *
 * @module
 */

/** Bytes per second of `mbit` megabits per second (1 Mbit = 10^6 bits, as network links count). */
export function mbitToBytes(mbit: number): number {
  return mbit * 1e6 / 8;
}

/**
 * The burst of a bucket at `bytesPerSec`: 500 ms of traffic, at least 64 KiB. It is also how much
 * of a request's own transfer time the bucket credits (a GET that takes longer loses the rest).
 */
export function burstOf(bytesPerSec: number): number {
  return Math.max(64 * 1024, bytesPerSec * 0.5);
}

/** Sleeps `ms`, without keeping the process alive; rejects at once when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", abort);
    };
    const abort = () => {
      done();
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    Deno.unrefTimer(timer);
    signal?.addEventListener("abort", abort, { once: true });
  });
}

/** A token bucket of bytes; see the module documentation. */
export class TokenBucket {
  /** The rate, in bytes per second. */
  readonly rate: number;
  /** The most tokens the bucket holds. */
  readonly burst: number;
  #tokens: number;
  #last = performance.now();
  #tail: Promise<void> = Promise.resolve();
  /** Bytes taken so far. */
  taken = 0;

  /** A full bucket filling at `bytesPerSec`, holding at most `burst` bytes. */
  constructor(bytesPerSec: number, burst = burstOf(bytesPerSec)) {
    if (!(bytesPerSec > 0)) throw new RangeError(`Invalid rate ${bytesPerSec} bytes/s`);
    this.rate = bytesPerSec;
    this.burst = burst;
    this.#tokens = burst;
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + (now - this.#last) / 1000 * this.rate);
    this.#last = now;
  }

  /**
   * Takes `bytes` tokens (in turn) and waits until they are paid for: the bucket may go into
   * debt, and a request waits until the debt it leaves is paid off. Rejects when `signal` aborts.
   */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const turn = this.#tail.then(async () => {
      this.#refill();
      this.#tokens -= bytes;
      this.taken += bytes;
      if (this.#tokens < 0) await sleep(-this.#tokens / this.rate * 1000, signal);
    });
    this.#tail = turn.catch(() => {});
    return turn;
  }
}

/** A daily window, in local time, `HH:MM-HH:MM` (it may wrap past midnight: `22:00-06:00`). */
export class TimeWindow {
  /** As given. */
  readonly text: string;
  readonly #from: number;
  readonly #to: number;

  /** Parses `text`; throws a `RangeError` saying what is wrong. */
  constructor(text: string) {
    const m = /^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$/.exec(text.trim());
    const minutes = (h: string, mm: string) => {
      const v = Number(h) * 60 + Number(mm);
      if (Number(h) > 24 || Number(mm) > 59 || v > 24 * 60) {
        throw new RangeError(`Invalid time "${h}:${mm}"`);
      }
      return v;
    };
    if (!m) throw new RangeError(`Invalid window "${text}": expected HH:MM-HH:MM`);
    this.text = text.trim();
    this.#from = minutes(m[1]!, m[2]!);
    this.#to = minutes(m[3]!, m[4]!);
    if (this.#from === this.#to) throw new RangeError(`Empty window "${text}"`);
  }

  /** Whether `at` (default now) is inside the window. */
  contains(at: Date = new Date()): boolean {
    const t = at.getHours() * 60 + at.getMinutes();
    return this.#from < this.#to
      ? t >= this.#from && t < this.#to
      : t >= this.#from || t < this.#to;
  }

  /** Resolves once inside the window (checking every second), or when `stop()` says so. */
  async wait(stop: () => boolean = () => false): Promise<void> {
    while (!this.contains() && !stop()) await sleep(1000);
  }
}
