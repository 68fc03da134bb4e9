/**
 * Parsing `postgres://` and `postgresql://` metadata URLs (private to the PostgreSQL engine).
 *
 * Forms, as libpq reads them:
 * - `postgres://USER:PASS@HOST:PORT/DB` over TCP (port 5432 by default);
 * - `postgres://USER@localhost/DB?host=/run/postgresql&port=5433` through the unix socket
 *   `/run/postgresql/.s.PGSQL.5433`: a `host` parameter that is an absolute path names the
 *   socket's directory and wins over the URL's host (URLs cannot have a user and an empty host,
 *   so write `localhost` there), and `port` names the socket file.
 *
 * Parameters (any other is an error): `host`, `port`, `user` (like libpq's), `schema` (the
 * PostgreSQL schema that holds the volume, created by format: several volumes can share one
 * database; default the connection's current schema, normally `public`), `sslmode`
 * (`disable`, the default, `prefer`, `require` or `verify-full`), `connect_timeout` (seconds to
 * connect, default 10), `pool` (connections at most, default 10) and `retry_timeout` (seconds a
 * transaction keeps retrying while the server is unreachable, default 60). A password missing
 * from the URL comes from `PGPASSWORD`, as with libpq; a missing user from `PGUSER` or the
 * login name.
 *
 * @module
 */

/** The connection settings of a PostgreSQL metadata URL. */
export interface PgConfig {
  /** The URL with its password masked, for messages. */
  readonly display: string;
  /** The host name, or the socket directory when {@linkcode PgConfig.socketPath} is set. */
  readonly host: string;
  /** The TCP port, or the number in the socket file's name. */
  readonly port: number;
  /** The unix socket file (`DIR/.s.PGSQL.PORT`), when the host is a directory. */
  readonly socketPath: string | undefined;
  /** The database name. */
  readonly database: string;
  /** The schema that holds the volume's tables (created by format), or the current one. */
  readonly schema: string | undefined;
  /** The role, when given. */
  readonly user: string | undefined;
  /** The password, when given. */
  readonly password: string | undefined;
  /** TLS: `false` (disable) or postgres.js's mode name. */
  readonly ssl: false | "prefer" | "require" | "verify-full";
  /** Connections at most. */
  readonly pool: number;
  /** Seconds to wait for a connection. */
  readonly connectTimeoutS: number;
  /** Seconds a transaction keeps retrying while the server cannot be reached. */
  readonly retryTimeoutS: number;
  /** Where the server is, for messages: `HOST:PORT` or the socket file. */
  readonly where: string;
}

const PARAMS = [
  "host",
  "port",
  "user",
  "schema",
  "sslmode",
  "connect_timeout",
  "pool",
  "retry_timeout",
];
const SSL_MODES = ["disable", "prefer", "require", "verify-full"] as const;

function positive(url: string, name: string, raw: string | null, fallback: number): number {
  if (raw === null) return fallback;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new TypeError(`Invalid ${name} "${raw}" in "${url}": expected a number > 0`);
  }
  return n;
}

/** The URL with its password replaced by `***`. */
export function maskPassword(href: string): string {
  return href.replace(/^([a-z]+:\/\/[^:/@?#]*):[^@/?#]*@/i, "$1:***@");
}

/**
 * Parses a PostgreSQL metadata URL. Throws a `TypeError` with a one-line message for a malformed
 * one or an unknown parameter.
 *
 * @example
 * ```ts
 * import { parsePgUrl } from "./_pg_url.ts";
 * import { equal } from "node:assert/strict";
 *
 * const c = parsePgUrl("postgres://me@localhost/vols?host=/run/postgresql&port=5433");
 * equal(c.socketPath, "/run/postgresql/.s.PGSQL.5433");
 * equal(c.database, "vols");
 * ```
 */
export function parsePgUrl(href: string): PgConfig {
  const display = maskPassword(href);
  let url: URL;
  try {
    url = new URL(href);
  } catch {
    throw new TypeError(
      `Invalid PostgreSQL URL "${display}": expected postgres://USER:PASS@HOST:PORT/DB`,
    );
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new TypeError(`A PostgreSQL URL starts with postgres:// or postgresql://: "${display}"`);
  }
  for (const key of url.searchParams.keys()) {
    if (!PARAMS.includes(key)) {
      throw new TypeError(
        `Unknown parameter "${key}" in "${display}": expected one of ${PARAMS.join(", ")}`,
      );
    }
  }
  const q = url.searchParams;
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  if (database === "" || database.includes("/")) {
    throw new TypeError(
      `The PostgreSQL URL "${display}" names no database: expected postgres://USER:PASS@HOST:PORT/DB`,
    );
  }
  const rawPort = q.get("port") ?? (url.port === "" ? null : url.port);
  const port = rawPort === null ? 5432 : Number(rawPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`Invalid port "${rawPort}" in "${display}": expected 1 to 65535`);
  }
  const host = q.get("host") ?? decodeURIComponent(url.hostname.replace(/^\[|\]$/g, ""));
  if (host === "") {
    throw new TypeError(
      `The PostgreSQL URL "${display}" names no host: give one, or a socket directory as ?host=/DIR`,
    );
  }
  const socketPath = host.startsWith("/")
    ? `${host.replace(/\/+$/, "")}/.s.PGSQL.${port}`
    : undefined;
  if (socketPath === undefined && /[/?#]/.test(host)) {
    throw new TypeError(`Invalid host "${host}" in "${display}": expected a name or /DIR`);
  }
  const sslmode = q.get("sslmode") ?? "disable";
  if (!(SSL_MODES as readonly string[]).includes(sslmode)) {
    throw new TypeError(
      `Invalid sslmode "${sslmode}" in "${display}": expected one of ${SSL_MODES.join(", ")}`,
    );
  }
  const pool = positive(display, "pool", q.get("pool"), 10);
  if (!Number.isInteger(pool) || pool > 1000) {
    throw new TypeError(`Invalid pool "${q.get("pool")}" in "${display}": expected 1 to 1000`);
  }
  const schema = q.get("schema") ?? undefined;
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new TypeError(
      `Invalid schema "${schema}" in "${display}": expected lower-case letters, digits and _`,
    );
  }
  const user = q.get("user") ??
    (url.username === "" ? undefined : decodeURIComponent(url.username));
  return {
    display,
    host,
    port,
    socketPath,
    database,
    schema,
    user,
    password: url.password === "" ? undefined : decodeURIComponent(url.password),
    ssl: sslmode === "disable" ? false : sslmode as "prefer" | "require" | "verify-full",
    pool,
    connectTimeoutS: positive(display, "connect_timeout", q.get("connect_timeout"), 10),
    retryTimeoutS: positive(display, "retry_timeout", q.get("retry_timeout"), 60),
    where: socketPath ?? `${host.includes(":") ? `[${host}]` : host}:${port}`,
  };
}
