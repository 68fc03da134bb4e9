/**
 * A {@linkcode BlockStore} on Amazon S3 or any S3-compatible server.
 *
 * Storage URL: `s3://BUCKET/PREFIX?endpoint=http://HOST:PORT&region=R&path_style=true`, plus
 * `get_timeout=SEC`, `put_timeout=SEC`, `retries=N`, `sign_payload=true` and `http=node`
 * (see {@linkcode S3Location}).
 * Credentials never appear in the URL: they come from the AWS SDK's default provider chain
 * (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE` and the shared config files, ...)
 * unless passed explicitly in {@linkcode S3StoreOptions.credentials}.
 *
 * Every request goes through a bounded pool of connections, has its own timeout (`get_timeout=SEC`
 * for requests without a body, default 30; `put_timeout=SEC` for those with one, default 60), and
 * is retried `retries=N` times (default 5) with exponential backoff and jitter on 5xx answers,
 * throttling, timeouts and network errors. The first failed attempt after a success is logged as
 * a warning, the retries that follow at debug level, and the first success after failures at info
 * level. Objects larger than {@linkcode S3StoreOptions.multipartThreshold} are uploaded in parts.
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

import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import pLimit from "p-limit";
import { fetchedBody } from "./_s3_fetch.ts";
import { describe, S3StoreError } from "./_s3_errors.ts";
import { putMultipart } from "./_s3_multipart.ts";
import { S3Pool } from "./_s3_pool.ts";
import { formatS3Url, parseS3Url, S3_DEFAULTS, type S3Location } from "./_s3_url.ts";
import {
  type BlockStore,
  type ListPage,
  NotFoundError,
  type ObjectInfo,
  type StoreLimits,
} from "../core/block_store.ts";

export { formatS3Url, parseS3Url, S3_DEFAULTS, type S3Location, S3StoreError };

const MiB = 1024 * 1024;

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
  /**
   * Time allowed for one request of either kind, including reading the answer's body. Default:
   * the URL's `get_timeout` (30 s) for requests without a body, `put_timeout` (60 s) for others.
   */
  requestTimeoutMs?: number;
  /** Attempts per request, the first included. Default: the URL's `retries` + 1 (6). */
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

/** An {@linkcode ObjectInfo} from what S3 says of an object. */
function objectInfo(key: string, size?: number, lastModified?: Date): ObjectInfo {
  const info: ObjectInfo = { key, size: size ?? 0 };
  if (lastModified !== undefined) info.mtime = lastModified.getTime();
  return info;
}

/** A block store on an S3 bucket, under a key prefix. */
export class S3BlockStore implements BlockStore {
  /** The canonical storage URL, without credentials. */
  readonly url: string;
  /** `concurrency` is what the core should keep in flight. */
  readonly limits: StoreLimits;
  /** Where the blocks are. */
  readonly location: S3Location;
  readonly #pool: S3Pool;
  readonly #multipartThreshold: number;
  readonly #partSize: number;
  readonly #partConcurrency: number;

  /** Creates a store for `url` (see {@linkcode parseS3Url}); makes no request. */
  constructor(url: string, options: S3StoreOptions = {}) {
    this.location = parseS3Url(url);
    this.url = formatS3Url(this.location);
    const maxConnections = positiveInt(options.maxConnections ?? 32, "maxConnections");
    this.limits = { concurrency: positiveInt(options.concurrency ?? 16, "concurrency") };
    const loc = this.location;
    const getTimeoutMs = positiveInt(options.requestTimeoutMs ?? loc.getTimeoutMs, "getTimeoutMs");
    const putTimeoutMs = positiveInt(options.requestTimeoutMs ?? loc.putTimeoutMs, "putTimeoutMs");
    const maxAttempts = positiveInt(options.maxAttempts ?? loc.retries + 1, "maxAttempts");
    this.#partSize = positiveInt(options.partSize ?? 8 * MiB, "partSize");
    this.#multipartThreshold = Math.max(
      positiveInt(options.multipartThreshold ?? 16 * MiB, "multipartThreshold"),
      this.#partSize,
    );
    this.#partConcurrency = positiveInt(options.partConcurrency ?? 4, "partConcurrency");
    this.#pool = new S3Pool(this.location, this.url, {
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      maxConnections,
      getTimeoutMs,
      putTimeoutMs,
      maxAttempts,
      baseBackoffMs: options.baseBackoffMs ?? 100,
      maxBackoffMs: options.maxBackoffMs ?? 5_000,
    });
  }

  /**
   * Verifies that the bucket exists and that the credentials may list it. Throws an
   * {@linkcode S3StoreError} that says which, e.g. `Bucket "x" does not exist at http://...`.
   */
  async check(): Promise<void> {
    const { bucket } = this.location;
    try {
      await this.#pool.request("check", "", (signal) =>
        this.#pool.client.send(
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
    if (data.byteLength > this.#multipartThreshold) {
      return await putMultipart(this.#pool, {
        Bucket: this.location.bucket,
        Key: this.#key(key),
        key,
        partSize: this.#partSize,
        partConcurrency: this.#partConcurrency,
      }, data);
    }
    const Key = this.#key(key);
    await this.#pool.request("PUT", key, (signal) =>
      this.#pool.client.send(
        new PutObjectCommand({
          Bucket: this.location.bucket,
          Key,
          Body: data,
          ContentLength: data.byteLength,
        }),
        { abortSignal: signal },
      ), "put");
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
      return await this.#pool.request("GET", key, async (signal) => {
        const res = await this.#pool.client.send(
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
      const res = await this.#pool.request(
        "HEAD",
        key,
        (signal) =>
          this.#pool.client.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key }), {
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

  /** Deletes keys in batches of 1000 (DeleteObjects), 4 at a time; missing keys are not an error. */
  async delete(keys: readonly string[]): Promise<void> {
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += 1000) batches.push(keys.slice(i, i + 1000));
    const limit = pLimit(4);
    await Promise.all(batches.map((batch) => limit(() => this.#deleteBatch(batch))));
  }

  async #deleteBatch(batch: string[]): Promise<void> {
    const res = await this.#pool.request(
      `DELETE ${batch.length} keys`,
      batch[0]!,
      (signal) =>
        this.#pool.client.send(
          new DeleteObjectsCommand({
            Bucket: this.location.bucket,
            Delete: { Objects: batch.map((k) => ({ Key: this.#key(k) })), Quiet: true },
          }),
          { abortSignal: signal },
        ),
      "put",
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
      const res = await this.#pool.request("LIST", prefix, (signal) =>
        this.#pool.client.send(
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
    this.#pool.close();
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
    return this.#pool.where();
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
