/**
 * A private `redis-server` for tests: its own temporary directory, a unix socket in it and no
 * TCP port (`--port 0`), an append-only file fsync'ed at every write (`appendfsync always`, unless
 * asked otherwise), so a restart keeps every acknowledged commit. Never the machine's own Redis.
 *
 * @example
 * ```ts ignore
 * import { startRedis } from "./_redis.ts";
 *
 * await using redis = await startRedis();
 * const url = redis.url({ prefix: "vol1" }); // redis+unix:///tmp/.../r.sock?db=0&prefix=vol1
 * await redis.restart(); // same data, same socket
 * ```
 *
 * @module
 */

/** How long to wait for the server to answer after a start. */
const START_TIMEOUT_MS = 30_000;

/** Options of {@linkcode startRedis}. */
export interface RedisServerOptions {
  /** Require this password (`requirepass`). */
  password?: string;
  /**
   * When the append-only file is fsync'ed: `always` (the default: every acknowledged write
   * survives a kill -9) or `everysec` (faster; a crash may lose the last second).
   */
  appendfsync?: "always" | "everysec";
  /**
   * Also listen with TLS on a free loopback port, with a self-signed certificate for `localhost`
   * made by `openssl` (`ca.pem` in the server's directory).
   */
  tls?: boolean;
}

/** A running private Redis; stop it with {@linkcode RedisTestServer.stop} or `await using`. */
export interface RedisTestServer extends AsyncDisposable {
  /** The server's directory (socket, AOF, log), removed by `stop`. */
  readonly dir: string;
  /** The unix socket's path. */
  readonly socket: string;
  /** A `redis+unix://` meta URL on this server (db 0, default prefix unless given). */
  url(options?: { db?: number; prefix?: string; password?: string }): string;
  /** A `rediss://localhost:PORT/DB?ca=...` meta URL (a server started with `tls`). */
  tlsUrl(options?: { db?: number; ca?: boolean }): string;
  /** Runs `redis-cli` on the server with `args` and returns its output (trimmed). */
  cli(...args: string[]): Promise<string>;
  /** Kills the server (SIGKILL), keeping its data; the socket refuses until `start`. */
  kill(): Promise<void>;
  /** Starts the server again on the same socket with the same data after `kill`. */
  start(): Promise<void>;
  /** Kills and starts again. */
  restart(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections are accepted but never answered. */
  pause(): void;
  /** Thaws a server frozen by `pause` (SIGCONT). */
  resume(): void;
  /** Kills the server and removes its directory; idempotent. */
  stop(): Promise<void>;
  /**
   * Kills the server and removes its directory without waiting for anything: for an `unload`
   * handler, when a file's tests share one server.
   */
  stopSync(): void;
}

/** Starts a private `redis-server` in a new temporary directory. */
export async function startRedis(options: RedisServerOptions = {}): Promise<RedisTestServer> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-redis-" });
  const socket = `${dir}/r.sock`;
  let child: Deno.ChildProcess | undefined;
  let stopped = false;
  const auth = options.password === undefined ? [] : ["-a", options.password, "--no-auth-warning"];
  let tlsArgs: string[] = [];
  let tlsPort = 0;
  if (options.tls === true) {
    const made = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/ca.pem`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!made.success) {
      await Deno.remove(dir, { recursive: true });
      throw new Error(`openssl: ${new TextDecoder().decode(made.stderr)}`);
    }
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    tlsPort = (probe.addr as Deno.NetAddr).port;
    probe.close();
    tlsArgs = [
      "--tls-port",
      `${tlsPort}`,
      "--bind",
      "127.0.0.1",
      "--tls-cert-file",
      `${dir}/ca.pem`,
      "--tls-key-file",
      `${dir}/key.pem`,
      "--tls-auth-clients",
      "no",
    ];
  }

  const cli = async (...args: string[]): Promise<string> => {
    const out = await new Deno.Command("redis-cli", {
      args: ["-s", socket, ...auth, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success) throw new Error(`redis-cli ${args.join(" ")}: ${text}`);
    return text;
  };

  const start = async () => {
    if (child !== undefined) throw new Error("The Redis server is already running");
    await Deno.remove(socket).catch(() => {});
    child = new Deno.Command("redis-server", {
      args: [
        "--port",
        "0",
        "--unixsocket",
        socket,
        "--unixsocketperm",
        "700",
        "--dir",
        dir,
        "--appendonly",
        "yes",
        "--appendfsync",
        options.appendfsync ?? "always",
        "--save",
        "",
        "--logfile",
        `${dir}/redis.log`,
        ...(options.password === undefined ? [] : ["--requirepass", options.password]),
        ...tlsArgs,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const pong = await cli("ping").catch(() => "");
      if (pong === "PONG") return;
      if (Date.now() > deadline) {
        const log = await Deno.readTextFile(`${dir}/redis.log`).catch(() => "");
        throw new Error(`redis-server did not start in ${START_TIMEOUT_MS} ms:\n${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  const kill = async () => {
    const c = child;
    if (c === undefined) return;
    child = undefined;
    try {
      c.kill("SIGKILL");
    } catch { /* already gone */ }
    await c.status;
    await c.stderr.cancel().catch(() => {});
  };

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  try {
    await start();
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    dir,
    socket,
    url: (o = {}) => {
      const creds = o.password === undefined ? "" : `:${encodeURIComponent(o.password)}@localhost`;
      const prefix = o.prefix === undefined ? "" : `&prefix=${o.prefix}`;
      return `redis+unix://${creds}${socket}?db=${o.db ?? 0}${prefix}`;
    },
    tlsUrl: (o = {}) =>
      `rediss://localhost:${tlsPort}/${o.db ?? 0}${o.ca === false ? "" : `?ca=${dir}/ca.pem`}`,
    cli,
    kill,
    start,
    pause: () => child?.kill("SIGSTOP"),
    resume: () => child?.kill("SIGCONT"),
    restart: async () => {
      await kill();
      await start();
    },
    stop,
    stopSync: () => {
      if (stopped) return;
      stopped = true;
      try {
        child?.kill("SIGKILL");
      } catch { /* already gone */ }
      Deno.removeSync(dir, { recursive: true });
    },
    [Symbol.asyncDispose]: stop,
  };
}
