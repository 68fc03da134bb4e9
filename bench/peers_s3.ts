/**
 * Helpers for `bench/peers_s3.sh` (SlayerFS, s3fs and rclone on one s3rver process).
 *
 * - `server ENVFILE PARENT_PID`: starts s3rver through `tests/_s3server.ts`, writes shell
 *   `export` lines (S3_ENDPOINT, S3_PORT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)
 *   to ENVFILE and serves until SIGTERM/SIGINT or until PARENT_PID is gone; then it stops the
 *   server and removes its data directory.
 * - `mkbucket NAME...`: creates buckets.
 * - `watch-object BUCKET KEY SIZE TIMEOUT_S [GO]`: once the file GO exists, polls HEAD until
 *   the object has SIZE bytes and prints the wall-clock time (epoch ms) it first saw it —
 *   "durable in S3". Start it before the timed operation and create GO when that returns.
 * - `watch-count BUCKET PREFIX COUNT TIMEOUT_S [GO]`: the same with ListObjectsV2, until PREFIX
 *   holds COUNT file objects (keys not ending in `/`).
 * - `smallfiles DIR COUNT [BUCKET PREFIX]`: create/list+stat/read/delete of COUNT 1 KiB files,
 *   printing `metric\tms`; with BUCKET, the create phase lasts until all files are objects in
 *   BUCKET under PREFIX (for filesystems that upload after close returns).
 * - `markers BUCKET` (keys on stdin): puts empty directory-marker objects (see below).
 * - `table RESULTS`: prints `metric\tfs\tvalue` lines as one table.
 *
 * @module
 */

import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { benchClient } from "./s3_client_bench.ts";
import { fmt, printTable, readResults, smallFiles } from "./peers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function serve(envFile: string, parentPid: number): Promise<void> {
  const { startS3Server } = await import("../tests/_s3server.ts");
  const server = await startS3Server();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.stop().catch(() => {});
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  await Deno.writeTextFile(
    `${envFile}.tmp`,
    [
      `export S3_ENDPOINT=${q(server.endpoint)}`,
      `export S3_PORT=${server.port}`,
      `export S3_DATA_DIR=${q(server.directory)}`,
      `export AWS_ACCESS_KEY_ID=${q(server.accessKeyId)}`,
      `export AWS_SECRET_ACCESS_KEY=${q(server.secretAccessKey)}`,
      `export AWS_REGION=${q(server.region)}`,
      `export AWS_DEFAULT_REGION=${q(server.region)}`,
      "",
    ].join("\n"),
  );
  await Deno.rename(`${envFile}.tmp`, envFile);
  for (;;) {
    await sleep(500);
    try {
      await Deno.stat(`/proc/${parentPid}`);
    } catch {
      await stop();
    }
  }
}

async function headSize(client: S3Client, bucket: string, key: string): Promise<number> {
  try {
    const r = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return r.ContentLength ?? -1;
  } catch {
    return -1;
  }
}

async function countObjects(client: S3Client, bucket: string, prefix: string): Promise<number> {
  let n = 0;
  let token: string | undefined;
  do {
    const r = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of r.Contents ?? []) if (!o.Key?.endsWith("/")) n++;
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token !== undefined);
  return n;
}

/** Waits until the file `go` exists (so a watcher started early adds no load meanwhile). */
async function waitForGo(go: string | undefined, timeoutS: number): Promise<void> {
  if (go === undefined) return;
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    try {
      await Deno.stat(go);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`Timed out waiting for "${go}"`);
      await sleep(10);
    }
  }
}

async function pollUntil(
  what: string,
  timeoutS: number,
  intervalMs: number,
  done: () => Promise<boolean>,
): Promise<number> {
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    if (await done()) return Date.now();
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutS} s waiting for ${what}`);
    await sleep(intervalMs);
  }
}

async function smallFilesS3(dir: string, count: number, bucket?: string, prefix?: string) {
  const client = bucket !== undefined ? benchClient(4) : undefined;
  try {
    // For a lazy uploader, creation ends when every file is an object in S3.
    await smallFiles(
      dir,
      count,
      client &&
        (() =>
          pollUntil(
            `${count} objects in ${bucket}/${prefix}`,
            600,
            200,
            async () => await countObjects(client, bucket!, prefix ?? "") >= count,
          ).then(() => {})),
    );
  } finally {
    client?.destroy();
  }
}

interface Metric {
  label: string;
  unit: string;
  higherIsBetter: boolean;
  /** The reference column compared against in the "slayerfs/ref" column. */
  ref?: "client-put" | "client-get" | "bindfs";
}

const METRICS: Record<string, Metric> = {
  "seq-write": {
    label: "seq write 1M, durable in S3",
    unit: "MiB/s",
    higherIsBetter: true,
    ref: "client-put",
  },
  "seq-read": {
    label: "seq read 1M (cold)",
    unit: "MiB/s",
    higherIsBetter: true,
    ref: "client-get",
  },
  "seq-read-warm": {
    label: "seq read 1M (warm)",
    unit: "MiB/s",
    higherIsBetter: true,
    ref: "bindfs",
  },
  "rand-read": { label: "rand read 4K (cold)", unit: "IOPS", higherIsBetter: true },
  "rand-read-warm": {
    label: "rand read 4K (warm)",
    unit: "IOPS",
    higherIsBetter: true,
    ref: "bindfs",
  },
  "small-create": { label: "small files: create", unit: "ms", higherIsBetter: false },
  "small-list": { label: "small files: list+stat", unit: "ms", higherIsBetter: false },
  "small-read": { label: "small files: read", unit: "ms", higherIsBetter: false },
  "small-delete": { label: "small files: delete", unit: "ms", higherIsBetter: false },
  "tar-x": { label: "tar -x tree", unit: "ms", higherIsBetter: false },
  "find": { label: "find over tree (cold)", unit: "ms", higherIsBetter: false },
};

/** `a` relative to `b` as "how many times better", oriented so that > 1 is always better. */
function ratio(s: number | undefined, b: number | undefined, higherIsBetter: boolean): string {
  if (s === undefined || b === undefined || !(s > 0) || !(b > 0)) return "-";
  const r = higherIsBetter ? s / b : b / s;
  return `${r >= 10 ? r.toFixed(1) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}x`;
}

function table(resultsPath: string): void {
  const { results, notes } = readResults(resultsPath);
  const get = (metric: string, fs: string) => {
    const v = results.get(`${metric}/${fs}`);
    return v === undefined || !Number.isFinite(v) ? undefined : v;
  };
  const header = [
    "metric",
    "unit",
    "S3 client",
    "bindfs",
    "slayerfs",
    "s3fs",
    "rclone",
    "slayer/ref",
    "slayer/s3fs",
    "slayer/rclone",
  ];
  const rows: string[][] = [header];
  const cell = (v: number | undefined) => (v === undefined ? "" : fmt(v));
  for (const [key, m] of Object.entries(METRICS)) {
    const client = m.ref?.startsWith("client") ? get(m.ref, "client") : undefined;
    const bindfs = get(key, "bindfs");
    const [s, f, r] = ["slayerfs", "s3fs", "rclone"].map((fs) => get(key, fs));
    if ([s, f, r].every((v) => v === undefined)) continue;
    const ref = m.ref === "bindfs" ? bindfs : client;
    rows.push([
      m.label,
      `${m.unit} ${m.higherIsBetter ? "↑" : "↓"}`,
      cell(client),
      cell(bindfs),
      s === undefined ? "n/a" : fmt(s),
      f === undefined ? "n/a" : fmt(f),
      r === undefined ? "n/a" : fmt(r),
      m.ref ? ratio(s, ref, true) : "",
      ratio(s, f, m.higherIsBetter),
      ratio(s, r, m.higherIsBetter),
    ]);
  }
  printTable(rows);
  console.log(
    "ratios: >1x means SlayerFS is better (time rows are inverted); slayer/ref compares with the " +
      "plain S3 client (PUT for writes, GET for cold reads) or with bindfs (warm reads).",
  );
  for (const n of notes) console.log(n);
}

if (import.meta.main) {
  const [cmd, ...a] = Deno.args;
  switch (cmd) {
    case "server":
      await serve(a[0]!, Number(a[1]));
      break;
    case "mkbucket": {
      const { CreateBucketCommand } = await import("@aws-sdk/client-s3");
      const client = benchClient(4);
      for (const b of a) await client.send(new CreateBucketCommand({ Bucket: b }));
      client.destroy();
      break;
    }
    case "watch-object": {
      const [bucket, key, size, timeout, go] = a;
      const client = benchClient(2);
      await waitForGo(go, Number(timeout ?? 600));
      const at = await pollUntil(
        `${bucket}/${key}`,
        Number(timeout ?? 600),
        100,
        async () => await headSize(client, bucket!, key!) === Number(size),
      );
      client.destroy();
      console.log(at);
      break;
    }
    case "watch-count": {
      const [bucket, prefix, count, timeout, go] = a;
      const client = benchClient(2);
      await waitForGo(go, Number(timeout ?? 600));
      const at = await pollUntil(
        `${bucket}/${prefix}`,
        Number(timeout ?? 600),
        250,
        async () => await countObjects(client, bucket!, prefix!) >= Number(count),
      );
      client.destroy();
      console.log(at);
      break;
    }
    case "markers": {
      // s3rver 3.7.1 answers a delimiter listing without the common prefix of a "directory" that
      // holds only subdirectories, so rclone (which has no directory objects) loses them after
      // a remount. Empty `dir/` marker objects, as s3fs writes itself, make them visible.
      const [bucket] = a;
      const { PutObjectCommand } = await import("@aws-sdk/client-s3");
      const client = benchClient(8);
      const keys = (await new Response(Deno.stdin.readable).text()).split("\n").filter((k) =>
        k !== ""
      );
      for (const k of keys) {
        await client.send(
          new PutObjectCommand({ Bucket: bucket, Key: k, Body: new Uint8Array(0) }),
        );
      }
      client.destroy();
      break;
    }
    case "smallfiles":
      await smallFilesS3(a[0]!, Number(a[1] ?? 2000), a[2], a[3]);
      break;
    case "table":
      table(a[0]!);
      break;
    default:
      console.error(
        "Usage: peers_s3.ts server ENVFILE PPID | mkbucket NAME... | " +
          "watch-object BUCKET KEY SIZE TIMEOUT [GO] | watch-count BUCKET PREFIX COUNT TIMEOUT [GO] | " +
          "markers BUCKET | smallfiles DIR COUNT [BUCKET PREFIX] | table RESULTS",
      );
      Deno.exit(2);
  }
}
