/**
 * Predictive prefetch, shown: a recorded access pattern (open a trigger file, then read many
 * files one after another, as a container start or a training epoch does) runs over a cold cache
 * twice on an S3-backed mount. The first run records the pattern; the second replays it in
 * parallel when the trigger is opened. Prints both times and the ratio.
 *
 * Usage: `deno run -A bench/predict_bench.ts [FILES] [MiB per file] [GET latency ms]` (defaults
 * 40, 4 and 20). The loopback server answers in well under a millisecond, where a remote S3 service
 * takes tens of milliseconds to its first byte; the server adds the given latency to every GET so
 * that the run shows what prefetch in parallel saves (0 measures the bare loopback server).
 *
 * @module
 */

import { startS3Server } from "../tests/_s3server.ts";

const FILES = Number(Deno.args[0] ?? 40);
const MIB = Number(Deno.args[1] ?? 4);
const LATENCY_MS = Number(Deno.args[2] ?? 20);
const REPO = new URL("../", import.meta.url).pathname;

async function cli(args: string[], env: Record<string, string>): Promise<void> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO}/cli.ts`, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
}

async function dropCaches(): Promise<void> {
  await Deno.writeTextFile("/proc/sys/vm/drop_caches", "3").catch(() => {});
}

async function pattern(mnt: string): Promise<number> {
  const t = performance.now();
  using trigger = await Deno.open(`${mnt}/trigger`, { read: true });
  await trigger.read(new Uint8Array(4096));
  const buf = new Uint8Array(1 << 20);
  for (let i = 0; i < FILES; i++) {
    using f = await Deno.open(`${mnt}/data-${i}`, { read: true });
    while (await f.read(buf) !== null) { /* read it all */ }
  }
  return performance.now() - t;
}

await using server = await startS3Server({ getLatencyMs: LATENCY_MS });
await server.createBucket("predict");
const work = await Deno.makeTempDir({ prefix: "slayerfs-predict-" });
const mnt = `${work}/mnt`;
await Deno.mkdir(mnt);
const env = {
  AWS_ACCESS_KEY_ID: server.accessKeyId,
  AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
  SLAYERFS_HOME: `${work}/home`,
};
const meta = `sqlite3://${work}/meta.db`;
try {
  await cli(["format", "--storage", server.storeUrl("predict", "v"), meta, "predict"], env);
  await cli(["mount", meta, mnt], env);
  await Deno.writeFile(`${mnt}/trigger`, new Uint8Array(4096));
  const data = new Uint8Array(MIB << 20);
  for (let i = 0; i < FILES; i++) {
    crypto.getRandomValues(data.subarray(0, 65536));
    await Deno.writeFile(`${mnt}/data-${i}`, data);
  }
  const runs: number[] = [];
  for (let run = 0; run < 2; run++) {
    // A fresh mount: the daemon's memory and disk caches are empty (remote storage gets a disk
    // cache in SLAYERFS_HOME by default); the kernel's page cache is dropped.
    await cli(["umount", mnt], env);
    await Deno.remove(`${work}/home/cache`, { recursive: true }).catch(() => {});
    await dropCaches();
    await cli(["mount", meta, mnt], env);
    runs.push(await pattern(mnt));
    await new Promise((r) => setTimeout(r, 3000)); // the recording ends after 2 s idle
  }
  const [first, second] = runs as [number, number];
  console.log(
    `predictive prefetch on S3 (s3rver, +${LATENCY_MS} ms per GET), ${FILES} files x ${MIB} MiB, ` +
      "cold cache",
  );
  console.log(`first run (records the pattern): ${first.toFixed(0)} ms`);
  console.log(`second run (replays it):         ${second.toFixed(0)} ms`);
  console.log(`speed-up: ${(first / second).toFixed(2)}x`);
} finally {
  await cli(["umount", mnt], env).catch(() => {});
  await Deno.remove(work, { recursive: true }).catch(() => {});
}
