/**
 * The S3 client of one {@linkcode S3BlockStore}: the SDK client, its connection pools, and the
 * requests in flight (private to `store_s3.ts`).
 *
 * Every request waits for one of `maxConnections` slots, has its own timeout (which covers
 * reading the answer's body; `getTimeoutMs` without a body, `putTimeoutMs` with one), and is
 * retried with exponential backoff and jitter (`_retry.ts`) on 5xx answers, throttling, timeouts
 * and network errors. The SDK's own retries are off.
 *
 * An outage is logged once, not per retry: the first transiently failed attempt after a success
 * is a warning (what failed, the key, the reason), later ones are debug lines, and the first
 * success after them says the server answers again.
 *
 * @module
 */

import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import pLimit, { type LimitFunction } from "p-limit";
import { FetchHandler, type SdkHandler } from "./_s3_fetch.ts";
import { describe, isTransient, S3StoreError } from "./_s3_errors.ts";
import type { S3Location } from "./_s3_url.ts";
import { retry } from "./_retry.ts";
import { getLog } from "../core/log.ts";

const log = getLog("s3");

/** Settings of an {@linkcode S3Pool}, already validated. */
export interface S3PoolOptions {
  /** Static credentials; by default the AWS SDK's provider chain finds them. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Requests in flight at most, and connections per pool. */
  maxConnections: number;
  /** Time allowed for one request without a body, including reading the answer's body. */
  getTimeoutMs: number;
  /** Time allowed for one request with a body (PUT, a part, DELETE). */
  putTimeoutMs: number;
  /** Attempts per request, the first included. */
  maxAttempts: number;
  /** First backoff ceiling. */
  baseBackoffMs: number;
  /** Largest backoff ceiling. */
  maxBackoffMs: number;
}

/** One S3 client with bounded, timed, retried requests. */
export class S3Pool {
  /** The SDK client; send through {@linkcode S3Pool.request}. */
  readonly client: S3Client;
  readonly #location: S3Location;
  readonly #url: string;
  readonly #options: S3PoolOptions;
  readonly #agent: HttpAgent | HttpsAgent;
  readonly #slots: LimitFunction;
  readonly #closing = new AbortController();
  #closed = false;
  /** Whether the last attempt that settled failed transiently (an outage being retried). */
  #failing = false;

  /** Creates the client for `location` (`url` is its canonical form, for messages). */
  constructor(location: S3Location, url: string, options: S3PoolOptions) {
    this.#location = location;
    this.#url = url;
    this.#options = options;
    this.#slots = pLimit(options.maxConnections);

    const https = location.endpoint === undefined || location.endpoint.startsWith("https:");
    const agentOptions = { keepAlive: true, maxSockets: options.maxConnections };
    this.#agent = https ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    const nodeHandler = new NodeHttpHandler({
      ...(https ? { httpsAgent: this.#agent } : { httpAgent: this.#agent }),
      connectionTimeout: Math.min(options.putTimeoutMs, options.getTimeoutMs, 10_000),
    });
    const config: S3ClientConfig = {
      region: location.region,
      forcePathStyle: location.pathStyle,
      maxAttempts: 1, // retries are ours: they cover reading the body too
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: location.http === "fetch"
        ? new FetchHandler(nodeHandler as unknown as SdkHandler) as unknown as NodeHttpHandler
        : nodeHandler,
    };
    if (location.endpoint !== undefined) config.endpoint = location.endpoint;
    if (options.credentials !== undefined) config.credentials = options.credentials;
    this.client = new S3Client(config);
    if (!location.signPayload) {
      // SigV4 uses a body hash given in this header instead of computing one (a SHA-256 pass
      // over every block uploaded).
      this.client.middlewareStack.add(
        (next) => (args) => {
          const request = args.request as { headers?: Record<string, string> };
          if (request.headers !== undefined) {
            request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
          }
          return next(args);
        },
        { step: "build", name: "slayerfsUnsignedPayload" },
      );
    }
  }

  /** The server, for messages: the endpoint, or AWS S3 and the region. */
  where(): string {
    return this.#location.endpoint ?? `AWS S3 (${this.#location.region})`;
  }

  /**
   * Runs `op` in a connection slot with a timeout (`kind` `"put"` for requests with a body),
   * retrying transient failures with exponential backoff and jitter. Errors that are not transient
   * (404, 403, ...) are rethrown as they are; the last transient one is wrapped in an
   * {@linkcode S3StoreError}.
   */
  async request<T>(
    what: string,
    key: string,
    op: (signal: AbortSignal) => Promise<T>,
    kind: "get" | "put" = "get",
  ): Promise<T> {
    const { maxAttempts } = this.#options;
    const timeoutMs = kind === "put" ? this.#options.putTimeoutMs : this.#options.getTimeoutMs;
    let lastErr: unknown;
    let transient = false;
    try {
      return await retry(() => {
        transient = false;
        if (this.#closed) throw new S3StoreError(`S3 store ${this.#url} is closed`);
        return this.#slots(async () => {
          const timeout = new AbortController();
          const timer = setTimeout(
            () =>
              timeout.abort(
                new S3StoreError(`S3 ${what} timed out after ${timeoutMs} ms`, {
                  code: "TimeoutError",
                }),
              ),
            timeoutMs,
          );
          try {
            const result = await op(AbortSignal.any([timeout.signal, this.#closing.signal]));
            this.#succeeded();
            return result;
          } catch (err) {
            lastErr = timeout.signal.aborted ? timeout.signal.reason : err;
            transient = !this.#closed && isTransient(lastErr);
            if (transient) this.#attemptFailed(what, key, lastErr);
            else if (describe(lastErr).status !== undefined) this.#succeeded(); // it answered
            throw err;
          } finally {
            clearTimeout(timer);
          }
        });
      }, {
        maxAttempts,
        baseMs: this.#options.baseBackoffMs,
        maxMs: this.#options.maxBackoffMs,
        retryable: () => transient,
      });
    } catch (err) {
      if (!transient) throw err;
    }
    const { status, code } = describe(lastErr);
    const reason = lastErr instanceof Error ? lastErr.message : String(lastErr);
    throw new S3StoreError(
      `S3 ${what} "${key}" in bucket "${this.#location.bucket}" at ${this.where()} failed after ` +
        `${maxAttempts} attempts: ${reason || code || `HTTP ${status}`}`,
      { cause: lastErr, status, code },
    );
  }

  #attemptFailed(what: string, key: string, error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    const props = { what, key, where: this.where(), reason, error };
    if (this.#failing) {
      log.debug('S3 {what} "{key}" failed again: {reason}', props);
      return;
    }
    this.#failing = true;
    log.warn('S3 {what} "{key}" at {where} failed, retrying: {reason}', props);
  }

  #succeeded(): void {
    if (!this.#failing) return;
    this.#failing = false;
    log.info("S3 at {where} answers again", { where: this.where() });
  }

  /** Aborts requests in flight and closes the connections; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort(new S3StoreError(`S3 store ${this.#url} was closed`));
    this.client.destroy();
    this.#agent.destroy();
  }
}
