/**
 * The `etcd://` metadata URL: `etcd://[USER:PASS@]HOST:PORT[,HOST:PORT...]/PREFIX`.
 *
 * Decisions: the prefix (the URL's path, without its leading and trailing slashes) is required:
 * one etcd cluster holds many volumes side by side, and a volume at the root would take the
 * whole key space. Credentials are percent-decoded. No query parameter is known yet, so any is an
 * error (a typo must not be ignored silently).
 *
 * @module
 */

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
 * any query parameter.
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
  const m = /^etcd:\/\/(?:([^@/?#]*)@)?([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(raw);
  if (m === null) throw new EtcdUrlError(`The URL "${raw}" is not an etcd://HOST:PORT/PREFIX URL`);
  const [, userinfo, hostList = "", path = "", query, fragment] = m;
  const display = userinfo === undefined
    ? raw
    : raw.replace(`${userinfo}@`, `${userinfo.split(":")[0]}:***@`);
  if (query !== undefined && query.length > 1) {
    const names = [...new URLSearchParams(query.slice(1)).keys()];
    throw new EtcdUrlError(`Unknown parameter "${names[0]}" in "${display}": expected none`);
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
  const url: EtcdUrl = { hosts, prefix, display };
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
