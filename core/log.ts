/**
 * Logging for every SlayerFS module, through LogTape (`@logtape/logtape`, the closest npm
 * equivalent of `@std/log`, which JSR would give us).
 *
 * Each module takes its own logger with {@linkcode getLog}, under the `slayerfs` category
 * (`getLog("cache")` logs as `["slayerfs", "cache"]`), and passes structured properties rather than
 * formatted strings. As a library SlayerFS configures nothing: an embedding program sees the logs
 * only if it configures LogTape itself. The daemon and the CLI call {@linkcode configureLogging},
 * which writes one line per record to standard error (the daemon's log file): text by default, or
 * a JSON object per line (`format: "json"`) carrying the context (volume, mountpoint) and the
 * record's properties (inode, path, error). Credentials are masked in either (`_log_output.ts`),
 * and a log file can be capped in size (`rotate`).
 *
 * Levels are chosen for the reader: `error` for what failed a call or lost a write, `warning` for
 * something an operator must act on, `info` for lifecycle events (mounted, unmounted), `debug` for
 * the rest. A retry that succeeded is not a warning.
 *
 * @example
 * ```ts
 * import { getLog } from "./log.ts";
 *
 * const log = getLog("example");
 * log.info("Mounted {mountpoint}", { mountpoint: "/mnt/x" });
 * ```
 *
 * @module
 */

import {
  configureSync,
  getLogger,
  type Logger,
  type LogLevel,
  type LogRecord,
  resetSync,
} from "@logtape/logtape";
import { jsonLogLine, Redactor, RotatingFile } from "./_log_output.ts";

export type { Logger, LogLevel };
export { stderrLogFile } from "./_log_output.ts";

/** The root category: every SlayerFS logger is below it. */
export const LOG_ROOT = "slayerfs";

/**
 * The logger of one module, category `["slayerfs", ...category]`.
 *
 * @example
 * ```ts
 * import { getLog } from "./log.ts";
 * const log = getLog("meta", "sqlite");
 * log.debug("opened");
 * ```
 */
export function getLog(...category: string[]): Logger {
  return getLogger([LOG_ROOT, ...category]);
}

/** Options of {@linkcode configureLogging}. */
export interface LoggingOptions {
  /** The lowest level written; `"info"` by default (`"debug"` with `-o debug`). */
  level?: LogLevel;
  /** Where each formatted line goes; standard error by default. */
  write?: (line: string) => void;
  /** Text lines (the default) or JSON lines. */
  format?: "text" | "json";
  /**
   * Properties every JSON record carries (the volume, the mountpoint). Read at each record, so
   * the caller may fill it in later.
   */
  context?: Readonly<Record<string, unknown>>;
  /**
   * The file the lines end up in, rotated at `maxBytes` (0: never) keeping `keep` old files
   * (`FILE.1` newest). `write` must append to it (standard error redirected with `>>`).
   */
  rotate?: { path: string; maxBytes: number; keep: number };
  /** More literal values to mask, besides those the environment names secret. */
  secrets?: readonly string[];
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  const bytes = encoder.encode(line);
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}

/**
 * Formats one record as the daemon's log line: `slayerfs: [LEVEL] category: message`, with
 * `[LEVEL]` left out for `info` so that lifecycle lines read as plain sentences, and an error
 * property's stack appended for `debug`.
 *
 * @example
 * ```ts
 * import { formatLogRecord } from "./log.ts";
 * import { equal } from "node:assert/strict";
 *
 * const line = formatLogRecord({
 *   category: ["slayerfs", "cache"],
 *   level: "warning",
 *   message: ["disk full"],
 *   rawMessage: "disk full",
 *   timestamp: 0,
 *   properties: {},
 * });
 * equal(line, "slayerfs: [warning] cache: disk full\n");
 * ```
 */
export function formatLogRecord(record: LogRecord): string {
  const message = renderMessage(record);
  const where = record.category.slice(1).join(".");
  const level = record.level === "info" ? "" : `[${record.level}] `;
  return `${LOG_ROOT}: ${level}${where ? `${where}: ` : ""}${message}\n`;
}

/** The record's message with its placeholders filled in. */
function renderMessage(record: LogRecord): string {
  let message = "";
  for (const [i, part] of record.message.entries()) {
    message += i % 2 === 0 ? String(part) : renderValue(part);
  }
  return message;
}

function renderValue(value: unknown): string {
  if (value instanceof Error) return value.message;
  if (typeof value === "string") return value;
  try {
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  } catch {
    return String(value);
  }
}

/**
 * Sends every SlayerFS logger at `level` and above to standard error (or `write`), one line per
 * record. Calling it again replaces the previous configuration.
 *
 * @example
 * ```ts
 * import { configureLogging, getLog, resetLogging } from "./log.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * const lines: string[] = [];
 * configureLogging({ level: "warning", write: (l) => lines.push(l) });
 * getLog("demo").info("not written");
 * getLog("demo").warn("Low on {what}", { what: "space" });
 * resetLogging();
 * deepEqual(lines, ["slayerfs: [warning] demo: Low on space\n"]);
 * ```
 */
export function configureLogging(options: LoggingOptions = {}): void {
  const write = options.write ?? writeStderr;
  const redactor = new Redactor(options.secrets);
  const json = options.format === "json";
  const context = options.context ?? {};
  const rotate = options.rotate === undefined
    ? undefined
    : new RotatingFile(options.rotate.path, options.rotate.maxBytes, options.rotate.keep);
  const sink = (record: LogRecord) => {
    const line = redactor.redact(
      json ? jsonLogLine(record, renderMessage(record), context) : formatLogRecord(record),
    );
    write(line);
    rotate?.wrote(encoder.encode(line).byteLength);
  };
  configureSync({
    reset: true,
    sinks: { line: sink },
    loggers: [
      { category: [LOG_ROOT], lowestLevel: options.level ?? "info", sinks: ["line"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["line"] },
    ],
  });
}

/** Drops the configuration {@linkcode configureLogging} made (tests, embedding). */
export function resetLogging(): void {
  resetSync();
}
