/**
 * The block store interface: where file data lives, as immutable objects.
 *
 * The core writes each block once under a key derived from its slice id and never modifies it;
 * it deletes blocks when no file refers to them any more. Implementations: `mem://`,
 * `file:///dir` and `s3://bucket/prefix`. Decorators (prefixing, writeback staging, fault
 * injection) implement the same interface.
 *
 * @module
 */

/** Thrown by {@linkcode BlockStore.get} for a key that does not exist. */
export class NotFoundError extends Error {
  /** The missing key. */
  readonly key: string;
  /** Creates the error for `key`. */
  constructor(key: string, options?: ErrorOptions) {
    super(`No object with key "${key}"`, options);
    this.name = "NotFoundError";
    this.key = key;
  }
}

/** One object from a listing. */
export interface ObjectInfo {
  /** The object's key. */
  key: string;
  /** Its size in bytes. */
  size: number;
  /**
   * When the object was last written, in milliseconds since the epoch, if the store knows (S3's
   * `LastModified`, a file's mtime). `slayerfs gc` leaves objects of unknown age alone.
   */
  mtime?: number;
}

/** One page of a listing. */
export interface ListPage {
  /** The objects, by ascending key. */
  objects: ObjectInfo[];
  /** More objects follow: list again with `startAfter` set to the last key. */
  truncated: boolean;
}

/** What a store is good at; the core sizes its concurrency from it. */
export interface StoreLimits {
  /** How many requests to keep in flight for best throughput. */
  concurrency: number;
  /**
   * Whether a ranged `get` costs as much as reading the whole object (an object sealed whole
   * must be fetched whole to be opened). The core then writes blocks whole and reads them whole.
   */
  wholeObjects?: boolean;
  /**
   * Whether objects are local files, whose pages the kernel caches and reads ahead: the core then
   * reads only the segments a request needs, straight into its reply, and neither fetches blocks
   * whole nor ahead into its memory cache (unless a disk cache tier is configured).
   */
  local?: boolean;
}

/** A place to keep immutable blocks. All operations are idempotent. */
export interface BlockStore {
  /** A description without secrets, e.g. `file:///var/lib/slayerfs`. */
  readonly url: string;
  /** What the store is good at. */
  readonly limits: StoreLimits;
  /** Stores `data` under `key` (replacing it). The store must not keep `data` after resolving. */
  put(key: string, data: Uint8Array): Promise<void>;
  /**
   * Reads `length` bytes at `offset` (the whole object by default). A range past the end
   * returns the bytes that exist. Throws {@linkcode NotFoundError} for a missing key. With `into`
   * (at least `length` bytes), a store may read into it and return a view of it (a local file
   * store does, to save an allocation); others return a new array.
   */
  get(key: string, offset?: number, length?: number, into?: Uint8Array): Promise<Uint8Array>;
  /** The object's size, or `undefined` if it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Deletes keys; missing keys are not an error. */
  delete(keys: readonly string[]): Promise<void>;
  /** Lists keys starting with `prefix` in ascending order. */
  list(prefix: string, options?: { startAfter?: string; limit?: number }): Promise<ListPage>;
  /** Releases resources; idempotent. */
  close(): Promise<void>;
}
