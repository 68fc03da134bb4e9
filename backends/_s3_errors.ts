/**
 * Errors of the S3 block store: {@linkcode S3StoreError} and the classification of the SDK's
 * errors into transient (worth a retry) and final ones (private to `store_s3.ts`, which
 * re-exports {@linkcode S3StoreError}).
 *
 * @module
 */

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

/** Whether `err` is worth another attempt: 5xx, throttling, timeouts, network errors. */
export function isTransient(err: unknown): boolean {
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
export function describe(err: unknown): { status: number | undefined; code: string | undefined } {
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
