/**
 * Checking the metadata and storage URLs a user typed, before anything is derived from them or
 * created: a missing `//`, a relative path (`sqlite3://meta.db`) or a mistyped scheme
 * (`sqlite://`) is a usage error about that URL, with the closest correct spelling.
 *
 * @module
 */

import { resolve } from "node:path";
import { kvSchemes, storeSchemes } from "../backends/mod.ts";
import { CliError } from "./_errors.ts";
import { closest, didYouMean } from "./_suggest.ts";

/** How the help shows a URL of each known scheme; another registered scheme shows as `NAME://...`. */
const URL_EXAMPLES: Record<string, string> = {
  sqlite3: "sqlite3:///abs/path/meta.db",
  file: "file:///abs/dir",
  mem: "mem://[name]",
  redis: "redis://HOST:PORT/DB",
  rediss: "rediss://HOST:PORT/DB",
  "redis+unix": "redis+unix:///PATH.sock?db=N",
  s3: "s3://BUCKET/PREFIX?endpoint=URL",
  etcd: "etcd://HOST:PORT/PREFIX",
  etcds: "etcds://HOST:PORT/PREFIX?ca=FILE",
  postgres: "postgres://USER:PASS@HOST:PORT/DB",
  postgresql: "postgresql://USER:PASS@HOST:PORT/DB",
};

/** The schemes whose URL names a local absolute path (`SCHEME:///abs/path`). */
const LOCAL_SCHEMES = new Set(["sqlite3", "file"]);

/** Examples of a URL of each of `schemes`, for help and error messages. */
export function urlExamples(schemes: readonly string[]): string {
  return schemes.map((s) => URL_EXAMPLES[s] ?? `${s}://...`).join(", ");
}

/** Throws a usage error naming `url` unless it is a well-formed metadata URL. */
export function checkMetaUrl(url: string): void {
  checkUrl("metadata", url, kvSchemes());
}

/**
 * Throws a usage error naming `url` unless it is a well-formed storage URL; an `s3://` URL is
 * parsed by the S3 store (bucket name, endpoint, parameters) without any request.
 */
export async function checkStorageUrl(url: string): Promise<void> {
  checkUrl("storage", url, storeSchemes());
  if (url.toLowerCase().startsWith("s3:")) {
    const { parseS3Url } = await import("../backends/store_s3.ts");
    try {
      parseS3Url(url);
    } catch (err) {
      throw new CliError((err as Error).message, 2);
    }
  }
}

function checkUrl(kind: string, url: string, schemes: readonly string[]): void {
  const expected = `expected ${urlExamples(schemes)}`;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(url);
  if (!m) {
    const path = kind === "metadata" ? "sqlite3://" : "file://";
    const hint = url.includes("/") || url.endsWith(".db") ? `${path}${resolve(url)}` : undefined;
    throw new CliError(`Invalid ${kind} URL "${url}": ${expected}${didYouMean(hint)}`, 2);
  }
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  if (!schemes.includes(scheme)) {
    const near = closest(scheme, schemes);
    throw new CliError(
      `Unknown ${kind} scheme "${scheme}" in "${url}": expected one of ${schemes.join(", ")}` +
        didYouMean(near === undefined ? undefined : `${near}://`),
      2,
    );
  }
  const local = LOCAL_SCHEMES.has(scheme);
  if (!rest.startsWith("//")) {
    const hint = local ? `${scheme}://${resolve(rest)}` : `${scheme}://${rest}`;
    throw new CliError(`Invalid ${kind} URL "${url}": ${expected}${didYouMean(hint)}`, 2);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // A multi-host authority (`etcd://h1:2379,h2:2379/p`) is no WHATWG URL: its engine checks it.
    if (!local && /^\/\/[^/?#]*,/.test(rest)) return;
    throw new CliError(`Invalid ${kind} URL "${url}": ${expected}`, 2);
  }
  if (!local) return;
  const path = decodeURIComponent(parsed.pathname);
  if (parsed.host !== "" && parsed.host !== "localhost") {
    const typed = decodeURIComponent(rest.slice(2).replace(/[?#].*$/, ""));
    throw new CliError(
      `The ${kind} URL "${url}" names a relative path: a local path needs three slashes and ` +
        `an absolute path${didYouMean(`${scheme}://${resolve(typed)}`)}`,
      2,
    );
  }
  if (path === "/" || path === "") {
    throw new CliError(`The ${kind} URL "${url}" names no path: ${expected}`, 2);
  }
}

/** `url` with the password of its `user:pass@` part shown as `***`, for printing. */
export function hidePassword(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^:@/]*:)[^@/]*@/, "$1***@");
}
