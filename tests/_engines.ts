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

/** Databases the PostgreSQL fixture keeps made ahead, since `newVolumeUrl` cannot wait. */
const PG_SPARE_DATABASES = 8;

/**
 * PostgreSQL: a private server on a unix socket (tests/_postgres.ts), one database per volume.
 * Databases are made ahead in the background ({@linkcode PG_SPARE_DATABASES} spare).
 */
const postgresFixture: EngineFixture = {
  name: "postgres",
  shared: true,
  async start() {
    const pg = await startPostgres();
    const spare: string[] = [];
    let making: Promise<void> = Promise.resolve();
    const topUp = () => {
      making = making.then(async () => {
        while (spare.length < PG_SPARE_DATABASES) spare.push(await pg.newDatabase());
      }).catch(() => {});
    };
    topUp();
    await making;
    const stop = async () => {
      await making;
      await pg.stop();
    };
    return {
      newVolumeUrl: () => {
        const url = spare.shift();
        topUp();
        if (url === undefined) {
          throw new Error("No spare PostgreSQL database: ask for fewer at once");
        }
        return url;
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
  },
};

/** Every engine fixture, embedded first. */
export const engineFixtures: readonly EngineFixture[] = [sqlite, postgresFixture];
