/**
 * Parsing `redis://`, `rediss://` and `redis+unix://` metadata URLs (private to the Redis engine).
 *
 * Forms:
 * - `redis://[USER:PASS@]HOST[:PORT][/DB][?prefix=NAME]`: TCP (port 6379 by default, db 0);
 * - `rediss://...[?ca=/ABS/ca.pem]`: the same over TLS (the server's certificate is verified,
 *   against the system's authorities or the PEM file `ca`);
 * - `redis+unix://[USER:PASS@localhost]/ABS/PATH.sock[?db=N&prefix=NAME]`: a unix socket (the
 *   host is empty, or `localhost` when credentials are given, since a URL cannot carry
 *   credentials without a host).
 *
 * `prefix` names the volume inside the database (default `slayerfs`): every key of the volume
 * starts with the hash tag `{NAME}`, so a volume lives in one Redis Cluster slot and several
 * volumes can share a database under different prefixes.
 *
 * @module
 */

/** The default volume prefix (hash tag) in a Redis database. */
export const DEFAULT_REDIS_PREFIX = "slayerfs";

/** Where and how to connect, from a metadata URL. */
export interface RedisTarget {
  /** The URL's scheme. */
  scheme: "redis" | "rediss" | "redis+unix";
  /** The host (TCP); undefined for a unix socket. */
  host?: string;
  /** The port (TCP). */
  port?: number;
  /** The socket's path (unix). */
  path?: string;
  /** Connect with TLS. */
  tls: boolean;
  /** A PEM file of the certificate authority to trust for TLS (`?ca=`), instead of the system's. */
  ca?: string;
  /** The ACL user, if any. */
  username?: string;
  /** The password, if any. */
  password?: string;
  /** The database number. */
  db: number;
  /** The volume's name inside the database (its keys start with `{prefix}`). */
  prefix: string;
  /** The URL without its password, for messages. */
  display: string;
}

const PARAMS: Record<RedisTarget["scheme"], readonly string[]> = {
  "redis": ["prefix"],
  "rediss": ["prefix", "ca"],
  "redis+unix": ["db", "prefix"],
};

function parseDb(text: string, url: string): number {
  if (!/^\d{1,6}$/.test(text)) {
    throw new TypeError(`Invalid database "${text}" in "${url}": expected a number like 0`);
  }
  return Number(text);
}

/**
 * Parses a Redis metadata URL. Throws a `TypeError` whose message quotes the URL (with its
 * password hidden) for anything malformed: a missing host or socket path, a bad port or database,
 * an unknown query parameter, a prefix that could break the hash tag.
 *
 * @example
 * ```ts
 * import { parseRedisUrl } from "./_redis_url.ts";
 * import { equal } from "node:assert/strict";
 *
 * const t = parseRedisUrl("redis://:secret@db.example:6380/2?prefix=vol1");
 * equal(t.host, "db.example");
 * equal(t.port, 6380);
 * equal(t.db, 2);
 * equal(t.prefix, "vol1");
 * equal(t.display, "redis://:***@db.example:6380/2?prefix=vol1");
 * equal(parseRedisUrl("redis+unix:///run/redis.sock?db=1").path, "/run/redis.sock");
 * ```
 */
export function parseRedisUrl(text: string): RedisTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`Invalid Redis URL "${hidePassword(text)}"`);
  }
  if (url.password !== "") url.password = "***";
  const display = url.href;
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (scheme !== "redis" && scheme !== "rediss" && scheme !== "redis+unix") {
    throw new TypeError(`Not a Redis URL: "${display}"`);
  }
  const allowed = PARAMS[scheme];
  for (const key of url.searchParams.keys()) {
    if (!allowed.includes(key)) {
      throw new TypeError(
        `Unknown parameter "${key}" in "${display}": expected one of ${allowed.join(", ")}`,
      );
    }
  }
  const prefix = url.searchParams.get("prefix") ?? DEFAULT_REDIS_PREFIX;
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(prefix)) {
    throw new TypeError(
      `Invalid prefix "${prefix}" in "${display}": expected 1 to 64 letters, digits, "_", ".", ` +
        `":" or "-"`,
    );
  }
  const target: RedisTarget = {
    scheme,
    tls: scheme === "rediss",
    db: 0,
    prefix,
    display,
  };
  const ca = url.searchParams.get("ca");
  if (ca !== null) {
    if (!ca.startsWith("/")) {
      throw new TypeError(`Invalid ca "${ca}" in "${display}": expected an absolute path`);
    }
    target.ca = ca;
  }
  const original = new URL(text);
  if (original.username !== "") target.username = decodeURIComponent(original.username);
  if (original.password !== "") target.password = decodeURIComponent(original.password);
  if (scheme === "redis+unix") {
    const path = decodeURIComponent(url.pathname);
    if ((url.host !== "" && url.host !== "localhost") || !path.startsWith("/") || path === "/") {
      throw new TypeError(
        `The URL "${display}" must name the socket's absolute path, e.g. ` +
          "redis+unix:///run/redis/redis.sock?db=0",
      );
    }
    target.path = path;
    const db = url.searchParams.get("db");
    if (db !== null) target.db = parseDb(db, display);
    return target;
  }
  if (url.hostname === "") {
    throw new TypeError(
      `The URL "${display}" names no host: expected ${scheme}://HOST:PORT/DB, or ` +
        "redis+unix:///PATH.sock for a unix socket",
    );
  }
  target.host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  target.port = url.port === "" ? 6379 : Number(url.port);
  const path = url.pathname;
  if (path !== "" && path !== "/") target.db = parseDb(path.slice(1), display);
  return target;
}

/** `text` with the password of its `user:pass@` part replaced by `***`. */
function hidePassword(text: string): string {
  return text.replace(/^([^:]+:\/\/[^:@/]*:)[^@/]*@/, "$1***@");
}
