/**
 * The `etcd://` metadata URL: `etcd://[USER:PASS@]HOST:PORT[,HOST:PORT...]/PREFIX`, and
 * `etcds://...` for TLS with `?ca=FILE` (else the system's roots) and, for client-certificate
 * authentication, `&cert=FILE&key=FILE`.
 *
 * Decisions: the prefix (the URL's path, without its leading and trailing slashes) is required:
 * one etcd cluster holds many volumes side by side, and a volume at the root would take the
 * whole key space. Credentials are percent-decoded. `retry_timeout=SEC` (and, for `etcds://`,
 * `ca`, `cert`, `key`) are the only query parameters: any other is an error (a typo must not be
 * ignored silently).
 *
 * @module
 */

import { Buffer } from "node:buffer";

/** A parsed `etcd://` URL. */
export interface EtcdUrl {
  /** `host:port` of each endpoint, in the given order. */
  hosts: string[];
  /** The volume's key prefix (no leading or trailing slash, not empty). */
  prefix: string;
  /** User and password, when the URL has them (no password after `etcd://USER@`). */
  auth?: { username: string; password?: string };
  /** The URL without its password, for messages. */
  display: string;
  /** TLS (`etcds://`): PEM files of the CA and of the client's certificate and key. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** `?retry_timeout=SEC`: how long a transaction waits for an unreachable etcd, in ms. */
  retryTimeoutMs?: number;
}

/** A URL that cannot be an etcd metadata URL; `message` says why. */
export class EtcdUrlError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "EtcdUrlError";
  }
}

const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

/**
 * Parses `raw`. Throws {@linkcode EtcdUrlError} for a wrong scheme, a missing port or prefix, or
 * an unknown query parameter (`etcd://` takes none; `etcds://` takes `ca`, `cert` and `key`).
 *
 * @example
 * ```ts
 * import { parseEtcdUrl } from "./_etcd_url.ts";
 * import { deepEqual } from "node:assert/strict";
 *
 * const url = parseEtcdUrl("etcd://me:s%40cret@10.0.0.1:2379,10.0.0.2:2379/vol1");
 * deepEqual(url.hosts, ["10.0.0.1:2379", "10.0.0.2:2379"]);
 * deepEqual(url.prefix, "vol1");
 * deepEqual(url.auth, { username: "me", password: "s@cret" });
 * ```
 */
export function parseEtcdUrl(raw: string): EtcdUrl {
  const m = /^(etcds?):\/\/(?:([^@/?#]*)@)?([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(raw);
  if (m === null) throw new EtcdUrlError(`The URL "${raw}" is not an etcd://HOST:PORT/PREFIX URL`);
  const [, scheme = "etcd", userinfo, hostList = "", path = "", query, fragment] = m;
  const secure = scheme.toLowerCase() === "etcds";
  const display = userinfo === undefined
    ? raw
    : raw.replace(`${userinfo}@`, `${userinfo.split(":")[0]}:***@`);
  const params = new URLSearchParams(query?.slice(1) ?? "");
  const known = secure ? ["retry_timeout", "ca", "cert", "key"] : ["retry_timeout"];
  for (const name of params.keys()) {
    if (!known.includes(name)) {
      throw new EtcdUrlError(
        `Unknown parameter "${name}" in "${display}": expected ${
          secure ? "retry_timeout, ca, cert or key" : "retry_timeout (TLS is etcds://...?ca=FILE)"
        }`,
      );
    }
  }
  const retry = params.get("retry_timeout");
  if (retry !== null && !(Number(retry) > 0)) {
    throw new EtcdUrlError(
      `Invalid retry_timeout "${retry}" in "${display}": expected seconds > 0`,
    );
  }
  if (fragment !== undefined) throw new EtcdUrlError(`Unexpected "#" in "${display}"`);
  const hosts = hostList.split(",");
  for (const host of hosts) {
    const port = HOST_PORT.exec(host)?.[1];
    if (port === undefined || Number(port) < 1 || Number(port) > 65535) {
      throw new EtcdUrlError(
        `Invalid etcd endpoint "${host}" in "${display}": expected HOST:PORT, e.g. 127.0.0.1:2379`,
      );
    }
  }
  let prefix: string;
  try {
    prefix = decodeURIComponent(path).replace(/^\/+|\/+$/g, "");
  } catch {
    throw new EtcdUrlError(`Invalid percent-encoding in "${display}"`);
  }
  if (prefix === "") {
    throw new EtcdUrlError(
      `The etcd URL "${display}" needs a key prefix for the volume, e.g. etcd://${hosts[0]}/myfs`,
    );
  }
  const url: EtcdUrl = {
    hosts,
    prefix,
    display,
    ...(retry === null ? {} : { retryTimeoutMs: Number(retry) * 1000 }),
  };
  if (secure) {
    const [ca, cert, key] = ["ca", "cert", "key"].map((n) => params.get(n) ?? undefined);
    if ((cert === undefined) !== (key === undefined)) {
      throw new EtcdUrlError(`"${display}" needs both cert and key, or neither`);
    }
    // Deno's TLS refuses an IP address as the server name that grpc-js gives it.
    const ip = hosts.find((h) => /^(\d+\.\d+\.\d+\.\d+|\[.*\]):/.test(h));
    if (ip !== undefined) {
      throw new EtcdUrlError(
        `etcds:// needs host names, not IP addresses ("${ip}" in "${display}"): the name in ` +
          "the server's certificate",
      );
    }
    url.tls = {
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
    };
  }
  if (userinfo !== undefined) {
    const at = userinfo.indexOf(":");
    try {
      const username = decodeURIComponent(at < 0 ? userinfo : userinfo.slice(0, at));
      if (username === "") throw new EtcdUrlError(`Empty user name in "${display}"`);
      url.auth = at < 0 ? { username } : {
        username,
        password: decodeURIComponent(userinfo.slice(at + 1)),
      };
    } catch (err) {
      if (err instanceof EtcdUrlError) throw err;
      throw new EtcdUrlError(`Invalid percent-encoding in the credentials of "${display}"`);
    }
  }
  return url;
}

/** The PEM files an `etcds://` URL names, read (an unreadable one is said so in one line). */
export async function readEtcdTls(
  url: EtcdUrl,
): Promise<{ rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer }> {
  const read = async (what: string, path: string | undefined) => {
    if (path === undefined) return undefined;
    try {
      return Buffer.from(await Deno.readFile(path));
    } catch (err) {
      throw new Error(
        `Cannot read the ${what} "${path}" of ${url.display}: ${(err as Error).message}`,
      );
    }
  };
  const [ca, cert, key] = [
    await read("CA certificate", url.tls?.ca),
    await read("client certificate", url.tls?.cert),
    await read("client key", url.tls?.key),
  ];
  // Without a CA file, grpc-js uses the system's roots.
  return {
    rootCertificate: ca as Buffer,
    ...(key === undefined ? {} : { privateKey: key }),
    ...(cert === undefined ? {} : { certChain: cert }),
  };
}
