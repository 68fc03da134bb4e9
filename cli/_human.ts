/**
 * How the commands print for people: byte counts with binary units, rates as percentages, ages,
 * and a progress bar on stderr that redraws itself on a terminal (`warmup`, `info` of a tree).
 *
 * @module
 */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** `bytes` with a binary unit: `512 B`, `1.5 KiB`, `12.0 MiB`. */
export function humanBytes(bytes: number): string {
  let n = bytes;
  let u = 0;
  while (Math.abs(n) >= 1024 && u < UNITS.length - 1) {
    n /= 1024;
    u++;
  }
  return u === 0 ? `${Math.round(n)} B` : `${n.toFixed(1)} ${UNITS[u]}`;
}

/** A ratio (0..1) as a percentage with one decimal: `92.3%`. */
export function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

/** A duration in ms, coarsely: `3 s`, `5 min`, `2 h`, `4 days`. */
export function humanAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

/** Lines of `cells` with each column padded to its widest cell (the last left unpadded). */
export function table(rows: string[][], indent = "  "): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => widths[i] = Math.max(widths[i] ?? 0, c.length));
  return rows.map((r) =>
    indent + r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i]!)).join("  ")
  );
}

/**
 * A progress bar on stderr: redrawn in place every 200 ms on a terminal, printed once at the end
 * otherwise; nothing at all when `quiet`. `line` gives the text after the bar.
 */
export class Progress {
  #timer: ReturnType<typeof setInterval> | undefined;
  #tty: boolean;
  #quiet: boolean;
  #line: () => { fraction: number; text: string };
  #enc = new TextEncoder();
  #started = Date.now();
  #afterMs: number;
  #drawn = false;

  /**
   * Starts drawing (on a terminal) the bar that `line` describes. `afterMs`: show nothing for
   * work that ends sooner (default 0).
   */
  constructor(
    line: () => { fraction: number; text: string },
    opts: { quiet?: boolean; afterMs?: number } = {},
  ) {
    this.#line = line;
    this.#quiet = opts.quiet === true;
    this.#afterMs = opts.afterMs ?? 0;
    this.#tty = !this.#quiet && Deno.stderr.isTerminal();
    if (this.#tty) {
      this.#timer = setInterval(() => {
        if (Date.now() - this.#started >= this.#afterMs) this.#draw(false);
      }, 200);
    }
  }

  #draw(final: boolean): void {
    const { fraction, text } = this.#line();
    const f = Math.min(1, Math.max(0, fraction));
    const bar = "#".repeat(Math.round(f * 30)).padEnd(30, " ");
    const line = `[${bar}] ${(f * 100).toFixed(0).padStart(3)}% ${text}`;
    this.#drawn = true;
    if (this.#tty) Deno.stderr.writeSync(this.#enc.encode(`\r${line}${final ? "\n" : ""}`));
    else if (final) console.error(line);
  }

  /** Stops redrawing and prints the final state (unless quiet, or done before `afterMs`). */
  done(): void {
    clearInterval(this.#timer);
    if (this.#quiet || (!this.#drawn && Date.now() - this.#started < this.#afterMs)) return;
    this.#draw(true);
  }
}
