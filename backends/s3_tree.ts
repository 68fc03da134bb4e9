/**
 * An S3 prefix of plain objects as one end of `slayerfs sync` (`core/sync/tree.ts`): the object
 * `PREFIX` + `a/b.txt` is the file `a/b.txt`. URLs, credentials (`AWS_ACCESS_KEY_ID` /
 * `AWS_SECRET_ACCESS_KEY` or the SDK's other sources), timeouts and retries are those of the S3
 * block store (`store_s3.ts`). An upload records the source's mtime in the object's metadata
 * (`x-amz-meta-mtime`, ms since the epoch); objects over 16 MiB go up in 8 MiB parts (an
 * interrupted one is aborted, and the next run uploads the file again).
 *
 * @module
 */

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { fetchedBody } from "./_s3_fetch.ts";
import { S3Pool } from "./_s3_pool.ts";
import { formatS3Url, parseS3Url, type S3Location } from "./_s3_url.ts";
import { S3BlockStore } from "./store_s3.ts";
import type { SyncEntry, SyncReader, SyncTree, SyncWriter } from "../core/sync/tree.ts";

const MiB = 2 ** 20;
/** Objects larger than this are uploaded in parts. */
const MULTIPART_OVER = 16 * MiB;
/** The size of each part. */
const PART_SIZE = 8 * MiB;

/** An S3 prefix of plain objects. */
export class S3Tree implements SyncTree {
  /** The canonical URL, for messages. */
  readonly where: string;
  /** S3 sets LastModified itself. */
  readonly keepsMtime = false;
  readonly #loc: S3Location;
  readonly #pool: S3Pool;
  readonly #url: string;

  /** A tree at the `s3://BUCKET/PREFIX?endpoint=...` URL; makes no request. */
  constructor(url: string) {
    this.#url = url;
    this.#loc = parseS3Url(url);
    this.where = formatS3Url(this.#loc);
    this.#pool = new S3Pool(this.#loc, this.where, {
      maxConnections: 32,
      getTimeoutMs: this.#loc.getTimeoutMs,
      putTimeoutMs: this.#loc.putTimeoutMs,
      maxAttempts: this.#loc.retries + 1,
      baseBackoffMs: 100,
      maxBackoffMs: 5_000,
    });
  }

  /** Checks that the bucket is there and may be listed, with the block store's clear errors. */
  async check(): Promise<void> {
    const store = new S3BlockStore(this.#url);
    try {
      await store.check();
    } finally {
      await store.close();
    }
  }

  async *list(): AsyncIterable<SyncEntry> {
    const prefix = this.#loc.prefix;
    let startAfter: string | undefined;
    for (;;) {
      const res = await this.#pool.request("LIST", prefix, (signal) =>
        this.#pool.client.send(
          new ListObjectsV2Command({
            Bucket: this.#loc.bucket,
            Prefix: prefix,
            ...(startAfter === undefined ? {} : { StartAfter: startAfter }),
          }),
          { abortSignal: signal },
        ));
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined || o.Key.endsWith("/")) continue; // folder markers
        yield {
          path: o.Key.slice(prefix.length),
          size: o.Size ?? 0,
          mtime: o.LastModified?.getTime() ?? 0,
        };
      }
      const last = res.Contents?.at(-1)?.Key;
      if (res.IsTruncated !== true || last === undefined) return;
      startAfter = last;
    }
  }

  open(path: string): Promise<SyncReader> {
    const Key = this.#loc.prefix + path;
    const Bucket = this.#loc.bucket;
    return Promise.resolve({
      read: (offset, length) => {
        if (length <= 0) return Promise.resolve(new Uint8Array(0));
        return this.#pool.request("GET", path, async (signal) => {
          const res = await this.#pool.client.send(
            new GetObjectCommand({ Bucket, Key, Range: `bytes=${offset}-${offset + length - 1}` }),
            { abortSignal: signal },
          );
          const body = fetchedBody(res.Body) ??
            (res.Body === undefined ? new Uint8Array(0) : await res.Body.transformToByteArray());
          // A server that ignores the range sends the whole object.
          return res.ContentRange === undefined && body.byteLength > length
            ? body.slice(offset, offset + length)
            : body;
        });
      },
      close: () => Promise.resolve(),
    });
  }

  async create(path: string, size: number, mtime: number): Promise<SyncWriter> {
    const Bucket = this.#loc.bucket;
    const Key = this.#loc.prefix + path;
    const Metadata = { mtime: String(Math.round(mtime)) };
    const client = this.#pool.client;
    const send = <T>(what: string, op: (abortSignal: AbortSignal) => Promise<T>) =>
      this.#pool.request(what, path, op, "put");
    if (size <= MULTIPART_OVER) {
      const body = new Uint8Array(size);
      let at = 0;
      return {
        write(chunk) {
          body.set(chunk, at);
          at += chunk.byteLength;
          return Promise.resolve();
        },
        async close() {
          const Body = body.subarray(0, at);
          await send(
            "PUT",
            (abortSignal) =>
              client.send(new PutObjectCommand({ Bucket, Key, Body, Metadata }), { abortSignal }),
          );
        },
        abort: () => Promise.resolve(),
      };
    }
    const created = await send(
      "CreateMultipartUpload",
      (abortSignal) =>
        client.send(new CreateMultipartUploadCommand({ Bucket, Key, Metadata }), { abortSignal }),
    );
    const UploadId = created.UploadId!;
    const parts: { PartNumber: number; ETag: string }[] = [];
    let pending = new Uint8Array(0);
    const upload = async (data: Uint8Array) => {
      const PartNumber = parts.length + 1;
      const res = await send(
        `part ${PartNumber}`,
        (abortSignal) =>
          client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: data }), {
            abortSignal,
          }),
      );
      parts.push({ PartNumber, ETag: res.ETag ?? "" });
    };
    return {
      async write(chunk) {
        const joined = new Uint8Array(pending.byteLength + chunk.byteLength);
        joined.set(pending);
        joined.set(chunk, pending.byteLength);
        let off = 0;
        for (; joined.byteLength - off >= PART_SIZE; off += PART_SIZE) {
          await upload(joined.slice(off, off + PART_SIZE));
        }
        pending = joined.slice(off);
      },
      async close() {
        if (pending.byteLength > 0 || parts.length === 0) await upload(pending);
        await send("CompleteMultipartUpload", (abortSignal) =>
          client.send(
            new CompleteMultipartUploadCommand({
              Bucket,
              Key,
              UploadId,
              MultipartUpload: { Parts: parts },
            }),
            { abortSignal },
          ));
      },
      async abort() {
        await send(
          "AbortMultipartUpload",
          (abortSignal) =>
            client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }), {
              abortSignal,
            }),
        );
      },
    };
  }

  async remove(path: string): Promise<void> {
    await this.#pool.request("DELETE", path, (signal) =>
      this.#pool.client.send(
        new DeleteObjectCommand({ Bucket: this.#loc.bucket, Key: this.#loc.prefix + path }),
        { abortSignal: signal },
      ), "put");
  }

  close(): Promise<void> {
    this.#pool.close();
    return Promise.resolve();
  }
}
