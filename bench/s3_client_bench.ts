/**
 * The S3 server's own throughput, measured by a plain parallel client (the AWS SDK): PUT then GET
 * of TOTAL bytes as OBJECT-sized objects with CONCURRENCY requests in flight, then delete them.
 * `bench/peers_s3.sh` compares the filesystems' sequential write and cold read against it.
 *
 * Usage:
 *   deno run -A bench/s3_client_bench.ts BUCKET [TOTAL=1G] [OBJECT=4M] [CONCURRENCY=16] [PREFIX]
 *
 * The endpoint comes from `S3_ENDPOINT` (default `http://127.0.0.1:4568`), credentials from
 * `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`. Prints `client-put\tMiB/s` and `client-get\tMiB/s`.
 *
 * @module
 */

import { Agent } from "node:http";
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";

const MiB = 1024 * 1024;

/** Parses `1G`, `256M`, `4K` or a plain byte count. */
export function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)(?:i?B)?$/i.exec(s.trim());
  if (!m) throw new Error(`Bad size "${s}"`);
  const mult = { "": 1, K: 1024, M: MiB, G: 1024 * MiB, T: 1024 * 1024 * MiB }[
    m[2]!.toUpperCase() as "" | "K" | "M" | "G" | "T"
  ];
  return Math.round(Number(m[1]) * mult);
}

/** An S3 client for the benchmark's loopback server, `concurrency` connections at most. */
export function benchClient(concurrency = 16): S3Client {
  const id = Deno.env.get("AWS_ACCESS_KEY_ID");
  const secret = Deno.env.get("AWS_SECRET_ACCESS_KEY");
  if (!id || !secret) throw new Error("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set");
  return new S3Client({
    endpoint: Deno.env.get("S3_ENDPOINT") ?? "http://127.0.0.1:4568",
    region: Deno.env.get("AWS_REGION") ?? "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: id, secretAccessKey: secret },
    requestHandler: new NodeHttpHandler({
      httpAgent: new Agent({ keepAlive: true, maxSockets: concurrency }),
      requestTimeout: 120_000,
    }),
  });
}

/** Runs `fn(i)` for i in [0, n) with at most `concurrency` calls in flight. */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>) {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}

async function main(): Promise<void> {
  const [bucket, totalArg = "1G", objArg = "4M", concArg = "16", prefix = "plain-client/"] =
    Deno.args;
  if (bucket === undefined) {
    console.error("Usage: s3_client_bench.ts BUCKET [TOTAL] [OBJECT] [CONCURRENCY] [PREFIX]");
    Deno.exit(2);
  }
  const total = parseBytes(totalArg);
  const objSize = parseBytes(objArg);
  const concurrency = Number(concArg);
  const count = Math.max(1, Math.ceil(total / objSize));
  const client = benchClient(concurrency);
  // One incompressible buffer per worker slot; the first 8 bytes differ per object.
  const bodies = Array.from({ length: concurrency }, () => {
    const b = new Uint8Array(objSize);
    for (let off = 0; off < b.length; off += 65536) {
      crypto.getRandomValues(b.subarray(off, Math.min(off + 65536, b.length)));
    }
    return b;
  });
  const key = (i: number) => `${prefix}obj-${i}`;
  try {
    let t0 = performance.now();
    await pool(count, concurrency, async (i) => {
      const body = bodies[i % concurrency]!;
      new DataView(body.buffer).setFloat64(0, i);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key(i), Body: body }));
    });
    const putSecs = (performance.now() - t0) / 1000;
    t0 = performance.now();
    let got = 0;
    await pool(count, concurrency, async (i) => {
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key(i) }));
      const bytes = await res.Body!.transformToByteArray();
      got += bytes.length;
    });
    const getSecs = (performance.now() - t0) / 1000;
    if (got !== count * objSize) {
      throw new Error(`GET returned ${got} bytes, expected ${count * objSize}`);
    }
    console.log(`client-put\t${(count * objSize / MiB / putSecs).toFixed(1)}`);
    console.log(`client-get\t${(count * objSize / MiB / getSecs).toFixed(1)}`);
  } finally {
    for (let i = 0; i < count; i += 1000) {
      const keys = [];
      for (let j = i; j < Math.min(count, i + 1000); j++) keys.push({ Key: key(j) });
      await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }))
        .catch(() => {});
    }
    client.destroy();
  }
}

if (import.meta.main) await main();
