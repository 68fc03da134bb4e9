/**
 * A real etcd for tests: `/usr/bin/etcd` (Debian `etcd-server`, 3.4) run as a private
 * single-node cluster on two free loopback ports with its own temporary data directory. Never
 * the machine's own etcd.
 *
 * @example Start a server and open a volume URL on it
 * ```ts ignore
 * import { startEtcd } from "./_etcd.ts";
 *
 * await using etcd = await startEtcd();
 * const url = etcd.url("vol1"); // etcd://127.0.0.1:PORT/vol1
 * ```
 *
 * @module
 */

const ETCD = "/usr/bin/etcd";
const ETCDCTL = "/usr/bin/etcdctl";
const START_TIMEOUT_MS = 30_000;

/** Options of {@linkcode startEtcd}. */
export interface EtcdOptions {
  /** `--max-txn-ops` (default 16384: the conformance suite commits 5000 keys at once). */
  maxTxnOps?: number;
  /** `--max-request-bytes` (default 8 MiB). */
  maxRequestBytes?: number;
  /**
   * TLS on the client port with a private CA, and client certificates required
   * (`--client-cert-auth`); the address is then `localhost:PORT`.
   */
  tls?: boolean;
}

/** PEM files of a TLS test server: its CA, and a client certificate and key it accepts. */
export interface EtcdTlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** A running private etcd; stop it with {@linkcode EtcdServer.stop} or `await using`. */
export interface EtcdServer extends AsyncDisposable {
  /** `127.0.0.1:PORT`, the client address; it stays the same across restarts. */
  readonly address: string;
  /** The client port. */
  readonly port: number;
  /** The data directory, removed by {@linkcode EtcdServer.stop}. */
  readonly directory: string;
  /** The TLS files, for a server started with `tls`. */
  readonly tls: EtcdTlsFiles | undefined;
  /**
   * `etcd://[USER:PASS@]127.0.0.1:PORT/PREFIX`, or with `tls`
   * `etcds://localhost:PORT/PREFIX?ca=...&cert=...&key=...` (no client certificate with
   * `clientCert: false`).
   */
  url(
    prefix: string,
    credentials?: { user: string; password: string },
    options?: { clientCert?: boolean },
  ): string;
  /** Creates user `root` with `password` and turns authentication on. */
  enableAuth(password: string): Promise<void>;
  /** Puts a raw key (text) with etcdctl, e.g. to plant foreign data under a prefix. */
  put(key: string, value: string): Promise<void>;
  /** Kills the server (SIGKILL), keeping its data; connections fail until `start()`. */
  kill(): Promise<void>;
  /** Starts the server again on the same ports with the same data after {@linkcode kill}. */
  start(): Promise<void>;
  /** Kills and starts again. */
  restart(): Promise<void>;
  /** Kills the server and removes its data; idempotent. */
  stop(): Promise<void>;
}

/** A port the kernel says is free now. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

interface Running {
  child: Deno.ChildProcess;
  kill(): Promise<void>;
}

/** Makes a CA, a server certificate for localhost and 127.0.0.1, and a client certificate. */
async function makeTls(
  dir: string,
): Promise<EtcdTlsFiles & { serverCert: string; serverKey: string }> {
  await Deno.mkdir(dir);
  const ssl = async (...args: string[]) => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    })
      .output();
    if (!out.success) {
      throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  const days = ["-days", "2"];
  await ssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    ...days,
    "-subj",
    "/CN=slayerfs-test-ca",
  );
  await Deno.writeTextFile(`${dir}/server.ext`, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  await Deno.writeTextFile(`${dir}/client.ext`, "extendedKeyUsage=clientAuth\n");
  for (const [name, cn] of [["server", "localhost"], ["client", "root"]]) {
    await ssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${cn}`,
    );
    await ssl(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      ...days,
      "-extfile",
      `${name}.ext`,
    );
  }
  return {
    ca: `${dir}/ca.pem`,
    cert: `${dir}/client.pem`,
    key: `${dir}/client.key`,
    serverCert: `${dir}/server.pem`,
    serverKey: `${dir}/server.key`,
  };
}

function spawn(
  directory: string,
  clientPort: number,
  peerPort: number,
  options: EtcdOptions,
  tls: (EtcdTlsFiles & { serverCert: string; serverKey: string }) | undefined,
): { running: Running; log: () => string; exited: Promise<Deno.CommandStatus> } {
  const client = `${tls === undefined ? "http" : "https"}://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  // etcd runs under a shell that kills it when our end of its stdin closes: at kill(), or when
  // this process dies, however it dies (no etcd outlives a test run).
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      'exec 3<&0; "$0" "$@" </dev/null & pid=$!; (cat <&3 >/dev/null; kill -9 $pid 2>/dev/null) & wait $pid',
      ETCD,
      "--name",
      "default",
      "--data-dir",
      directory,
      "--listen-client-urls",
      client,
      "--advertise-client-urls",
      client,
      "--listen-peer-urls",
      peer,
      "--initial-advertise-peer-urls",
      peer,
      "--initial-cluster",
      `default=${peer}`,
      "--max-txn-ops",
      String(options.maxTxnOps ?? 16384),
      "--max-request-bytes",
      String(options.maxRequestBytes ?? 8 << 20),
      "--logger",
      "zap",
      "--log-level",
      "warn",
      ...(tls === undefined ? [] : [
        "--cert-file",
        tls.serverCert,
        "--key-file",
        tls.serverKey,
        "--client-cert-auth",
        "--trusted-ca-file",
        tls.ca,
      ]),
    ],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const tail: string[] = [];
  const decoder = new TextDecoder();
  const drained = (async () => {
    for await (const chunk of child.stderr) {
      tail.push(decoder.decode(chunk, { stream: true }));
      if (tail.length > 64) tail.shift();
    }
  })().catch(() => {});
  const exited = child.status;
  return {
    running: {
      child,
      async kill() {
        await stdin.close().catch(() => {});
        await exited;
        await drained;
      },
    },
    log: () => tail.join("").trim(),
    exited,
  };
}

/** Waits until `/health` on the client port says the member is healthy. */
async function waitHealthy(
  clientPort: number,
  exited: Promise<Deno.CommandStatus>,
  log: () => string,
  tls: EtcdTlsFiles | undefined,
): Promise<void> {
  using client = tls === undefined ? undefined : Deno.createHttpClient({
    caCerts: [await Deno.readTextFile(tls.ca)],
    cert: await Deno.readTextFile(tls.cert),
    key: await Deno.readTextFile(tls.key),
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  let dead: Deno.CommandStatus | undefined;
  exited.then((s) => dead = s);
  for (;;) {
    if (dead !== undefined) {
      throw new Error(`etcd exited with code ${dead.code} before it was ready: ${log()}`);
    }
    try {
      const url = tls === undefined
        ? `http://127.0.0.1:${clientPort}/health`
        : `https://localhost:${clientPort}/health`;
      const res = await fetch(url, {
        signal: AbortSignal.timeout(2000),
        ...(client === undefined ? {} : { client }),
      });
      const body = await res.text();
      if (res.ok && body.includes('"true"')) return;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      throw new Error(
        `etcd on port ${clientPort} was not ready in ${START_TIMEOUT_MS} ms: ${log()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a private etcd in a fresh temporary directory and waits until it is healthy. */
export async function startEtcd(options: EtcdOptions = {}): Promise<EtcdServer> {
  // In memory where there is /dev/shm: etcd fsyncs every commit, and the tests share one disk.
  const shm = await Deno.stat("/dev/shm").then((s) => s.isDirectory, () => false);
  const directory = await Deno.makeTempDir({
    prefix: "slayerfs-etcd-",
    ...(shm ? { dir: "/dev/shm" } : {}),
  });
  let clientPort = 0;
  let peerPort = 0;
  let current: Running | undefined;
  let stopped = false;
  let rootPassword: string | undefined;
  let tls: Awaited<ReturnType<typeof makeTls>> | undefined;

  const launch = async (): Promise<void> => {
    const started = spawn(`${directory}/data`, clientPort, peerPort, options, tls);
    try {
      await waitHealthy(clientPort, started.exited, started.log, tls);
      current = started.running;
    } catch (err) {
      await started.running.kill();
      throw err;
    }
  };

  try {
    if (options.tls) tls = await makeTls(`${directory}/tls`);
    // Another process may take a free port before etcd binds it: try new ports a few times.
    for (let attempt = 1;; attempt++) {
      clientPort = freePort();
      peerPort = freePort();
      try {
        await launch();
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
        await Deno.remove(`${directory}/data`, { recursive: true }).catch(() => {});
      }
    }
  } catch (err) {
    await Deno.remove(directory, { recursive: true }).catch(() => {});
    throw err;
  }

  const address = `${tls === undefined ? "127.0.0.1" : "localhost"}:${clientPort}`;
  const ctl = async (...args: string[]): Promise<void> => {
    const auth = rootPassword === undefined ? [] : [`--user=root:${rootPassword}`];
    const secure = tls === undefined
      ? []
      : [`--cacert=${tls.ca}`, `--cert=${tls.cert}`, `--key=${tls.key}`];
    const out = await new Deno.Command(ETCDCTL, {
      args: [
        `--endpoints=${tls === undefined ? "http" : "https"}://${address}`,
        ...secure,
        ...auth,
        ...args,
      ],
      env: { ETCDCTL_API: "3" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `etcdctl ${args[0]} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
      );
    }
  };
  const kill = async () => {
    const running = current;
    current = undefined;
    await running?.kill();
  };
  const server: EtcdServer = {
    address,
    port: clientPort,
    directory,
    tls: tls === undefined ? undefined : { ca: tls.ca, cert: tls.cert, key: tls.key },
    url(prefix, credentials, urlOptions) {
      const auth = credentials === undefined
        ? ""
        : `${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.password)}@`;
      if (tls === undefined) return `etcd://${auth}${address}/${prefix}`;
      const client = urlOptions?.clientCert === false ? "" : `&cert=${tls.cert}&key=${tls.key}`;
      return `etcds://${auth}${address}/${prefix}?ca=${tls.ca}${client}`;
    },
    async enableAuth(password) {
      await ctl("user", "add", `root:${password}`);
      await ctl("auth", "enable");
      rootPassword = password;
    },
    put: (key, value) => ctl("put", key, value),
    kill,
    async start() {
      if (stopped) throw new Error("The etcd test server was stopped");
      if (current !== undefined) return;
      await launch();
    },
    async restart() {
      await kill();
      await server.start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await kill();
      } finally {
        await Deno.remove(directory, { recursive: true }).catch(() => {});
      }
    },
    [Symbol.asyncDispose]() {
      return server.stop();
    },
  };
  return server;
}
