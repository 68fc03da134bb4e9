/**
 * What the log sink of `log.ts` does to a record on its way out: JSON lines
 * ({@linkcode jsonLogLine}), the masking of credentials ({@linkcode Redactor}), and the size cap of
 * a log file ({@linkcode RotatingFile}).
 *
 * Masking: the password of a URL (`redis://:pw@host` → `redis://:***@host`), query parameters
 * whose name says secret, password, token, signature or credential, and the literal values of
 * environment variables whose name says so (`AWS_SECRET_ACCESS_KEY`, `AWS_ACCESS_KEY_ID`,
 * `PGPASSWORD`, ...) wherever they appear in a line, so that an error quoting a server's answer
 * cannot carry a key into the log either.
 *
 * Rotation: when the file passes its cap, `FILE.1 … FILE.N-1` become `FILE.2 … FILE.N`, the file is
 * copied to `FILE.1` and truncated in place (`copytruncate`): the daemon's standard error, opened
 * in append mode by whoever started it, keeps writing to the same file, now from its start.
 *
 * @module
 */

import type { LogRecord } from "@logtape/logtape";

/** Environment variables whose values are secrets (by name). */
const SECRET_ENV =
  /SECRET|PASSWORD|PASSWD|TOKEN|ACCESS_KEY|CREDENTIAL|API_KEY|PRIVATE_KEY|ENCRYPTION_KEY/i;
/** Query parameters whose values are secrets (by name). */
const SECRET_PARAM =
  /([?&](?:[\w.-]*(?:secret|password|passwd|token|signature|credential|access[_-]?key)[\w.-]*)=)[^&\s"']*/gi;
/** The password of a URL's user info. */
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@"']*:)[^\s@/"']+@/gi;
const MASK = "***";

/** Masks credentials in log lines (see the module notes). */
export class Redactor {
  readonly #values: string[];

  /** Masks these literal values too, besides the environment's secrets. */
  constructor(values: readonly string[] = [], env: Record<string, string> = safeEnv()) {
    const found = new Set(values.filter((v) => v.length >= 4));
    // Not a flag's value (`SOME_TOKEN=true` must not mask every "true").
    for (const [k, v] of Object.entries(env)) {
      if (SECRET_ENV.test(k) && v.length >= 6 && !/^(true|false|\d+)$/i.test(v)) found.add(v);
    }
    // Longest first: a value containing another is masked whole.
    this.#values = [...found].sort((a, b) => b.length - a.length);
  }

  /** `text` with every credential replaced by `***`. */
  redact(text: string): string {
    let out = text.replace(URL_PASSWORD, `$1${MASK}@`).replace(SECRET_PARAM, `$1${MASK}`);
    for (const v of this.#values) if (out.includes(v)) out = out.replaceAll(v, MASK);
    return out;
  }
}

function safeEnv(): Record<string, string> {
  try {
    return Deno.env.toObject();
  } catch {
    return {}; // no --allow-env: nothing known to mask
  }
}

/** A property value as JSON can carry it: errors as their message, bigints as numbers. */
function jsonValue(value: unknown, depth = 0): unknown {
  if (value instanceof Error) {
    // The cause's message, unless the error's message already quotes it.
    const cause = value.cause === undefined ? "" : String(jsonValue(value.cause, depth + 1));
    return cause === "" || value.message.includes(cause)
      ? value.message
      : `${value.message}: ${cause}`;
  }
  if (typeof value === "bigint") {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : String(value);
  }
  if (value instanceof Uint8Array) return `<${value.byteLength} bytes>`;
  if (Array.isArray(value) && depth < 4) return value.map((v) => jsonValue(v, depth + 1));
  if (value !== null && typeof value === "object" && depth < 4) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, jsonValue(v, depth + 1)]),
    );
  }
  if (typeof value === "function" || typeof value === "symbol") return String(value);
  return value;
}

/**
 * One record as a JSON line: `time` (ISO 8601), `level`, `category` (dotted, without the
 * `slayerfs` root), `message` (rendered), then `context` (the volume, the mountpoint), then the
 * record's properties (the inode, the path, the error's message, ...).
 */
export function jsonLogLine(
  record: LogRecord,
  message: string,
  context: Readonly<Record<string, unknown>> = {},
): string {
  const line: Record<string, unknown> = {
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    category: record.category.slice(1).join(".") || record.category.join("."),
    message,
  };
  for (const [k, v] of Object.entries(context)) if (v !== undefined) line[k] = jsonValue(v);
  for (const [k, v] of Object.entries(record.properties)) {
    if (!(k in line) && v !== undefined) line[k] = jsonValue(v);
  }
  try {
    return JSON.stringify(line) + "\n";
  } catch {
    return JSON.stringify({ ...line, properties: "<not serialisable>" }) + "\n";
  }
}

/** A log file with a size cap, rotated by copy and truncate (see the module notes). */
export class RotatingFile {
  /** The file. */
  readonly path: string;
  readonly #maxBytes: number;
  readonly #keep: number;
  /** Bytes in the file as far as we know (others may append too: checked before rotating). */
  #size: number;

  /** Caps `path` at `maxBytes` (0: never rotate), keeping `keep` rotated files. */
  constructor(path: string, maxBytes: number, keep: number) {
    this.path = path;
    this.#maxBytes = maxBytes;
    this.#keep = Math.max(0, Math.floor(keep));
    this.#size = statSize(path);
  }

  /** Counts `bytes` just appended to the file; rotates it when it passed the cap. */
  wrote(bytes: number): void {
    this.#size += bytes;
    if (this.#maxBytes <= 0 || this.#size < this.#maxBytes) return;
    this.#size = statSize(this.path);
    if (this.#size >= this.#maxBytes) this.rotate();
  }

  /** Shifts the rotated files, copies the file to `FILE.1` and truncates it. */
  rotate(): void {
    try {
      if (this.#keep > 0) {
        for (let i = this.#keep - 1; i >= 1; i--) {
          try {
            Deno.renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
          } catch { /* not there yet */ }
        }
        Deno.copyFileSync(this.path, `${this.path}.1`);
        Deno.chmodSync(`${this.path}.1`, 0o600);
      }
      Deno.truncateSync(this.path, 0);
      this.#size = 0;
    } catch {
      // A log that cannot rotate must not stop the daemon: try again after the next cap.
      this.#size = 0;
    }
  }
}

function statSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * The regular file this process's standard error appends to (as a background mount's log is
 * opened), if it is one: the file to rotate. A terminal, a pipe, or a file opened without
 * `O_APPEND` (which truncating in place would leave sparse) gives `undefined`.
 */
export function stderrLogFile(): string | undefined {
  try {
    const path = Deno.readLinkSync("/proc/self/fd/2");
    if (!path.startsWith("/") || path.endsWith(" (deleted)")) return undefined;
    if (!Deno.statSync(path).isFile) return undefined;
    const flags = /^flags:\s*([0-7]+)/m.exec(Deno.readTextFileSync("/proc/self/fdinfo/2"))?.[1];
    const O_APPEND = 0o2000;
    return flags !== undefined && (parseInt(flags, 8) & O_APPEND) !== 0 ? path : undefined;
  } catch {
    return undefined;
  }
}
