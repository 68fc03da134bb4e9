/**
 * A private PostgreSQL 15 server for tests: `initdb` in a new temporary directory and `pg_ctl`
 * start with `-k DIR -p PORT -c listen_addresses=''`, so it listens on a unix socket in that
 * directory only (no TCP port, never the machine's server on 5432). PostgreSQL refuses to run as
 * root, so the binaries run as the `postgres` user (`runuser -u postgres --`) and the directory
 * is owned by it; the test process and the mount daemon run as root and reach the socket anyway.
 *
 * Roles: `slayer`, the superuser, logs in without a password (`trust` for local connections);
 * every other role needs its password (`scram-sha-256`), so the tests can see credentials
 * refused. {@linkcode PgTestServer.newDatabase} makes a new empty database per volume.
 *
 * @example
 * ```ts ignore
 * import { startPostgres } from "./_postgres.ts";
 *
 * await using pg = await startPostgres();
 * const url = await pg.newDatabase(); // postgres://slayer@localhost/vol1?host=/tmp/slayerfs-pg-XXX&port=...
 * ```
 *
 * @module
 */

import postgres from "postgres";

/** Where Debian puts the PostgreSQL 15 server binaries. */
export const PG_BIN = "/usr/lib/postgresql/15/bin";
/** The superuser the test server is made with. */
export const PG_SUPERUSER = "slayer";
const RUN_AS = "postgres";
// A start after an immediate stop replays the WAL: on a loaded 2-core CI machine that took over
// a minute once.
const START_TIMEOUT_S = 240;

/** A running private PostgreSQL server. */
export interface PgTestServer extends AsyncDisposable {
  /** The data directory, which also holds the socket (`.s.PGSQL.PORT`) and `server.log`. */
  readonly directory: string;
  /** The port number in the socket's name. */
  readonly port: number;
  /** A meta URL for database `db` as `user` (default the superuser), through the socket. */
  url(db: string, user?: string, password?: string): string;
  /**
   * Creates a new empty database (unique name `volN` unless `name` is given) and returns its
   * meta URL.
   */
  newDatabase(name?: string): Promise<string>;
  /** Runs SQL statements in database `db` as the superuser and returns the rows of the last. */
  query(db: string, text: string): Promise<Record<string, unknown>[]>;
  /** Creates a role that logs in with `password` and owns nothing. */
  createRole(name: string, password: string): Promise<void>;
  /**
   * Stops the server, keeping its data: `fast` (the default) ends sessions cleanly, `immediate`
   * stops at once like a crash (the next start recovers from the WAL).
   */
  halt(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts the server again after {@linkcode PgTestServer.halt}. */
  start(): Promise<void>;
  /** Stops the server and removes its directory; idempotent. */
  stop(): Promise<void>;
}

async function runAs(args: string[], timeoutMs = START_TIMEOUT_S * 1000): Promise<string> {
  const cmd = new Deno.Command("runuser", {
    args: ["-u", RUN_AS, "--", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  });
  const out = await cmd.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${args.join(" ")} failed (${out.code}): ${text.trim()}`);
  return text;
}

async function chownToServer(path: string): Promise<void> {
  const out = await new Deno.Command("chown", { args: ["-R", `${RUN_AS}:`, path] }).output();
  if (!out.success) throw new Error(`chown ${path} failed`);
}

/**
 * Makes a new cluster in a temporary directory and starts it. `port` only names the socket (a
 * random one by default).
 */
export async function startPostgres(port = 20000 + Math.floor(Math.random() * 40000)): Promise<
  PgTestServer
> {
  const directory = await Deno.makeTempDir({ prefix: "slayerfs-pg-" });
  const data = `${directory}/data`;
  await Deno.chmod(directory, 0o755);
  await chownToServer(directory);
  let running = false;
  let removed = false;
  let n = 0;
  const admins = new Map<string, ReturnType<typeof postgres>>();

  const url = (db: string, user = PG_SUPERUSER, password?: string) =>
    `postgres://${encodeURIComponent(user)}${
      password === undefined ? "" : `:${encodeURIComponent(password)}`
    }@localhost/${encodeURIComponent(db)}?host=${directory}&port=${port}`;

  const admin = (db: string) => {
    let sql = admins.get(db);
    if (sql === undefined) {
      sql = postgres({
        path: `${directory}/.s.PGSQL.${port}`,
        database: db,
        user: PG_SUPERUSER,
        max: 1,
        onnotice: () => {},
        connect_timeout: 10,
      });
      admins.set(db, sql);
    }
    return sql;
  };

  const closeAdmins = async () => {
    const all = [...admins.values()];
    admins.clear();
    await Promise.all(all.map((sql) => sql.end({ timeout: 1 }).catch(() => {})));
  };

  const server: PgTestServer = {
    directory,
    port,
    url,
    async newDatabase(name) {
      const db = name ?? `vol${++n}`;
      await admin("postgres").unsafe(`CREATE DATABASE "${db}"`);
      return url(db);
    },
    async query(db, text) {
      return [...await admin(db).unsafe(text)];
    },
    async createRole(name, password) {
      await admin("postgres").unsafe(
        `CREATE ROLE "${name}" LOGIN PASSWORD '${password.replaceAll("'", "''")}'`,
      );
    },
    async halt(mode = "fast") {
      if (!running) return;
      await closeAdmins();
      await runAs([`${PG_BIN}/pg_ctl`, "-D", data, "-m", mode, "-w", "stop"]);
      running = false;
    },
    async start() {
      if (running) return;
      await runAs([
        `${PG_BIN}/pg_ctl`,
        "-D",
        data,
        "-l",
        `${directory}/server.log`,
        "-w",
        "-t",
        String(START_TIMEOUT_S),
        "-o",
        `-k ${directory} -p ${port} -c listen_addresses=''`,
        "start",
      ]);
      running = true;
    },
    async stop() {
      if (removed) return;
      removed = true;
      await closeAdmins();
      if (running) {
        await runAs([`${PG_BIN}/pg_ctl`, "-D", data, "-m", "immediate", "-w", "stop"])
          .catch(() => {});
        running = false;
      }
      await Deno.remove(directory, { recursive: true }).catch(() => {});
    },
    [Symbol.asyncDispose]() {
      return server.stop();
    },
  };
  try {
    await runAs([
      `${PG_BIN}/initdb`,
      "-D",
      data,
      "-U",
      PG_SUPERUSER,
      "--auth=trust",
      "--no-sync",
      "-E",
      "UTF8",
      "--locale=C",
    ]);
    // The superuser logs in without a password, every other role with its own.
    const hba = `${data}/pg_hba.conf`;
    await Deno.writeTextFile(
      hba,
      `local all ${PG_SUPERUSER} trust\nlocal all all scram-sha-256\n`,
    );
    await chownToServer(hba);
    // Small and quick: tests need no durability across a power cut.
    await Deno.writeTextFile(
      `${data}/postgresql.conf`,
      "\nfsync = off\nshared_buffers = 32MB\nmax_connections = 200\n",
      { append: true },
    );
    await server.start();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}
