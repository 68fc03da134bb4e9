/**
 * A real S3-compatible server for tests: s3rver 3.7.1 run by Node as a separate process on a
 * loopback port, with its own temporary data directory and its own random credentials.
 *
 * s3rver is pinned in `tests/s3server/package.json` and installed there on first use with
 * `npm install` (its `node_modules/` is not committed). Node runs with `--openssl-legacy-provider`
 * because s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 refuses
 * otherwise (truncated pages would fail with 500).
 *
 * @example Start a server, make a bucket, stop it
 * ```ts ignore
 * import { startS3Server } from "./_s3server.ts";
 *
 * await using server = await startS3Server();
 * await server.createBucket("blocks");
 * const url = server.storeUrl("blocks", "fs1");
 * // s3://blocks/fs1?endpoint=http://127.0.0.1:PORT&region=us-east-1&path_style=true
 * ```
 *
 * @module
 */

import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";

const SERVER_DIR = new URL("./s3server/", import.meta.url);
const SERVER_SCRIPT = new URL("./serve.cjs", SERVER_DIR);
const INSTALLED_MARKER = new URL("./node_modules/s3rver/package.json", SERVER_DIR);
const INSTALL_LOCK = new URL("./.install.lock/", SERVER_DIR);

/** How long to wait for s3rver to listen, and for `npm install` to finish. */
const START_TIMEOUT_MS = 30_000;
const INSTALL_TIMEOUT_MS = 300_000;

/** Options for {@linkcode startS3Server}. */
export interface S3ServerOptions {
  /** Port to listen on; 0 (the default) lets the kernel choose a free one. */
  port?: number;
  /** Region reported in {@linkcode S3TestServer.storeUrl}; s3rver accepts any. */
  region?: string;
  /**
   * Milliseconds each GET waits before it answers (default 0), to stand for the first-byte
   * latency of a remote S3 service (tens of milliseconds) in benchmarks.
   */
  getLatencyMs?: number;
}

/** A running s3rver; stop it with {@linkcode S3TestServer.stop} or `await using`. */
export interface S3TestServer {
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** The loopback port; it stays the same across {@linkcode S3TestServer.restart}. */
  readonly port: number;
  /** The region to sign requests for. */
  readonly region: string;
  /** The only access key the server accepts. */
  readonly accessKeyId: string;
  /** The secret for {@linkcode S3TestServer.accessKeyId}. */
  readonly secretAccessKey: string;
  /** The server's data directory, removed by {@linkcode S3TestServer.stop}. */
  readonly directory: string;
  /** Creates a bucket (idempotent). */
  createBucket(name: string): Promise<void>;
  /** A plain AWS SDK client of this server, with its credentials (the caller destroys it). */
  client(): S3Client;
  /** A SlayerFS storage URL for `bucket` and `prefix` on this server (no credentials in it). */
  storeUrl(bucket: string, prefix?: string): string;
  /** Puts this server's credentials in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (for daemons). */
  exportCredentials(): void;
  /** Kills the server process, keeping its data; connections are refused until `start()`. */
  kill(): Promise<void>;
  /** Starts the server again on the same port with the same data after {@linkcode kill}. */
  start(): Promise<void>;
  /** Kills and starts the server again on the same port with the same data. */
  restart(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections are accepted but never answered. */
  pause(): void;
  /** Thaws a process frozen by {@linkcode pause} (SIGCONT). */
  resume(): void;
  /** Kills the server and removes its data directory; idempotent. */
  stop(): Promise<void>;
  /** Same as {@linkcode S3TestServer.stop}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts s3rver on loopback in a fresh temporary directory and waits until it answers.
 * Installs s3rver with npm on first use.
 */
export async function startS3Server(options: S3ServerOptions = {}): Promise<S3TestServer> {
  await ensureS3rverInstalled();
  const directory = await Deno.makeTempDir({ prefix: "slayerfs-s3rver-" });
  // Fixed: test files running in parallel share the process's AWS_* environment, which each
  // sets for the mounts it spawns.
  const accessKeyId = "TESTSLAYERFSKEY";
  const secretAccessKey = "slayerfs-test-secret";
  const region = options.region ?? "us-east-1";
  const latency = options.getLatencyMs ?? 0;
  let proc: RunningServer | undefined;
  try {
    proc = await spawnServer(
      directory,
      options.port ?? 0,
      accessKeyId,
      secretAccessKey,
      latency,
      () => restartAfterCrash(),
    );
  } catch (err) {
    await Deno.remove(directory, { recursive: true }).catch(() => {});
    throw err;
  }
  const port = proc.port;
  const endpoint = `http://127.0.0.1:${port}`;
  let stopped = false;
  let paused = false;

  // s3rver is a test double that can crash where S3 would not (it has no handler for errors it
  // does not expect): start it again on the same port with the same data, as an S3 endpoint
  // would come back, so the test sees a brief outage (which the clients retry), and say so.
  const restartAfterCrash = () => {
    if (stopped || proc === undefined) return;
    proc = undefined;
    console.error(`s3rver on port ${port}: starting it again (same port, same data)`);
    spawnServer(directory, port, accessKeyId, secretAccessKey, latency, () => restartAfterCrash())
      .then(async (p) => {
        if (stopped || proc !== undefined) await p.kill();
        else proc = p;
      })
      .catch((err) => console.error(`s3rver on port ${port} did not start again: ${err}`));
  };

  const killCurrent = async () => {
    const p = proc;
    proc = undefined;
    if (p === undefined) return;
    if (paused) {
      paused = false;
      try {
        p.child.kill("SIGCONT");
      } catch { /* already gone */ }
    }
    await p.kill();
  };

  const server: S3TestServer = {
    endpoint,
    port,
    region,
    accessKeyId,
    secretAccessKey,
    directory,
    client() {
      return new S3Client({
        endpoint,
        region,
        forcePathStyle: true,
        credentials: { accessKeyId, secretAccessKey },
      });
    },
    async createBucket(name) {
      const client = server.client();
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }));
      } catch (err) {
        const name = (err as { name?: string }).name;
        if (name !== "BucketAlreadyOwnedByYou" && name !== "BucketAlreadyExists") throw err;
      } finally {
        client.destroy();
      }
    },
    storeUrl(bucket, prefix = "") {
      return `s3://${bucket}/${prefix}?endpoint=${endpoint}&region=${region}&path_style=true`;
    },
    exportCredentials() {
      Deno.env.set("AWS_ACCESS_KEY_ID", accessKeyId);
      Deno.env.set("AWS_SECRET_ACCESS_KEY", secretAccessKey);
    },
    kill: killCurrent,
    async start() {
      if (stopped) throw new Error("The S3 test server was stopped");
      if (proc !== undefined) return;
      proc = await spawnServer(
        directory,
        port,
        accessKeyId,
        secretAccessKey,
        latency,
        () => restartAfterCrash(),
      );
    },
    async restart() {
      await killCurrent();
      await server.start();
    },
    pause() {
      if (proc === undefined || paused) return;
      proc.child.kill("SIGSTOP");
      paused = true;
    },
    resume() {
      if (proc === undefined || !paused) return;
      proc.child.kill("SIGCONT");
      paused = false;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await killCurrent();
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

interface RunningServer {
  child: Deno.ChildProcess;
  port: number;
  kill(): Promise<void>;
}

/** Spawns `node serve.cjs` and resolves once it printed the port it listens on. */
async function spawnServer(
  directory: string,
  port: number,
  accessKeyId: string,
  secretAccessKey: string,
  getLatencyMs: number,
  onCrash: () => void = () => {},
): Promise<RunningServer> {
  const child = new Deno.Command("node", {
    env: { S3RVER_GET_LATENCY_MS: String(getLatencyMs) },
    args: [
      "--openssl-legacy-provider",
      SERVER_SCRIPT.pathname,
      directory,
      String(port),
      accessKeyId,
      secretAccessKey,
    ],
    cwd: SERVER_DIR.pathname,
    stdin: "piped", // s3rver exits when this closes, so it never outlives us
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderrChunks: string[] = [];
  const stderrDone = drain(child.stderr, (s) => {
    stderrChunks.push(s);
    if (stderrChunks.length > 64) stderrChunks.shift();
  });
  let listening = port;
  let ready: (port: number) => void = () => {};
  const readyPort = new Promise<number>((resolve) => ready = resolve);
  let line = "";
  const stdoutDone = drain(child.stdout, (s) => {
    line += s;
    const nl = line.indexOf("\n");
    if (nl >= 0) {
      try {
        listening = (JSON.parse(line.slice(0, nl)) as { port: number }).port;
        ready(listening);
      } catch { /* not our line */ }
      line = "";
    }
  });
  const writer = child.stdin.getWriter();
  let exited = false;
  let killing = false;
  let started = false;
  const status = child.status.then(async (s) => {
    exited = true;
    // A server that dies under a running test (a crash, the OOM killer) fails the test's requests
    // with connection errors that say nothing of why: say it here, in the test's output.
    if (!killing) {
      await stderrDone.catch(() => {});
      console.error(
        `s3rver (pid ${child.pid}, port ${listening}) exited by itself: code ${s.code}` +
          `${s.signal ? `, signal ${s.signal}` : ""}; its last output:\n` +
          stderrChunks.join("").trim().split("\n").slice(-20).join("\n") +
          (s.signal === "SIGKILL" ? await oomLines() : ""),
      );
      if (started) onCrash();
    }
    return s;
  });

  const kill = async () => {
    killing = true;
    if (!exited) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    await writer.close().catch(() => {});
    await status;
    await Promise.allSettled([stdoutDone, stderrDone]);
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const outcome = await Promise.race([
      readyPort,
      status.then((s) => {
        throw new Error(
          `s3rver exited with code ${s.code} before listening: ${stderrChunks.join("").trim()}`,
        );
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`s3rver did not listen within ${START_TIMEOUT_MS} ms`)),
          START_TIMEOUT_MS,
        );
      }),
    ]);
    await waitUntilAnswering(`http://127.0.0.1:${outcome}`);
    started = true;
    return { child, port: outcome, kill };
  } catch (err) {
    await kill();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The kernel's last out-of-memory kills, if it lets us read its log (best effort). */
async function oomLines(): Promise<string> {
  try {
    const out = await new Deno.Command("dmesg", { stdout: "piped", stderr: "null" }).output();
    const lines = new TextDecoder().decode(out.stdout).split("\n")
      .filter((l) => /out of memory|oom-kill|Killed process/i.test(l)).slice(-3);
    return lines.length ? `\nkernel log:\n${lines.join("\n")}` : "";
  } catch {
    return "";
  }
}

/** Polls the endpoint until an HTTP answer (any status) comes back. */
async function waitUntilAnswering(endpoint: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      const res = await fetch(endpoint, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`s3rver at ${endpoint} does not answer`, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Reads a byte stream to its end, handing decoded text to `onText`. */
async function drain(
  stream: ReadableStream<Uint8Array>,
  onText: (text: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of stream) onText(decoder.decode(chunk, { stream: true }));
}

/**
 * Installs the pinned s3rver into `tests/s3server/node_modules` unless it is there. A lock
 * directory keeps parallel test processes from running npm at the same time.
 */
async function ensureS3rverInstalled(): Promise<void> {
  if (await exists(INSTALLED_MARKER)) return;
  const deadline = Date.now() + INSTALL_TIMEOUT_MS;
  for (;;) {
    try {
      await Deno.mkdir(INSTALL_LOCK);
      break;
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      if (await exists(INSTALLED_MARKER)) return;
      if (Date.now() > deadline) {
        throw new Error(
          `Timed out waiting for another process to install s3rver; remove "${INSTALL_LOCK.pathname}" if stale`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    if (await exists(INSTALLED_MARKER)) return;
    const out = await new Deno.Command("npm", {
      args: ["install", "--prefix", SERVER_DIR.pathname, "--no-audit", "--no-fund"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success || !(await exists(INSTALLED_MARKER))) {
      const text = new TextDecoder().decode(out.stderr).trim();
      throw new Error(`npm install of s3rver failed (exit code ${out.code}): ${text}`);
    }
  } finally {
    await Deno.remove(INSTALL_LOCK).catch(() => {});
  }
}

async function exists(path: URL): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}
