/**
 * An HTTP handler for the AWS SDK that sends its signed requests with Deno's native `fetch`.
 *
 * The SDK's Node-compatible handler parses each answer in JavaScript (`node:http`) and its stream
 * collector concatenates the body from 64 KiB chunks: for 4 MiB blocks that is about half the CPU
 * time of a cold sequential read. Here the SDK still resolves the endpoint, signs the request,
 * parses errors and answers; only the transfer changes: the request goes through `fetch`, and the
 * body is read by its length into one buffer (`readBody`). The body is handed to the SDK as a
 * one-chunk stream, and {@linkcode fetchedBody} lets the store take the bytes without collecting
 * the stream at all.
 *
 * Requests that carry a body go to the fallback handler (the SDK's `node:http` one): measured on
 * 4 MiB PUTs, Deno's `fetch` spent more CPU sending a body than `node:http` does.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { Readable } from "node:stream";

/** The part of the SDK's `HttpRequest` this handler reads. */
interface SdkRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | string[] | null | undefined>;
  headers: Record<string, string>;
  body?: unknown;
}

/** The SDK's `HttpResponse` shape (it checks the shape, not the class). */
interface SdkResponse {
  statusCode: number;
  reason?: string;
  headers: Record<string, string>;
  body: Readable;
}

/** A handler the SDK can use, as `requestHandler`. */
export interface SdkHandler {
  handle(
    request: SdkRequest,
    options?: { abortSignal?: AbortSignal },
  ): Promise<{ response: SdkResponse }>;
  updateHttpClientConfig?(key: never, value: never): void;
  httpHandlerConfigs?(): Record<string, unknown>;
  destroy?(): void;
}

const bodies = new WeakMap<object, Uint8Array>();

/**
 * The bytes of a response body read by {@linkcode FetchHandler}, or `undefined` for any other
 * body (collect that one as usual).
 */
export function fetchedBody(body: unknown): Uint8Array | undefined {
  return typeof body === "object" && body !== null ? bodies.get(body) : undefined;
}

/**
 * The whole body of `res`. With a `content-length`, read with a BYOB reader straight into one
 * buffer of that size: `arrayBuffer()` collects the body in fresh zeroed chunks and then copies them
 * into one, and on 4 MiB GETs that cost about half the time of the read (issue #13: a fifth of the
 * daemon's CPU in a cold sequential read from S3; `bench/README.md`).
 */
async function readBody(res: Response): Promise<Uint8Array> {
  const length = Number(res.headers.get("content-length") ?? NaN);
  if (res.body === null || !Number.isSafeInteger(length) || length <= 0) {
    return new Uint8Array(await res.arrayBuffer());
  }
  const reader = res.body.getReader({ mode: "byob" });
  try {
    let buffer = new ArrayBuffer(length);
    let got = 0;
    while (got < length) {
      // Each read detaches the buffer it was given and returns a view of it moved to a new one.
      const { value, done } = await reader.read(new Uint8Array(buffer, got, length - got));
      if (value !== undefined) {
        buffer = value.buffer as ArrayBuffer;
        got += value.byteLength;
      }
      if (done) break;
    }
    if (got < length) throw new Error(`The body ended after ${got} of ${length} bytes`);
    // Read to its end, so that the connection goes back to the pool.
    const end = await reader.read(new Uint8Array(1));
    if (!end.done) throw new Error(`The body is longer than its ${length} bytes`);
    return new Uint8Array(buffer);
  } finally {
    reader.releaseLock();
  }
}

/** Headers `fetch` sets itself from the URL and the body, or that must not be forwarded. */
const OWN_HEADERS = new Set([
  "host",
  "content-length",
  "expect",
  "transfer-encoding",
  "connection",
]);

/** SigV4's URI encoding: `encodeURIComponent` plus the characters it leaves alone. */
function escape(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function queryString(query: SdkRequest["query"]): string {
  const parts: string[] = [];
  for (const key of Object.keys(query ?? {}).sort()) {
    const value = query![key];
    if (value === undefined) continue;
    if (value === null) parts.push(escape(key));
    else if (Array.isArray(value)) {
      for (const v of value) parts.push(`${escape(key)}=${escape(v)}`);
    } else parts.push(`${escape(key)}=${escape(value)}`);
  }
  return parts.join("&");
}

/**
 * A network failure (no HTTP answer), with a `code` the store's retry logic knows:
 * `ECONNREFUSED` when nothing listens, `ECONNRESET` for anything else.
 */
export class FetchNetworkError extends Error {
  /** `ECONNREFUSED` or `ECONNRESET`. */
  readonly code: string;
  constructor(url: string, cause: unknown) {
    // fetch says "fetch failed"; the reason is further down the cause chain.
    const reasons: string[] = [];
    for (let e: unknown = cause, depth = 0; e !== undefined && depth < 5; depth++) {
      reasons.push(e instanceof Error ? e.message : String(e));
      e = e instanceof Error ? e.cause : undefined;
    }
    const reason = reasons.join(": ");
    super(`Request to ${url} failed: ${reason}`, { cause });
    this.name = "FetchNetworkError";
    this.code = /refused/i.test(reason) ? "ECONNREFUSED" : "ECONNRESET";
  }
}

/** Sends the SDK's requests with `fetch`; see the module documentation. */
export class FetchHandler implements SdkHandler {
  #fallback: SdkHandler;

  /** `fallback` serves the requests that carry a body. */
  constructor(fallback: SdkHandler) {
    this.#fallback = fallback;
  }

  async handle(
    request: SdkRequest,
    options: { abortSignal?: AbortSignal } = {},
  ): Promise<{ response: SdkResponse }> {
    const { body, method } = request;
    if (body != null && body !== "") {
      return await this.#fallback.handle(request, options);
    }
    const signal = options.abortSignal;
    signal?.throwIfAborted();
    const port = request.port ? `:${request.port}` : "";
    const query = queryString(request.query);
    const url = `${request.protocol}//${request.hostname}${port}${request.path}` +
      (query === "" ? "" : `?${query}`);
    const headers = new Headers();
    for (const [name, value] of Object.entries(request.headers)) {
      if (!OWN_HEADERS.has(name.toLowerCase())) headers.set(name, value);
    }
    let bytes: Uint8Array;
    let res: Response;
    try {
      res = await fetch(url, { method, headers, signal });
      bytes = await readBody(res);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw new FetchNetworkError(url, err);
    }
    const out: Record<string, string> = {};
    res.headers.forEach((value, name) => out[name] = value);
    const stream = Readable.from(
      bytes.byteLength === 0 ? [] : [Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)],
    );
    bodies.set(stream, bytes);
    return {
      response: { statusCode: res.status, reason: res.statusText, headers: out, body: stream },
    };
  }

  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, unknown> {
    return {};
  }

  destroy(): void {
    this.#fallback.destroy?.();
  }
}
