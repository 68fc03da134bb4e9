/**
 * Linux errno values and the one error class the core throws.
 *
 * Every failure inside the core is an {@linkcode FsError}; the FUSE adapter maps it to
 * `fuse_reply_err(errno)` in exactly one place, and the embedding API rethrows it.
 *
 * @module
 */

/** Linux x86_64 errno numbers used by SlayerFS. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  EDEADLK: 35,
  ENAMETOOLONG: 36,
  ENOLCK: 37,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EOVERFLOW: 75,
  ENOTSUP: 95,
  ENOTCONN: 107,
  ETIMEDOUT: 110,
  ESTALE: 116,
  EDQUOT: 122,
} as const;

/** One errno value. */
export type ErrnoValue = typeof Errno[keyof typeof Errno];

const names = new Map<number, string>(Object.entries(Errno).map(([k, v]) => [v, k]));

/** The symbolic name of an errno value, e.g. `"ENOENT"` for 2. */
export function errnoName(errno: number): string {
  return names.get(errno) ?? `E${errno}`;
}

/**
 * An error that carries the errno the caller should see.
 *
 * @example
 * ```ts
 * import { Errno, FsError } from "./errno.ts";
 * const err = new FsError(Errno.ENOENT, "No entry named \"a\"");
 * if (err.errno !== 2 || err.code !== "ENOENT") throw new Error("unexpected");
 * ```
 */
export class FsError extends Error {
  /** The positive errno value. */
  readonly errno: number;

  /** Creates an error with an errno and a message in sentence case. */
  constructor(errno: number, message?: string, options?: ErrorOptions) {
    super(message ?? errnoName(errno), options);
    this.name = "FsError";
    this.errno = errno;
  }

  /** The symbolic errno name, e.g. `"ENOENT"`. */
  get code(): string {
    return errnoName(this.errno);
  }
}

/** Maps any thrown value to an errno: `FsError` keeps its own, anything else is `EIO`. */
export function toErrno(err: unknown): number {
  if (err instanceof FsError) return err.errno;
  return Errno.EIO;
}
