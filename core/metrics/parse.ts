/**
 * Reads the Prometheus text exposition format (version 0.0.4) into samples: what
 * `slayerfs stats` does with a mount's `/metrics`, and what the tests check a scrape with.
 * Comments (`# HELP`, `# TYPE`) and timestamps are skipped.
 *
 * @example
 * ```ts
 * import { parseMetrics, sum } from "./parse.ts";
 *
 * const samples = parseMetrics('a_total{op="read"} 2\na_total{op="write"} 3\n');
 * if (sum(samples, "a_total") !== 5) throw new Error("unexpected");
 * if (sum(samples, "a_total", { op: "read" }) !== 2) throw new Error("unexpected");
 * ```
 *
 * @module
 */

/** One sample: a metric name, its labels and its value. */
export interface MetricSample {
  /** The name, with any `_bucket`, `_sum` or `_count` suffix. */
  name: string;
  /** The labels. */
  labels: Record<string, string>;
  /** The value (`NaN`, `+Inf` and `-Inf` included). */
  value: number;
}

function parseValue(text: string): number {
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (/^nan$/i.test(text)) return NaN;
  const v = Number(text);
  if (text === "" || Number.isNaN(v)) throw new SyntaxError(`Bad sample value "${text}"`);
  return v;
}

/** The samples of exposition `text`; a malformed line is a `SyntaxError` quoting it. */
export function parseMetrics(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    try {
      out.push(parseLine(line));
    } catch (err) {
      throw new SyntaxError(`Bad metrics line "${line}": ${(err as Error).message}`);
    }
  }
  return out;
}

function parseLine(line: string): MetricSample {
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
  if (name === undefined) throw new SyntaxError("no metric name");
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === "{") {
    i++;
    for (;;) {
      while (line[i] === " " || line[i] === ",") i++;
      if (line[i] === "}") {
        i++;
        break;
      }
      const key = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i))?.[0];
      if (key === undefined || line[i + key.length] !== "=" || line[i + key.length + 1] !== '"') {
        throw new SyntaxError("bad label");
      }
      i += key.length + 2;
      let value = "";
      for (;; i++) {
        const c = line[i];
        if (c === undefined) throw new SyntaxError("unterminated label value");
        if (c === '"') break;
        if (c === "\\") {
          const n = line[++i];
          value += n === "n" ? "\n" : n ?? "";
        } else {
          value += c;
        }
      }
      i++;
      labels[key] = value;
    }
  }
  const [value = "", _timestamp] = line.slice(i).trim().split(/\s+/);
  return { name, labels, value: parseValue(value) };
}

/** Whether `sample` has every label of `match`. */
function matches(sample: MetricSample, match: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(match)) if (sample.labels[k] !== v) return false;
  return true;
}

/** The sum of the samples called `name` whose labels include `match`; 0 when there are none. */
export function sum(
  samples: readonly MetricSample[],
  name: string,
  match: Record<string, string> = {},
): number {
  let total = 0;
  for (const s of samples) if (s.name === name && matches(s, match)) total += s.value;
  return total;
}

/** Whether any sample is called `name`. */
export function has(samples: readonly MetricSample[], name: string): boolean {
  return samples.some((s) => s.name === name);
}
