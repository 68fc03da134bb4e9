/**
 * The metadata engines the multi-engine tests run on: one fixture per engine, each starting a
 * private server of its own (never the machine's services) and handing out meta URLs of fresh,
 * empty volumes on it.
 *
 * A test that must hold on every engine loops over {@linkcode engineFixtures}; a test of many
 * mounts of one volume uses the fixtures whose `shared` is true.
 *
 * @module
 */

import { startRedis } from "./_redis.ts";
import { startEtcd } from "./_etcd.ts";
import { startPostgres } from "./_postgres.ts";

/** A running private server of one engine. */
export interface EngineServer extends AsyncDisposable {
  /** A meta URL naming a new, empty volume on this server (unique per call). */
  newVolumeUrl(): string;
  /** Stops the server and removes its data. Idempotent. */
  stop(): Promise<void>;
}

/** How to start one engine for tests. */
export interface EngineFixture {
  /** The URL scheme (`sqlite3`, `redis`, ...), also used in test names. */
  readonly name: string;
  /** Whether several daemons may mount one volume of it at once. */
  readonly shared: boolean;
  /** Starts a private server (or, for embedded engines, a temp dir). */
  start(): Promise<EngineServer>;
}

/** SQLite: no server, one file per volume in a private temp dir. */
const sqlite: EngineFixture = {
  name: "sqlite3",
  shared: true,
  async start() {
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-sqlite-" });
    let n = 0;
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    };
    return {
      newVolumeUrl: () => `sqlite3://${dir}/vol${++n}.db`,
      stop,
      [Symbol.asyncDispose]: stop,
    };
  },
};

/**
 * Redis: a private `redis-server` on a unix socket in a temp dir (AOF, fsync at every write);
 * each volume under its own `?prefix=` in database 0.
 */
const redis: EngineFixture = {
  name: "redis",
  shared: true,
  async start() {
    const server = await startRedis();
    let n = 0;
    return {
      newVolumeUrl: () => server.url({ prefix: `vol${++n}` }),
      stop: () => server.stop(),
      [Symbol.asyncDispose]: () => server.stop(),
    };
  },
};

/** etcd: a private single-node etcd (`tests/_etcd.ts`), one key prefix per volume. */
const etcd: EngineFixture = {
  name: "etcd",
  shared: true,
  async start() {
    const server = await startEtcd();
    let n = 0;
    return {
      newVolumeUrl: () => server.url(`vol${++n}`),
      stop: () => server.stop(),
      [Symbol.asyncDispose]: () => server.stop(),
    };
  },
};

/**
 * PostgreSQL: a private server on a unix socket (tests/_postgres.ts) with one database; each
 * volume gets a schema of its own in it (`?schema=vN`, created by format).
 */
const postgresFixture: EngineFixture = {
  name: "postgres",
  shared: true,
  async start() {
    const pg = await startPostgres();
    let base: string;
    try {
      base = await pg.newDatabase("volumes");
    } catch (err) {
      await pg.stop();
      throw err;
    }
    let n = 0;
    return {
      newVolumeUrl: () => `${base}&schema=v${++n}`,
      stop: () => pg.stop(),
      [Symbol.asyncDispose]: () => pg.stop(),
    };
  },
};

/** Every engine fixture, embedded first. */
export const engineFixtures: readonly EngineFixture[] = [sqlite, redis, etcd, postgresFixture];
