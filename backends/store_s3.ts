/**
 * A {@linkcode BlockStore} on Amazon S3 or any S3-compatible server.
 *
 * Storage URL: `s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=R&path_style=true`.
 * Credentials never appear in the URL: they come from the AWS SDK's default provider chain
 * (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE` and the shared config files, ...)
 * unless passed explicitly in {@linkcode S3StoreOptions.credentials}.
 *
 * Every request goes through a bounded pool of connections, has its own timeout, and is retried
 * with exponential backoff and jitter on 5xx answers, throttling and network errors. Objects larger
 * than {@linkcode S3StoreOptions.multipartThreshold} are uploaded in parts.
 *
 * @example Open a store and check that the bucket is there
 * ```ts ignore
 * import { openS3BlockStore } from "./store_s3.ts";
 *
 * await using store = await openS3BlockStore(
 *   "s3://blocks/fs1?endpoint=http://127.0.0.1:4568&region=us-east-1&path_style=true",
 * );
 * await store.put("chunks/1", new Uint8Array([1, 2, 3]));
 * ```
 *
 * @module
 */

import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { fetchedBody, FetchHandler, type SdkHandler } from "./_s3_fetch.ts";
import { registerStoreScheme } from "./registry.ts";
import {
  type BlockStore,
  type ListPage,
  NotFoundError,
  type ObjectInfo,
  type StoreLimits,
} from "../core/block_store.ts";

const MiB = 1024 * 1024;

/** The parts of an `s3://` storage URL. */
export interface S3Location {
  /** The bucket name. */
  bucket: string;
  /** Prepended to every key: empty, or ending with `/`. */
  prefix: string;
  /** An `http(s)://host[:port]` endpoint, or `undefined` for AWS itself. */
  endpoint: string | undefined;
  /** The signing region. */
  region: string;
  /** Address the bucket in the path (`host/bucket/key`) rather than in the host name. */
  pathStyle: boolean;
  /**
   * Sign each request's body with SHA-256 too (`sign_payload=true`). Default false: the body is
   * sent as `UNSIGNED-PAYLOAD`, since every block carries its own checksum, verified on each read.
   */
  signPayload: boolean;
  /**
   * How requests travel (`http=fetch|node`). Default `fetch`: Deno's native HTTP client, which
   * reads each body in one call; `node` is the SDK's `node:http` handler.
   */
  http: "fetch" | "node";
}

/** Tuning and credentials for {@linkcode S3BlockStore}; every field has a sensible default. */
export interface S3StoreOptions {
  /** Static credentials; by default the AWS SDK's provider chain finds them. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * Requests in flight at most. Default 32. Each of the two connection pools (`fetch` for GET and
   * HEAD, `node:http` for requests with bodies) then holds at most this many connections.
   */
  maxConnections?: number;
  /** The concurrency the core should use, reported in `limits`. Default 16. */
  concurrency?: number;
  /** Time allowed for one request, including reading the answer's body. Default 60 s. */
  requestTimeoutMs?: number;
  /** Attempts per request, the first included. Default 6. */
  maxAttempts?: number;
  /** First backoff delay; each retry doubles it, up to {@linkcode maxBackoffMs}. Default 100 ms. */
  baseBackoffMs?: number;
  /** Largest backoff delay. Default 5 s. */
  maxBackoffMs?: number;
  /** Objects larger than this are uploaded in parts. Default 16 MiB. */
  multipartThreshold?: number;
  /** Size of each part of a multipart upload (S3 wants at least 5 MiB). Default 8 MiB. */
  partSize?: number;
  /** Parts of one object uploaded at the same time. Default 4. */
  partConcurrency?: number;
}

const QUERY_PARAMS = new Set(["endpoint", "region", "path_style", "sign_payload", "http"]);

/**
 * Parses `s3://BUCKET/PREFIX?endpoint=URL&region=R&path_style=true|false`.
 *
 * The prefix gets a trailing `/` unless it is empty. `region` defaults to `AWS_REGION`,
 * `AWS_DEFAULT_REGION`, then `us-east-1`; `path_style` defaults to true when an endpoint is given.
 * Throws a `TypeError` that quotes the offending part for anything else, including credentials
 * embedded in the URL.
 */
export function parseS3Url(url: string): S3Location {
  let u: URL;
  try {
    u = new URL(url);
  } catch (err) {
    throw new TypeError(`Invalid S3 storage URL "${url}"`, { cause: err });
  }
  if (u.protocol !== "s3:") {
    throw new TypeError(`S3 storage URL must start with "s3://", got "${url}"`);
  }
  if (u.username !== "" || u.password !== "") {
    throw new TypeError(
      "S3 storage URL must not contain credentials: set AWS_ACCESS_KEY_ID and " +
        "AWS_SECRET_ACCESS_KEY or use an AWS profile",
    );
  }
  const bucket = u.hostname;
  if (bucket === "") throw new TypeError(`S3 storage URL "${url}" names no bucket`);
  if (u.port !== "") {
    throw new TypeError(
      `S3 storage URL "${url}" has a port after the bucket: give the server as ?endpoint=http://HOST:PORT`,
    );
  }
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new TypeError(
      `Invalid bucket name "${bucket}": use 3-63 lowercase letters, digits, dots and hyphens`,
    );
  }
  let prefix = decodeURIComponent(u.pathname).replace(/^\/+/, "");
  if (prefix !== "" && !prefix.endsWith("/")) prefix += "/";

  for (const name of u.searchParams.keys()) {
    if (!QUERY_PARAMS.has(name)) {
      throw new TypeError(
        `Unknown S3 storage URL parameter "${name}": expected endpoint, region, path_style, sign_payload or http`,
      );
    }
  }
  let endpoint: string | undefined;
  const rawEndpoint = u.searchParams.get("endpoint");
  if (rawEndpoint !== null) {
    let e: URL;
    try {
      e = new URL(rawEndpoint);
    } catch (err) {
      throw new TypeError(`Invalid S3 endpoint "${rawEndpoint}": expected http(s)://HOST[:PORT]`, {
        cause: err,
      });
    }
    if (e.protocol !== "http:" && e.protocol !== "https:") {
      throw new TypeError(`Invalid S3 endpoint "${rawEndpoint}": expected http(s)://HOST[:PORT]`);
    }
    if (e.username !== "" || e.password !== "") {
      throw new TypeError("S3 endpoint must not contain credentials");
    }
    if ((e.pathname !== "/" && e.pathname !== "") || e.search !== "") {
      throw new TypeError(
        `Invalid S3 endpoint "${rawEndpoint}": it must not have a path or query`,
      );
    }
    endpoint = e.origin;
  }
  const region = u.searchParams.get("region") || envRegion() || "us-east-1";
  if (!/^[a-z0-9-]+$/.test(region)) throw new TypeError(`Invalid S3 region "${region}"`);
  const flag = (name: string, fallback: boolean): boolean => {
    const raw = u.searchParams.get(name);
    if (raw === null) return fallback;
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    throw new TypeError(`Invalid ${name} "${raw}": expected true or false`);
  };
  const pathStyle = flag("path_style", endpoint !== undefined);
  const signPayload = flag("sign_payload", false);
  const http = u.searchParams.get("http") ?? "fetch";
  if (http !== "fetch" && http !== "node") {
    throw new TypeError(`Invalid http "${http}": expected fetch or node`);
  }
  return { bucket, prefix, endpoint, region, pathStyle, signPayload, http };
}

/** Formats a location back into its canonical storage URL (never with credentials). */
export function formatS3Url(loc: S3Location): string {
  const params: string[] = [];
  if (loc.endpoint !== undefined) params.push(`endpoint=${loc.endpoint}`);
  params.push(`region=${loc.region}`);
  params.push(`path_style=${loc.pathStyle}`);
  if (loc.signPayload) params.push("sign_payload=true");
  if (loc.http !== "fetch") params.push(`http=${loc.http}`);
  return `s3://${loc.bucket}/${loc.prefix}?${params.join("&")}`;
}

/** An {@linkcode ObjectInfo} from what S3 says of an object. */
function objectInfo(key: string, size?: number, lastModified?: Date): ObjectInfo {
  const info: ObjectInfo = { key, size: size ?? 0 };
  if (lastModified !== undefined) info.mtime = lastModified.getTime();
  return info;
}

function envRegion(): string | undefined {
  try {
    return Deno.env.get("AWS_REGION") || Deno.env.get("AWS_DEFAULT_REGION") || undefined;
  } catch {
    return undefined; // no --allow-env: fall back to the default
  }
}

/** An S3 request that failed for good; `cause` holds the last underlying error. */
export class S3StoreError extends Error {
  /** The HTTP status of the last answer, if there was one. */
  readonly status: number | undefined;
  /** The S3 error code (e.g. `NoSuchBucket`) or the SDK's error name. */
  readonly code: string | undefined;
  /** Creates the error. */
  constructor(
    message: string,
    options: ErrorOptions & { status?: number | undefined; code?: string | undefined } = {},
  ) {
    super(message, options);
    this.name = "S3StoreError";
    this.status = options.status;
    this.code = options.code;
  }
}

/** A block store on an S3 bucket, under a key prefix. */
export class S3BlockStore implements BlockStore {
  /** The canonical storage URL, without credentials. */
  readonly url: string;
  /** `concurrency` is what the core should keep in flight. */
  readonly limits: StoreLimits;
  /** Where the blocks are. */
  readonly location: S3Location;
  readonly #client: S3Client;
  readonly #agent: HttpAgent | HttpsAgent;
  readonly #slots: Semaphore;
  readonly #timeoutMs: number;
  readonly #maxAttempts: number;
  readonly #baseBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #multipartThreshold: number;
  readonly #partSize: number;
  readonly #partConcurrency: number;
  readonly #closing = new AbortController();
  #closed = false;

  /** Creates a store for `url` (see {@linkcode parseS3Url}); makes no request. */
  constructor(url: string, options: S3StoreOptions = {}) {
    this.location = parseS3Url(url);
    this.url = formatS3Url(this.location);
    const maxConnections = positiveInt(options.maxConnections ?? 32, "maxConnections");
    this.limits = { concurrency: positiveInt(options.concurrency ?? 16, "concurrency") };
    this.#timeoutMs = positiveInt(options.requestTimeoutMs ?? 60_000, "requestTimeoutMs");
    this.#maxAttempts = positiveInt(options.maxAttempts ?? 6, "maxAttempts");
    this.#baseBackoffMs = options.baseBackoffMs ?? 100;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5_000;
    this.#partSize = positiveInt(options.partSize ?? 8 * MiB, "partSize");
    this.#multipartThreshold = Math.max(
      positiveInt(options.multipartThreshold ?? 16 * MiB, "multipartThreshold"),
      this.#partSize,
    );
    this.#partConcurrency = positiveInt(options.partConcurrency ?? 4, "partConcurrency");
    this.#slots = new Semaphore(maxConnections);

    const https = this.location.endpoint === undefined ||
      this.location.endpoint.startsWith("https:");
    const agentOptions = { keepAlive: true, maxSockets: maxConnections };
    this.#agent = https ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
    const nodeHandler = new NodeHttpHandler({
      ...(https ? { httpsAgent: this.#agent } : { httpAgent: this.#agent }),
      connectionTimeout: Math.min(this.#timeoutMs, 10_000),
    });
    const config: S3ClientConfig = {
      region: this.location.region,
      forcePathStyle: this.location.pathStyle,
      maxAttempts: 1, // retries are ours: they cover reading the body too
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: this.location.http === "fetch"
        ? new FetchHandler(nodeHandler as unknown as SdkHandler) as unknown as NodeHttpHandler
        : nodeHandler,
    };
    if (this.location.endpoint !== undefined) config.endpoint = this.location.endpoint;
    if (options.credentials !== undefined) config.credentials = options.credentials;
    this.#client = new S3Client(config);
    if (!this.location.signPayload) {
      // SigV4 uses a body hash given in this header instead of computing one (a SHA-256 pass
      // over every block uploaded).
      this.#client.middlewareStack.add(
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

  /**
   * Verifies that the bucket exists and that the credentials may list it. Throws an
   * {@linkcode S3StoreError} that says which, e.g. `Bucket "x" does not exist at http://...`.
   */
  async check(): Promise<void> {
    const { bucket } = this.location;
    try {
      await this.#request("check", "", (signal) =>
        this.#client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: this.location.prefix, MaxKeys: 1 }),
          { abortSignal: signal },
        ));
    } catch (err) {
      const last = err instanceof S3StoreError ? err.cause : err;
      const { status, code } = describe(last);
      const where = this.#where();
      if (code === "NoSuchBucket" || status === 404) {
        throw new S3StoreError(`Bucket "${bucket}" does not exist at ${where}`, {
          cause: last,
          status,
          code,
        });
      }
      if (status === 403 || status === 401 || code === "InvalidAccessKeyId") {
        throw new S3StoreError(
          `Access to bucket "${bucket}" at ${where} was refused (${code ?? status}): check the ` +
            "credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the AWS profile)",
          { cause: last, status, code },
        );
      }
      if (code === "CredentialsProviderError") {
        throw new S3StoreError(
          "No AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or " +
            "configure an AWS profile",
          { cause: last, status, code },
        );
      }
      throw err;
    }
  }

  /** Stores `data` under `key`, in parts if it is larger than the multipart threshold. */
  async put(key: string, data: Uint8Array): Promise<void> {
    if (data.byteLength > this.#multipartThreshold) return await this.#putMultipart(key, data);
    const Key = this.#key(key);
    await this.#request("PUT", key, (signal) =>
      this.#client.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key,
          Body: data,
          ContentLength: data.byteLength,
        }),
        { abortSignal: signal },
      ));
  }

  async #putMultipart(key: string, data: Uint8Array): Promise<void> {
    const Bucket = this.location.bucket;
    const Key = this.#key(key);
    const created = await this.#request(
      "CreateMultipartUpload",
      key,
      (signal) =>
        this.#client.send(new CreateMultipartUploadCommand({ Bucket, Key }), {
          abortSignal: signal,
        }),
    );
    const UploadId = created.UploadId;
    if (UploadId === undefined) {
      throw new S3StoreError(`S3 CreateMultipartUpload for "${key}" returned no upload id`);
    }
    try {
      const count = Math.ceil(data.byteLength / this.#partSize);
      const etags: string[] = new Array(count);
      let next = 0;
      const worker = async () => {
        while (next < count) {
          const i = next++;
          const body = data.subarray(i * this.#partSize, (i + 1) * this.#partSize);
          const res = await this.#request(`UploadPart ${i + 1}`, key, (signal) =>
            this.#client.send(
              new UploadPartCommand({
                Bucket,
                Key,
                UploadId,
                PartNumber: i + 1,
                Body: body,
                ContentLength: body.byteLength,
              }),
              { abortSignal: signal },
            ));
          if (res.ETag === undefined) {
            throw new S3StoreError(`S3 UploadPart ${i + 1} of "${key}" returned no ETag`);
          }
          etags[i] = res.ETag;
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.#partConcurrency, count) }, worker));
      await this.#request("CompleteMultipartUpload", key, (signal) =>
        this.#client.send(
          new CompleteMultipartUploadCommand({
            Bucket,
            Key,
            UploadId,
            MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
          }),
          { abortSignal: signal },
        ));
    } catch (err) {
      await this.#request(
        "AbortMultipartUpload",
        key,
        (signal) =>
          this.#client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }), {
            abortSignal: signal,
          }),
      ).catch(() => {}); // best effort; a lifecycle rule can clean up the rest
      throw err;
    }
  }

  /**
   * Reads `length` bytes at `offset` (to the end by default) with a ranged GET. A range past the
   * end gives the bytes that exist (none for a 416 answer).
   */
  async get(key: string, offset = 0, length?: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`Invalid offset ${offset} for "${key}"`);
    }
    if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
      throw new RangeError(`Invalid length ${length} for "${key}"`);
    }
    if (length === 0) {
      if ((await this.head(key)) === undefined) throw new NotFoundError(key);
      return new Uint8Array(0);
    }
    // Never a suffix range (bytes=-N): some servers answer it wrongly.
    let range: string | undefined;
    if (length !== undefined) range = `bytes=${offset}-${offset + length - 1}`;
    else if (offset > 0) range = `bytes=${offset}-`;
    const Key = this.#key(key);
    try {
      return await this.#request("GET", key, async (signal) => {
        const res = await this.#client.send(
          new GetObjectCommand({
            Bucket: this.location.bucket,
            Key,
            ...(range === undefined ? {} : { Range: range }),
          }),
          { abortSignal: signal },
        );
        const body = fetchedBody(res.Body) ??
          (res.Body === undefined ? new Uint8Array(0) : await res.Body.transformToByteArray());
        if (range === undefined) return body;
        // Keep only the bytes asked for, whatever the server sent: some servers ignore the range
        // (200, whole object), and s3rver answers "bytes=0-0" with the whole object.
        const sent = parseContentRange(res.ContentRange) ?? { start: 0, total: undefined };
        if (sent.total !== undefined && offset >= sent.total) {
          // Nothing to read; s3rver even promises a byte of an empty object it never sends.
          (res.Body as { destroy?: () => void }).destroy?.();
          return new Uint8Array(0);
        }
        const end = length === undefined ? body.byteLength : offset + length - sent.start;
        if (sent.start === offset && body.byteLength <= end) return body;
        return body.slice(Math.max(0, offset - sent.start), Math.max(0, end));
      });
    } catch (err) {
      const { status, code } = describe(err instanceof S3StoreError ? err.cause : err);
      if (code === "NoSuchKey" || status === 404) throw new NotFoundError(key, { cause: err });
      if (status === 416 || code === "InvalidRange") return new Uint8Array(0);
      throw err;
    }
  }

  /** The object's size, or `undefined` if there is no such object. */
  async head(key: string): Promise<ObjectInfo | undefined> {
    const Key = this.#key(key);
    try {
      const res = await this.#request(
        "HEAD",
        key,
        (signal) =>
          this.#client.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key }), {
            abortSignal: signal,
          }),
      );
      return objectInfo(key, res.ContentLength, res.LastModified);
    } catch (err) {
      const { status, code } = describe(err instanceof S3StoreError ? err.cause : err);
      if (status === 404 || code === "NotFound" || code === "NoSuchKey") return undefined;
      throw err;
    }
  }

  /** Deletes keys in batches of 1000 (DeleteObjects); missing keys are not an error. */
  async delete(keys: readonly string[]): Promise<void> {
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += 1000) batches.push(keys.slice(i, i + 1000));
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        const res = await this.#request(
          `DELETE ${batch.length} keys`,
          batch[0]!,
          (signal) =>
            this.#client.send(
              new DeleteObjectsCommand({
                Bucket: this.location.bucket,
                Delete: { Objects: batch.map((k) => ({ Key: this.#key(k) })), Quiet: true },
              }),
              { abortSignal: signal },
            ),
        );
        const failed = (res.Errors ?? []).filter((e) => e.Code !== "NoSuchKey");
        if (failed.length > 0) {
          const first = failed[0]!;
          throw new S3StoreError(
            `S3 DeleteObjects failed for ${failed.length} keys at ${this.#where()}, first ` +
              `"${first.Key}": ${first.Code} ${first.Message ?? ""}`.trimEnd(),
            { code: first.Code },
          );
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, batches.length) }, worker));
  }

  /**
   * Lists keys starting with `prefix`, in ascending order, after `startAfter`. Returns up to
   * `limit` objects (default 1000), fetching several ListObjectsV2 pages if needed.
   */
  async list(
    prefix: string,
    options: { startAfter?: string; limit?: number } = {},
  ): Promise<ListPage> {
    const limit = options.limit ?? 1000;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`Invalid list limit ${limit}`);
    }
    const base = this.location.prefix;
    const objects: ObjectInfo[] = [];
    let startAfter = options.startAfter !== undefined && options.startAfter >= prefix
      ? base + options.startAfter
      : undefined;
    for (;;) {
      const maxKeys = Math.min(1000, limit - objects.length);
      const res = await this.#request("LIST", prefix, (signal) =>
        this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.location.bucket,
            Prefix: base + prefix,
            MaxKeys: maxKeys,
            ...(startAfter === undefined ? {} : { StartAfter: startAfter }),
          }),
          { abortSignal: signal },
        ));
      const contents = res.Contents ?? [];
      for (const o of contents) {
        if (o.Key === undefined) continue;
        objects.push(objectInfo(o.Key.slice(base.length), o.Size, o.LastModified));
      }
      const truncated = res.IsTruncated === true;
      const last = contents.at(-1)?.Key;
      if (!truncated || last === undefined) {
        return { objects, truncated: truncated && last !== undefined };
      }
      if (objects.length >= limit) return { objects, truncated: true };
      startAfter = last;
    }
  }

  /** Closes the connection pool and aborts requests in flight; idempotent. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#closing.abort(new S3StoreError(`S3 store ${this.url} was closed`));
    this.#client.destroy();
    this.#agent.destroy();
    return Promise.resolve();
  }

  /** Same as {@linkcode S3BlockStore.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #key(key: string): string {
    return this.location.prefix + key;
  }

  #where(): string {
    return this.location.endpoint ?? `AWS S3 (${this.location.region})`;
  }

  /**
   * Runs `op` in a connection slot with a timeout, retrying transient failures with exponential
   * backoff and jitter. Errors that are not transient (404, 403, ...) are rethrown as they are;
   * the last transient one is wrapped in an {@linkcode S3StoreError}.
   */
  async #request<T>(
    what: string,
    key: string,
    op: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    let lastErr: unknown;
    for (let attempt = 1;; attempt++) {
      if (this.#closed) throw new S3StoreError(`S3 store ${this.url} is closed`);
      const timeout = new AbortController();
      const release = await this.#slots.acquire();
      const timer = setTimeout(
        () =>
          timeout.abort(
            new S3StoreError(`S3 ${what} timed out after ${this.#timeoutMs} ms`, {
              code: "TimeoutError",
            }),
          ),
        this.#timeoutMs,
      );
      try {
        return await op(AbortSignal.any([timeout.signal, this.#closing.signal]));
      } catch (err) {
        lastErr = timeout.signal.aborted ? timeout.signal.reason : err;
        if (this.#closed || !isTransient(lastErr)) throw err;
      } finally {
        clearTimeout(timer);
        release();
      }
      if (attempt >= this.#maxAttempts) break;
      const ceiling = Math.min(this.#maxBackoffMs, this.#baseBackoffMs * 2 ** (attempt - 1));
      const delay = ceiling / 2 + Math.random() * ceiling / 2; // "equal jitter"
      await new Promise((r) => setTimeout(r, delay));
    }
    const { status, code } = describe(lastErr);
    const reason = lastErr instanceof Error ? lastErr.message : String(lastErr);
    throw new S3StoreError(
      `S3 ${what} "${key}" in bucket "${this.location.bucket}" at ${this.#where()} failed after ` +
        `${this.#maxAttempts} attempts: ${reason || code || `HTTP ${status}`}`,
      { cause: lastErr, status, code },
    );
  }
}

/** Opens an {@linkcode S3BlockStore} and {@linkcode S3BlockStore.check | checks} the bucket. */
export async function openS3BlockStore(
  url: string,
  options: S3StoreOptions = {},
): Promise<S3BlockStore> {
  const store = new S3BlockStore(url, options);
  try {
    await store.check();
    return store;
  } catch (err) {
    await store.close();
    throw err;
  }
}

const TRANSIENT_CODES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalError",
  "ServiceUnavailable",
  "TooManyRequestsException",
  "TimeoutError",
  "RequestTimeTooSkewed",
]);
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
]);

function isTransient(err: unknown): boolean {
  const { status, code } = describe(err);
  if (status !== undefined) {
    return status >= 500 || status === 429 || TRANSIENT_CODES.has(code ?? "");
  }
  if (code !== undefined && (TRANSIENT_CODES.has(code) || NETWORK_CODES.has(code))) return true;
  if (typeof err === "object" && err !== null) {
    const e = err as { $retryable?: unknown; message?: unknown; name?: unknown; cause?: unknown };
    if (e.$retryable) return true;
    if (e.name === "AbortError" || e.name === "TimeoutError") return true;
    if (
      typeof e.message === "string" &&
      /socket hang up|ECONNRESET|ECONNREFUSED|EPIPE/.test(e.message)
    ) {
      return true;
    }
    if (e.cause !== undefined && e.cause !== err) return isTransient(e.cause);
  }
  return false;
}

/** The HTTP status and S3 error code (or network error code) of an SDK error. */
function describe(err: unknown): { status: number | undefined; code: string | undefined } {
  if (typeof err !== "object" || err === null) return { status: undefined, code: undefined };
  const e = err as {
    $metadata?: { httpStatusCode?: number };
    $response?: { statusCode?: number };
    Code?: string;
    code?: string;
    name?: string;
    status?: number;
  };
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode ??
    (err instanceof S3StoreError ? e.status : undefined);
  const code = e.Code ?? (typeof e.code === "string" ? e.code : undefined) ??
    (e.name !== "Error" ? e.name : undefined);
  return { status, code };
}

/** The first byte position and the total size from a `Content-Range: bytes S-E/T` header. */
function parseContentRange(
  header: string | undefined,
): { start: number; total: number | undefined } | undefined {
  const m = header === undefined ? null : /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header.trim());
  if (m === null) return undefined;
  return { start: Number(m[1]), total: m[2] === "*" ? undefined : Number(m[2]) };
}

function positiveInt(n: number, name: string): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`Invalid ${name} ${n}`);
  return n;
}

/** Counts requests in flight; waiters are served in order. */
class Semaphore {
  #free: number;
  readonly #waiters: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#waiters.push(r));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiters.shift();
      if (next !== undefined) next();
      else this.#free++;
    };
  }
}

// `openBlockStore("s3://...")` opens and checks an S3 store once this module is loaded.
registerStoreScheme("s3", (url) => openS3BlockStore(url.href));
