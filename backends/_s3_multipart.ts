/**
 * Multipart uploads of large objects to S3 (private to `store_s3.ts`).
 *
 * @module
 */

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import pLimit from "p-limit";
import { S3StoreError } from "./_s3_errors.ts";
import type { S3Pool } from "./_s3_pool.ts";
import { getLog } from "../core/log.ts";

const log = getLog("s3");

/** Where and how to upload one object in parts. */
export interface MultipartTarget {
  /** The bucket. */
  Bucket: string;
  /** The object's full key (with the store's prefix). */
  Key: string;
  /** The store's key, for messages. */
  key: string;
  /** Bytes per part (the last one may be shorter). */
  partSize: number;
  /** Parts uploaded at the same time. */
  partConcurrency: number;
}

/**
 * Uploads `data` as a multipart upload: creates it, uploads the parts `partConcurrency` at a time,
 * completes it. On failure it aborts the upload (best effort) and rethrows.
 */
export async function putMultipart(
  pool: S3Pool,
  target: MultipartTarget,
  data: Uint8Array,
): Promise<void> {
  const { Bucket, Key, key, partSize } = target;
  const created = await pool.request(
    "CreateMultipartUpload",
    key,
    (signal) =>
      pool.client.send(new CreateMultipartUploadCommand({ Bucket, Key }), {
        abortSignal: signal,
      }),
  );
  const UploadId = created.UploadId;
  if (UploadId === undefined) {
    throw new S3StoreError(`S3 CreateMultipartUpload for "${key}" returned no upload id`);
  }
  const limit = pLimit(target.partConcurrency);
  try {
    const count = Math.ceil(data.byteLength / partSize);
    const etags = await Promise.all(Array.from({ length: count }, (_, i) =>
      limit(async () => {
        const body = data.subarray(i * partSize, (i + 1) * partSize);
        const res = await pool.request(`UploadPart ${i + 1}`, key, (signal) =>
          pool.client.send(
            new UploadPartCommand({
              Bucket,
              Key,
              UploadId,
              PartNumber: i + 1,
              Body: body,
              ContentLength: body.byteLength,
            }),
            { abortSignal: signal },
          ), "put");
        if (res.ETag === undefined) {
          throw new S3StoreError(`S3 UploadPart ${i + 1} of "${key}" returned no ETag`);
        }
        return res.ETag;
      })));
    await pool.request("CompleteMultipartUpload", key, (signal) =>
      pool.client.send(
        new CompleteMultipartUploadCommand({
          Bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
        }),
        { abortSignal: signal },
      ));
  } catch (err) {
    limit.clearQueue(); // parts not started yet would only be thrown away
    await pool.request(
      "AbortMultipartUpload",
      key,
      (signal) =>
        pool.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }), {
          abortSignal: signal,
        }),
    ).catch((error) => {
      // Best effort; a lifecycle rule can clean up the rest.
      log.debug("Abort of the multipart upload of {key} failed", { key, error });
    });
    throw err;
  }
}
