/**
 * Connecting the Redis engine (private to it): one ioredis client per engine, opened so that a
 * wrong address, refused credentials, a missing database or a database that holds something else
 * fail at once with one clear line, then switched to reconnecting forever in the background so
 * that a mounted volume survives a Redis restart.
 *
 * @module
 */

import { isIP } from "node:net";
import { Redis, type RedisOptions } from "ioredis";
import { getLog } from "../core/log.ts";
import type { RedisTarget } from "./_redis_url.ts";

const log = getLog("redis");

/** The value of a volume's marker key (`{prefix}m`): the layout's name and version. */
export const MARKER_VALUE = "slayerfs-kv 1";

/** At most this many keys of a database without our marker are looked at to judge it. */
const FOREIGN_SAMPLE = 10_000;

/** How a connected, checked database stands. */
export interface Connected {
  /** The client, reconnecting by itself from now on. */
  client: Redis;
  /** Whether the volume's marker is missing (a new volume: the first commit writes it). */
  needsMarker: boolean;
  /** Commands sent while opening. */
  roundTrips: number;
}

/** Options of {@linkcode connectRedis}. */
export interface ConnectOptions {
  /** How long to wait for the connection, in ms. */
  connectTimeoutMs: number;
  /** How long one command may take before it counts as lost once opened, in ms. */
  commandTimeoutMs: number;
}

function where(target: RedisTarget): string {
  return `Redis at ${target.display}`;
}

/** The TLS options of `target`: its CA file, and the server name unless the host is an address. */
async function tlsOptions(target: RedisTarget): Promise<Record<string, string>> {
  const options: Record<string, string> = {};
  if (!isIP(target.host!)) options.servername = target.host!;
  if (target.ca !== undefined) {
    try {
      options.ca = await Deno.readTextFile(target.ca);
    } catch (err) {
      throw new Error(`Cannot read the CA file "${target.ca}" of ${where(target)}: ${err}`);
    }
  }
  return options;
}

function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}

/** The one-line error for a connection that failed with `err` (its last `error` event). */
function connectError(target: RedisTarget, err: Error, timeoutMs: number): Error {
  const text = err.message;
  if (/^WRONGPASS|invalid password|invalid username/i.test(text)) {
    return new Error(`${where(target)} refused the credentials: ${text}`);
  }
  if (/^NOAUTH/.test(text)) {
    const form = target.path === undefined
      ? `${target.scheme}://[USER]:PASS@HOST:PORT/DB`
      : "redis+unix://[USER]:PASS@localhost/PATH.sock";
    return new Error(`${where(target)} needs a password (${form}): NOAUTH Authentication required`);
  }
  if (/^Command timed out/.test(text)) {
    return new Error(`${where(target)} does not answer (no reply in ${seconds(timeoutMs)} s)`);
  }
  return new Error(`Cannot connect to ${where(target)}: ${text}`);
}

/**
 * Connects to the database of `target` and checks that it holds the volume `target.prefix`
 * (marker present), or nothing but other SlayerFS volumes (a new volume). Throws an `Error` of
 * one line otherwise, having closed the client.
 */
export async function connectRedis(
  target: RedisTarget,
  options: ConnectOptions,
): Promise<Connected> {
  let lastError: Error | undefined;
  const redisOptions: RedisOptions = {
    ...(target.path !== undefined
      ? { path: target.path }
      : { host: target.host!, port: target.port! }),
    ...(target.tls ? { tls: await tlsOptions(target) } : {}),
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    db: target.db,
    lazyConnect: true,
    // Commands fail at once while disconnected; the engine retries whole transactions.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    // No retry while opening: an unreachable server is an error now, not a hang.
    retryStrategy: () => null,
    connectTimeout: options.connectTimeoutMs,
    // Opening waits no longer for a server that accepts but does not answer (a frozen one).
    commandTimeout: options.connectTimeoutMs,
    connectionName: "slayerfs",
    disableClientInfo: true,
  };
  const client = new Redis(redisOptions);
  client.on("error", (err: Error) => lastError = err);
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw connectError(target, lastError ?? err as Error, options.connectTimeoutMs);
  }
  try {
    const tag = `{${target.prefix}}`;
    // The client sends SELECT itself, but goes on with database 0 if it fails: check it here.
    const replies = await client.pipeline().select(target.db).get(`${tag}m`).dbsize().exec();
    let roundTrips = 1;
    const [select, marker, size] = replies ?? [];
    const lost = replies?.find(([e]) =>
      e !== null && /^(Command timed out|Connection is closed)/.test(e.message)
    );
    if (lost !== undefined) throw lost[0];
    if (select?.[0]) {
      throw new Error(`${where(target)} has no database ${target.db}: ${select[0].message}`);
    }
    if (marker?.[0]) {
      throw new Error(
        `${where(target)} holds a key "${tag}m" that is not a SlayerFS marker: ${
          marker[0].message
        }`,
      );
    }
    if (size?.[0]) throw size[0];
    const value = marker?.[1] as string | null;
    let needsMarker = false;
    if (value === null) {
      if ((size?.[1] as number) > 0) roundTrips += await checkOthers(client, target, tag);
      needsMarker = true;
    } else if (value !== MARKER_VALUE) {
      throw new Error(
        value.startsWith("slayerfs-kv ")
          ? `${where(target)} holds a volume of a newer layout ("${value}"): upgrade SlayerFS`
          : `${where(target)} holds a key "${tag}m" that is not a SlayerFS marker`,
      );
    }
    warnWithoutPersistence(client, target);
    client.options.commandTimeout = options.commandTimeoutMs;
    return { client, needsMarker, roundTrips };
  } catch (err) {
    client.disconnect();
    if (err instanceof Error && /^Command timed out/.test(err.message)) {
      throw connectError(target, err, options.connectTimeoutMs);
    }
    if (
      err instanceof Error && lastError !== undefined && /Connection is closed/.test(err.message)
    ) {
      throw connectError(target, lastError, options.connectTimeoutMs);
    }
    throw err;
  }
}

/**
 * Checks a database without our marker: every key must belong to another SlayerFS volume
 * (`{OTHER}m`, `{OTHER}i`, `{OTHER}v...`, `{OTHER}r...` with a marker for `OTHER`). Returns the
 * commands it sent.
 */
async function checkOthers(client: Redis, target: RedisTarget, tag: string): Promise<number> {
  const tags = new Set<string>();
  let cursor = "0";
  let seen = 0;
  let sent = 0;
  do {
    const [next, keys] = await client.scan(cursor, "COUNT", 1000);
    sent++;
    cursor = next;
    for (const key of keys) {
      const m = /^(\{[A-Za-z0-9_.:-]{1,64}\})[mivr]/.exec(key);
      if (m === null || m[1] === tag) throw foreign(target, key);
      tags.add(m[1]!);
    }
    seen += keys.length;
  } while (cursor !== "0" && seen < FOREIGN_SAMPLE);
  const list = [...tags];
  if (list.length > 0) {
    const markers = await client.mget(list.map((t) => `${t}m`));
    sent++;
    const i = markers.findIndex((m) => m !== MARKER_VALUE);
    if (i >= 0) throw foreign(target, `${list[i]}i`);
  }
  return sent;
}

function foreign(target: RedisTarget, key: string): Error {
  const juicefs = key === "setting" ? " (it looks like a JuiceFS volume)" : "";
  return new Error(
    `${where(target)} holds data that is not SlayerFS's (key "${key}")${juicefs}: use an empty ` +
      "database for a new volume",
  );
}

/** Logs a warning when the server keeps no append-only file (a restart may lose commits). */
function warnWithoutPersistence(client: Redis, target: RedisTarget): void {
  client.info("persistence").then((info) => {
    if (/^aof_enabled:0/m.test(info)) {
      log.warn(
        "{where} has appendonly off: a Redis restart loses the metadata committed since its " +
          "last snapshot (see the README, Redis)",
        { where: where(target) },
      );
    }
  }, () => {});
}

/**
 * Switches an opened client to reconnecting forever (every 50 ms at first, then every 500 ms),
 * logging each outage once.
 */
export function keepReconnecting(client: Redis, target: RedisTarget): void {
  let down = false;
  client.options.retryStrategy = (times: number) => Math.min(times * 50, 500);
  client.removeAllListeners("error");
  client.on("error", (err: Error) => {
    if (down) return;
    down = true;
    log.warn("{where} does not answer ({reason}): metadata operations wait for it", {
      where: where(target),
      reason: err.message,
    });
  });
  client.on("ready", () => {
    if (!down) return;
    down = false;
    log.info("{where} answers again", { where: where(target) });
  });
}
