/**
 * `s3://` storage URLs: parsing and the canonical form (private to `store_s3.ts`, which
 * re-exports the public parts).
 *
 * @module
 */

import { urlFlag } from "./_url.ts";

/** The parts of an `s3://` storage URL. */
export interface S3Location {
  /** The bucket name. */
  bucket: string;
  /** Prepended to every key: empty, or ending with `/`. */
  prefix: string;
  /** An `http(s)://host[:port]` endpoint, or `undefined` for AWS itself. */
  endpoint: string | undefined;
  /** The signing region. */
  region: string;
  /** Address the bucket in the path (`host/bucket/key`) rather than in the host name. */
  pathStyle: boolean;
  /**
   * Sign each request's body with SHA-256 too (`sign_payload=true`). Default false: the body is
   * sent as `UNSIGNED-PAYLOAD`, since every block carries its own checksum, verified on each read.
   */
  signPayload: boolean;
  /**
   * How requests travel (`http=fetch|node`). Default `fetch`: Deno's native HTTP client, which
   * reads each body in one call; `node` is the SDK's `node:http` handler.
   */
  http: "fetch" | "node";
  /**
   * Time allowed for one request without a body (GET, HEAD, LIST), answer included
   * (`get_timeout=SEC`). Default {@linkcode S3_DEFAULTS}`.getTimeoutMs` (30 s).
   */
  getTimeoutMs: number;
  /**
   * Time allowed for one request with a body (PUT, a multipart part, DELETE) (`put_timeout=SEC`).
   * Default {@linkcode S3_DEFAULTS}`.putTimeoutMs` (60 s).
   */
  putTimeoutMs: number;
  /**
   * Further attempts of a request that failed transiently (5xx, throttling, a timeout, a network
   * error) (`retries=N`). Default {@linkcode S3_DEFAULTS}`.retries` (5, so 6 attempts).
   */
  retries: number;
}

/** The defaults of the `get_timeout`, `put_timeout` and `retries` URL parameters. */
export const S3_DEFAULTS = { getTimeoutMs: 30_000, putTimeoutMs: 60_000, retries: 5 } as const;

const QUERY_PARAMS = [
  "endpoint",
  "region",
  "path_style",
  "sign_payload",
  "http",
  "get_timeout",
  "put_timeout",
  "retries",
];

/**
 * Parses `s3://BUCKET/PREFIX?endpoint=URL&region=R&path_style=true|false` (and the other
 * parameters of {@linkcode S3Location}: `sign_payload`, `http`, `get_timeout=SEC`,
 * `put_timeout=SEC`, `retries=N`).
 *
 * The prefix gets a trailing `/` unless it is empty. `region` defaults to `AWS_REGION`,
 * `AWS_DEFAULT_REGION`, then `us-east-1`; `path_style` defaults to true when an endpoint is given.
 * Throws a `TypeError` that quotes the offending part for anything else, including credentials
 * embedded in the URL.
 */
export function parseS3Url(url: string): S3Location {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new TypeError(`Invalid S3 storage URL "${url}"`, { cause: err });
  }
  if (u.protocol !== "s3:") {
    throw new TypeError(`S3 storage URL must start with "s3://", got "${url}"`);
  }
  if (u.username !== "" || u.password !== "") {
    throw new TypeError(
      "S3 storage URL must not contain credentials: set AWS_ACCESS_KEY_ID and " +
        "AWS_SECRET_ACCESS_KEY or use an AWS profile",
    );
  }
  const bucket = u.hostname;
  if (bucket === "") throw new TypeError(`S3 storage URL "${url}" names no bucket`);
  if (u.port !== "") {
    throw new TypeError(
      `S3 storage URL "${url}" has a port after the bucket: give the server as ?endpoint=http://HOST:PORT`,
    );
  }
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new TypeError(
      `Invalid bucket name "${bucket}": use 3-63 lowercase letters, digits, dots and hyphens`,
    );
  }
  let prefix = decodeURIComponent(u.pathname).replace(/^\/+/, "");
  if (prefix !== "" && !prefix.endsWith("/")) prefix += "/";

  for (const name of u.searchParams.keys()) {
    if (!QUERY_PARAMS.includes(name)) {
      throw new TypeError(
        `Unknown S3 storage URL parameter "${name}": expected one of ${QUERY_PARAMS.join(", ")}`,
      );
    }
  }
  let endpoint: string | undefined;
  const rawEndpoint = u.searchParams.get("endpoint");
  if (rawEndpoint !== null) {
    let e: URL;
    try {
      e = new URL(rawEndpoint);
    } catch (err) {
      throw new TypeError(`Invalid S3 endpoint "${rawEndpoint}": expected http(s)://HOST[:PORT]`, {
        cause: err,
      });
    }
    if (e.protocol !== "http:" && e.protocol !== "https:") {
      throw new TypeError(`Invalid S3 endpoint "${rawEndpoint}": expected http(s)://HOST[:PORT]`);
    }
    if (e.username !== "" || e.password !== "") {
      throw new TypeError("S3 endpoint must not contain credentials");
    }
    if ((e.pathname !== "/" && e.pathname !== "") || e.search !== "") {
      throw new TypeError(
        `Invalid S3 endpoint "${rawEndpoint}": it must not have a path or query`,
      );
    }
    endpoint = e.origin;
  }
  const region = u.searchParams.get("region") || envRegion() || "us-east-1";
  if (!/^[a-z0-9-]+$/.test(region)) throw new TypeError(`Invalid S3 region "${region}"`);
  const pathStyle = urlFlag(u, "path_style") ?? endpoint !== undefined;
  const signPayload = urlFlag(u, "sign_payload") ?? false;
  const http = u.searchParams.get("http") ?? "fetch";
  if (http !== "fetch" && http !== "node") {
    throw new TypeError(`Invalid http "${http}": expected fetch or node`);
  }
  const getTimeoutMs = seconds(u, "get_timeout") ?? S3_DEFAULTS.getTimeoutMs;
  const putTimeoutMs = seconds(u, "put_timeout") ?? S3_DEFAULTS.putTimeoutMs;
  const rawRetries = u.searchParams.get("retries");
  const retries = rawRetries === null ? S3_DEFAULTS.retries : Number(rawRetries);
  if (rawRetries !== null && (rawRetries === "" || !Number.isSafeInteger(retries) || retries < 0)) {
    throw new TypeError(`Invalid retries "${rawRetries}": expected a whole number >= 0`);
  }
  return {
    bucket,
    prefix,
    endpoint,
    region,
    pathStyle,
    signPayload,
    http,
    getTimeoutMs,
    putTimeoutMs,
    retries,
  };
}

/** The query parameter `name` in seconds (fractions allowed, > 0), as ms; `undefined` if absent. */
function seconds(u: URL, name: string): number | undefined {
  const raw = u.searchParams.get(name);
  if (raw === null) return undefined;
  const ms = Math.round(Number(raw) * 1000);
  if (raw === "" || !Number.isFinite(ms) || ms < 1) {
    throw new TypeError(`Invalid ${name} "${raw}": expected seconds > 0`);
  }
  return ms;
}

/** Formats a location back into its canonical storage URL (never with credentials). */
export function formatS3Url(loc: S3Location): string {
  const params: string[] = [];
  if (loc.endpoint !== undefined) params.push(`endpoint=${loc.endpoint}`);
  params.push(`region=${loc.region}`);
  params.push(`path_style=${loc.pathStyle}`);
  if (loc.signPayload) params.push("sign_payload=true");
  if (loc.http !== "fetch") params.push(`http=${loc.http}`);
  if (loc.getTimeoutMs !== S3_DEFAULTS.getTimeoutMs) {
    params.push(`get_timeout=${loc.getTimeoutMs / 1000}`);
  }
  if (loc.putTimeoutMs !== S3_DEFAULTS.putTimeoutMs) {
    params.push(`put_timeout=${loc.putTimeoutMs / 1000}`);
  }
  if (loc.retries !== S3_DEFAULTS.retries) params.push(`retries=${loc.retries}`);
  return `s3://${loc.bucket}/${loc.prefix}?${params.join("&")}`;
}

function envRegion(): string | undefined {
  try {
    return Deno.env.get("AWS_REGION") || Deno.env.get("AWS_DEFAULT_REGION") || undefined;
  } catch {
    return undefined; // no --allow-env: fall back to the default
  }
}
