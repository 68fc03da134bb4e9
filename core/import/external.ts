/**
 * External slices: file data that stays where it is, in an S3 object outside the volume
 * (`slayerfs import`, issue #14).
 *
 * An imported object of `size` bytes becomes one slice per chunk of the file, each covering its
 * part of the object; each block record has the flag `BLOCK_EXTERNAL` and the slice's reference
 * to the object (`E<id>` in the metadata: the object's S3 URL without secrets, its key, ETag and
 * the offset of the slice in it) says where its bytes are. Writes to the file add ordinary slices
 * on top (newer records shadow older ones), so the object itself is never written or deleted.
 *
 * {@linkcode ExternalStore} wraps the volume's block store: the first read of a slice's blocks
 * looks its reference up in the metadata (once per slice: a slice never changes kind), and a block
 * of an external slice, which the volume's store does not hold, is read from the range of the
 * object instead, without asking the store first, by a ranged GET with `If-Match: ETAG`; the
 * answer's ETag is compared too (for servers that ignore `If-Match`). An object changed or
 * deleted underneath fails the read with `EIO`, never with bytes of two versions. Blocks read this
 * way go through the block cache like any other.
 *
 * @module
 */

import { GetObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import { fetchedBody } from "../../backends/_s3_fetch.ts";
import { S3Pool } from "../../backends/_s3_pool.ts";
import { formatS3Url, parseS3Url } from "../../backends/_s3_url.ts";
import type { BlockStore, ListPage, ObjectInfo } from "../block_store.ts";
import type { KvEngine, KvTxn } from "../kv.ts";
import { Errno, FsError } from "../errno.ts";
import { parseBlockKey } from "../slice.ts";
import { externalKey } from "../meta/keys.ts";
import type { SliceId } from "../types.ts";

/** Where the bytes of an external slice are. */
export interface ExternalRef {
  /** The `s3://BUCKET/PREFIX?endpoint=...` URL of the import source (no secrets). */
  url: string;
  /** The object's key in the bucket (the prefix included). */
  key: string;
  /** The object's ETag when it was imported (quotes included, as S3 gives it). */
  etag: string;
  /** Where the slice starts in the object. */
  offset: number;
}

/** The metadata key of an external slice's reference (kept with the other keys). */
export { externalKey };

/** Encodes a reference for the metadata. */
export function encodeExternal(ref: ExternalRef): Uint8Array {
  return new TextEncoder().encode(JSON.stringify([ref.url, ref.key, ref.etag, ref.offset]));
}

/** Decodes a reference {@linkcode encodeExternal} made. */
export function decodeExternal(raw: Uint8Array): ExternalRef {
  const [url, key, etag, offset] = JSON.parse(new TextDecoder().decode(raw));
  return { url, key, etag, offset };
}

/** The reference of external slice `id`, if it is one. */
export async function externalRef(tx: KvTxn, id: SliceId): Promise<ExternalRef | undefined> {
  const raw = await tx.get(externalKey(id));
  return raw ? decodeExternal(raw) : undefined;
}

/** S3 clients, one per source URL (bucket, endpoint), shared by every external read. */
export class ExternalSources {
  #pools = new Map<string, { pool: S3Pool; bucket: string }>();

  #pool(url: string): { pool: S3Pool; bucket: string } {
    let p = this.#pools.get(url);
    if (!p) {
      const loc = parseS3Url(url);
      const pool = new S3Pool(loc, formatS3Url(loc), {
        maxConnections: 32,
        getTimeoutMs: loc.getTimeoutMs,
        putTimeoutMs: loc.putTimeoutMs,
        maxAttempts: loc.retries + 1,
        baseBackoffMs: 100,
        maxBackoffMs: 5_000,
      });
      this.#pools.set(url, p = { pool, bucket: loc.bucket });
    }
    return p;
  }

  /**
   * Bytes `[offset, offset+length)` of the referenced object, guarded by its ETag: `EIO` if the
   * object changed or is gone.
   */
  async read(ref: ExternalRef, offset: number, length: number): Promise<Uint8Array> {
    if (length <= 0) return new Uint8Array(0);
    const { pool, bucket } = this.#pool(ref.url);
    const from = ref.offset + offset;
    let res;
    try {
      res = await pool.request("GET", ref.key, (signal) =>
        pool.client.send(
          new GetObjectCommand({
            Bucket: bucket,
            Key: ref.key,
            Range: `bytes=${from}-${from + length - 1}`,
            IfMatch: ref.etag,
          }),
          { abortSignal: signal },
        ));
    } catch (err) {
      throw new FsError(
        Errno.EIO,
        `Imported object "${ref.key}" (ETag ${ref.etag}) cannot be read (changed or deleted ` +
          `since the import? run \`slayerfs import --refresh\`): ${err}`,
        { cause: err },
      );
    }
    const body = fetchedBody(res.Body) ??
      (res.Body === undefined ? new Uint8Array(0) : await res.Body.transformToByteArray());
    if (res.ETag !== undefined && res.ETag !== ref.etag) {
      throw new FsError(
        Errno.EIO,
        `Imported object "${ref.key}" changed since the import (ETag ${res.ETag}, imported ` +
          `${ref.etag}): run \`slayerfs import --refresh\``,
      );
    }
    if (res.ContentRange === undefined && body.byteLength > length) {
      return body.slice(from, from + length); // a server that ignores the range
    }
    return body;
  }

  /** The object's ETag and size now, or `undefined` if it is gone. */
  async head(url: string, key: string): Promise<{ etag: string; size: number } | undefined> {
    const { pool, bucket } = this.#pool(url);
    try {
      const res = await pool.request(
        "HEAD",
        key,
        (signal) =>
          pool.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), {
            abortSignal: signal,
          }),
      );
      return { etag: res.ETag ?? "", size: res.ContentLength ?? 0 };
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata
        ?.httpStatusCode ?? (err as { cause?: { $metadata?: { httpStatusCode?: number } } }).cause
        ?.$metadata?.httpStatusCode;
      if (status === 404 || /NotFound|404/.test(String(err))) return undefined;
      throw err;
    }
  }

  /** Closes the clients. */
  close(): void {
    for (const { pool } of this.#pools.values()) pool.close();
    this.#pools.clear();
  }
}

/**
 * The volume's block store with external slices read from their objects (see the module). Every
 * other operation is the wrapped store's: listing, deleting and writing never reach an external
 * object.
 */
export class ExternalStore implements BlockStore {
  readonly #inner: BlockStore;
  readonly #kv: KvEngine;
  readonly #blockSize: number;
  readonly #sources = new ExternalSources();
  /**
   * What each slice met is: external (its reference) or not (`null`). A slice never changes kind
   * (an import makes new slices), so the metadata is asked once per slice, not the store.
   */
  readonly #kinds = new Map<SliceId, ExternalRef | null>();
  /** Look-ups in flight, shared by the concurrent reads of a slice's blocks. */
  readonly #looking = new Map<SliceId, Promise<ExternalRef | null>>();
  readonly #onRead: ((bytes: number) => Promise<void>) | undefined;

  /**
   * Wraps `inner`, with references looked up in `kv` (a volume of `blockSize`). `onRead`, if
   * given, is called with the size of each range read from an imported object and awaited before
   * the range is returned (the mount's `--download-limit` waits there).
   */
  constructor(
    inner: BlockStore,
    kv: KvEngine,
    blockSize: number,
    onRead?: (bytes: number) => Promise<void>,
  ) {
    this.#inner = inner;
    this.#kv = kv;
    this.#blockSize = blockSize;
    this.#onRead = onRead;
  }

  /** The wrapped store's URL. */
  get url(): string {
    return this.#inner.url;
  }

  /** The wrapped store's limits. */
  get limits(): BlockStore["limits"] {
    return this.#inner.limits;
  }

  /** Stores a block in the wrapped store. */
  put(key: string, data: Uint8Array): Promise<void> {
    return this.#inner.put(key, data);
  }

  /**
   * A block: the range of its external object for a block of an external slice (the wrapped store
   * is not asked: it has no such block), else the wrapped store's.
   */
  async get(
    key: string,
    offset?: number,
    length?: number,
    into?: Uint8Array,
  ): Promise<Uint8Array> {
    const block = parseBlockKey(key);
    if (block) {
      const kind = this.#kinds.get(block.id);
      const ref = kind === undefined ? await this.#lookUp(block.id) : kind;
      if (ref) {
        const data = await this.#readBlock(ref, block, offset, length);
        await this.#onRead?.(data.byteLength);
        return data;
      }
    }
    return await this.#inner.get(key, offset, length, into);
  }

  /** Slice `id`'s reference, or `null` if it is not external; remembered either way. */
  #lookUp(id: SliceId): Promise<ExternalRef | null> {
    let p = this.#looking.get(id);
    if (!p) {
      p = this.#kv.txn((tx) => externalRef(tx, id), { readOnly: true }).then((ref) => {
        if (this.#kinds.size >= 100_000) this.#kinds.clear();
        this.#kinds.set(id, ref ?? null);
        return ref ?? null;
      }).finally(() => this.#looking.delete(id));
      this.#looking.set(id, p);
    }
    return p;
  }

  #readBlock(
    ref: ExternalRef,
    block: { index: number; length: number },
    offset = 0,
    length = block.length - offset,
  ): Promise<Uint8Array> {
    // Blocks of an external slice have the volume's block size (the last may be short).
    const start = block.index * this.#blockSize;
    const n = Math.max(0, Math.min(length, block.length - offset));
    return this.#sources.read(ref, start + offset, n);
  }

  /** The wrapped store's answer. */
  head(key: string): Promise<ObjectInfo | undefined> {
    return this.#inner.head(key);
  }

  /** Deletes from the wrapped store only. */
  delete(keys: readonly string[]): Promise<void> {
    return this.#inner.delete(keys);
  }

  /** Lists the wrapped store. */
  list(prefix: string, options?: { startAfter?: string; limit?: number }): Promise<ListPage> {
    return this.#inner.list(prefix, options);
  }

  /** Closes the S3 clients and the wrapped store. */
  async close(): Promise<void> {
    this.#sources.close();
    await this.#inner.close();
  }
}
