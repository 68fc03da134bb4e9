/**
 * Helpers for `bench/import_read.sh` (a cold sequential read of an imported object, SlayerFS
 * against s3fs on one s3rver). The endpoint and keys come from the environment, as for
 * `bench/s3_client_bench.ts` (`S3_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
 *
 * - `put BUCKET KEY SIZE`: puts one object of SIZE random bytes with the plain AWS SDK, as a
 *   multipart upload of 64 MiB parts (4 at a time); prints its ETag.
 * - `get BUCKET KEY`: one GET of the whole object, read as one stream; prints `MiB/s`.
 * - `table RESULTS`: prints the `round\tmetric\tMiB/s` lines of RESULTS as one table, with the
 *   ratios SlayerFS / s3fs and imported / native per round and of their means.
 *
 * @module
 */

import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { benchClient, parseBytes } from "./s3_client_bench.ts";
import { fmt, printTable } from "./peers.ts";

const MiB = 2 ** 20;
const PART = 64 * MiB;

async function put(bucket: string, key: string, size: number): Promise<void> {
  const client = benchClient(4);
  try {
    const { UploadId } = await client.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }),
    );
    const count = Math.ceil(size / PART);
    const etags: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(4, count) }, async () => {
      while (next < count) {
        const i = next++;
        const body = new Uint8Array(Math.min(PART, size - i * PART));
        for (let off = 0; off < body.length; off += 65536) {
          crypto.getRandomValues(body.subarray(off, Math.min(off + 65536, body.length)));
        }
        const res = await client.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId,
            PartNumber: i + 1,
            Body: body,
          }),
        );
        etags[i] = res.ETag!;
      }
    }));
    const done = await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
    console.log(done.ETag);
  } finally {
    client.destroy();
  }
}

async function get(bucket: string, key: string): Promise<void> {
  const client = benchClient(1);
  try {
    const t0 = performance.now();
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    let n = 0;
    for await (const chunk of res.Body as AsyncIterable<Uint8Array>) n += chunk.byteLength;
    const s = (performance.now() - t0) / 1000;
    if (n !== res.ContentLength) throw new Error(`GET gave ${n} bytes of ${res.ContentLength}`);
    console.log((n / MiB / s).toFixed(1));
  } finally {
    client.destroy();
  }
}

const LABELS: Record<string, string> = {
  "client-get": "plain SDK: parallel GET, 4 MiB objects, 16 at once",
  "client-get-one": "plain SDK: one GET of the whole object",
  "slayerfs": "SlayerFS: imported file, cold dd bs=1M",
  "native": "SlayerFS: a file written through it, cold dd",
  "s3fs": "s3fs: the object, cold dd bs=1M",
};

function table(path: string): void {
  const rows = new Map<string, Map<string, number>>(); // metric -> round -> MiB/s
  const rounds = new Set<string>();
  for (const line of Deno.readTextFileSync(path).split("\n")) {
    const [round, metric, v] = line.split("\t");
    if (!round || !metric || v === undefined) continue;
    rounds.add(round);
    if (!rows.has(metric)) rows.set(metric, new Map());
    rows.get(metric)!.set(round, Number(v));
  }
  const rs = [...rounds];
  const mean = (m: Map<string, number> | undefined) => {
    const vs = [...(m?.values() ?? [])];
    return vs.length ? vs.reduce((a, b) => a + b, 0) / vs.length : NaN;
  };
  const out: string[][] = [["read", "unit", ...rs.map((r) => `round ${r}`), "mean"]];
  for (const [metric, label] of Object.entries(LABELS)) {
    const m = rows.get(metric);
    if (!m) continue;
    out.push([label, "MiB/s", ...rs.map((r) => m.has(r) ? fmt(m.get(r)!) : "—"), fmt(mean(m))]);
  }
  const ratio = (label: string, a = "", b = "") => {
    const x = rows.get(a), y = rows.get(b);
    if (!x || !y) return;
    const each = rs.map((r) => x.get(r)! / y.get(r)!);
    out.push([
      label,
      "ratio",
      ...each.map((v) => Number.isFinite(v) ? v.toFixed(2) : "—"),
      (mean(x) / mean(y)).toFixed(2),
    ]);
  };
  ratio("SlayerFS (imported) / s3fs", "slayerfs", "s3fs");
  ratio("SlayerFS imported / native", "slayerfs", "native");
  printTable(out);
}

const [cmd, ...args] = Deno.args;
switch (cmd) {
  case "put":
    await put(args[0]!, args[1]!, parseBytes(args[2]!));
    break;
  case "get":
    await get(args[0]!, args[1]!);
    break;
  case "table":
    table(args[0]!);
    break;
  default:
    console.error("Usage: import_read.ts put BUCKET KEY SIZE | get BUCKET KEY | table RESULTS");
    Deno.exit(2);
}
