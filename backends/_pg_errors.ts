/**
 * What the PostgreSQL engine's errors mean (private to it): which ones a transaction retries, and
 * the one-line messages for a server that cannot be used.
 *
 * Errors come in three kinds: a *conflict* (SQLSTATE 40001 serialization failure, 40P01
 * deadlock), retried at once with a short jittered backoff; an *outage* (the server cannot be
 * reached, is restarting, or dropped the connection: socket errors, postgres.js's
 * `CONNECTION_*`/`CONNECT_TIMEOUT`, SQLSTATE class 08, 57P01-57P03, 53300), retried until the
 * engine's `retry_timeout`; anything else is the caller's error and is thrown as is.
 *
 * @module
 */

import type { PgConfig } from "./_pg_url.ts";

/** How a failed attempt is handled. */
export type PgFailure = "conflict" | "outage" | "other";

const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ENOENT",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "EAI_AGAIN",
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);

/** The SQLSTATE of a server error, or `undefined` for another error. */
export function sqlState(err: unknown): string | undefined {
  if (!(err instanceof Error) || err.name !== "PostgresError") return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Whether `err` is a conflict, an outage or anything else (see the module notes). */
export function classify(err: unknown): PgFailure {
  const state = sqlState(err);
  if (state !== undefined) {
    if (state === "40001" || state === "40P01") return "conflict";
    if (state.startsWith("08") || /^57P0[123]$/.test(state) || state === "53300") return "outage";
    return "other";
  }
  const code = errorCode(err);
  if (code !== undefined && SOCKET_CODES.has(code)) return "outage";
  // Deno's node:net reports a missing socket file or a refused connection this way.
  if (
    err instanceof Error &&
    /ECONNREFUSED|ENOENT|ECONNRESET|EPIPE|os error 111|os error 2\b/.test(err.message)
  ) {
    return "outage";
  }
  return "other";
}

/**
 * The one-line error for a failure to open the engine: the server cannot be reached, refuses
 * the credentials, has no such database, or answered with an error.
 */
export function openError(config: PgConfig, err: unknown): Error {
  const state = sqlState(err);
  const message = err instanceof Error ? err.message : String(err);
  const user = config.user ?? "(default user)";
  if (state === "28P01" || state === "28000") {
    return new Error(
      `PostgreSQL at ${config.where} refused the credentials of user "${user}": ${message}`,
    );
  }
  if (state === "3D000") {
    return new Error(
      `PostgreSQL database "${config.database}" does not exist at ${config.where} ` +
        `(create it first, e.g. createdb ${config.database})`,
    );
  }
  if (state === "42501") {
    return new Error(
      `PostgreSQL user "${user}" may not use database "${config.database}" at ${config.where}: ${message}`,
    );
  }
  if (state !== undefined) return new Error(`PostgreSQL at ${config.where}: ${message}`);
  const code = errorCode(err);
  if (code === "CONNECT_TIMEOUT") {
    return new Error(
      `Cannot connect to PostgreSQL at ${config.where}: no answer in ${config.connectTimeoutS} s`,
    );
  }
  if (classify(err) === "outage") {
    const reason = code === "ENOENT"
      ? "no server socket there"
      : code === "ECONNREFUSED"
      ? "connection refused"
      : message.replace(/^write /, "");
    return new Error(`Cannot connect to PostgreSQL at ${config.where}: ${reason}`);
  }
  if (code === "ENOTFOUND" || /getaddrinfo|failed to lookup/i.test(message)) {
    return new Error(`Cannot connect to PostgreSQL at ${config.where}: unknown host`);
  }
  return new Error(`Cannot use PostgreSQL at ${config.where}: ${message}`);
}
