/**
 * `slayerfs import` at scale: N small objects (in 100 folders) put by the plain AWS SDK into one
 * s3rver (tests/_s3server.ts), then imported into a fresh SQLite volume (file:// storage) by the
 * CLI. Reports the import's wall time and objects/s, a second (resumed, nothing to do) run, a
 * `--refresh` run, and the metadata's size (the SQLite file after a checkpoint) per object.
 *
 * ```sh
 * ./dev deno run -A bench/import_bench.ts            # N=10000
 * N=100000 ./dev deno run -A bench/import_bench.ts
 * ```
 *
 * @module
 */

import { ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { run } from "../tests/_run.ts";
import { startS3Server } from "../tests/_s3server.ts";

const N = Number(Deno.env.get("N") ?? 10_000);
// The CLI, with no time limit (tests/_mount.ts runCli stops a command after 5 minutes).
const cli = (args: string[]) =>
  run(Deno.execPath(), ["run", "-A", "cli.ts", ...args], {
    cwd: new URL("..", import.meta.url).pathname,
  });
await using s3 = await startS3Server();
await s3.createBucket("bench");
s3.exportCredentials();
const client = s3.client();
const dir = await Deno.makeTempDir({ prefix: "slayerfs-import-bench-" });
try {
  let t = performance.now();
  let next = 0;
  const body = new TextEncoder().encode("x".repeat(100));
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < N) {
      const i = next++;
      await client.send(
        new PutObjectCommand({
          Bucket: "bench",
          Key: `ds/d${i % 100}/obj-${i}.txt`,
          Body: body,
        }),
      );
    }
  }));
  console.log(`put ${N} objects: ${((performance.now() - t) / 1000).toFixed(1)} s`);
  // The server's own listing speed (pages of 1000 by StartAfter, as the import lists).
  t = performance.now();
  let listed = 0;
  let startAfter: string | undefined;
  for (;;) {
    const res = await client.send(
      new ListObjectsV2Command({ Bucket: "bench", Prefix: "ds/", StartAfter: startAfter }),
    );
    listed += res.Contents?.length ?? 0;
    startAfter = res.Contents?.at(-1)?.Key;
    if (!res.IsTruncated || startAfter === undefined) break;
  }
  console.log(
    `plain SDK listing of ${listed} objects: ${((performance.now() - t) / 1000).toFixed(1)} s`,
  );
  const meta = `sqlite3://${dir}/meta.db`;
  const fmt = await cli(["format", "--storage", `file://${dir}/blocks`, meta, "bench"]);
  if (fmt.code !== 0) throw new Error(fmt.stderr);
  const source = s3.storeUrl("bench", "ds/");
  for (const args of [[], [], ["--refresh"]]) {
    t = performance.now();
    const r = await cli(["import", "-q", ...args, meta, source, "/datasets/bench"]);
    const s = (performance.now() - t) / 1000;
    if (r.code !== 0) throw new Error(r.stderr + r.stdout);
    console.log(
      `import ${args.join(" ")}: ${s.toFixed(1)} s (${(N / s).toFixed(0)} objects/s): ` +
        r.stdout.trim(),
    );
  }
  // The metadata's size: checkpoint the WAL first (sqlite3 CLI if there, else the files' sum).
  let bytes = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith("meta.db")) bytes += (await Deno.stat(`${dir}/${e.name}`)).size;
  }
  console.log(
    `metadata: ${(bytes / 2 ** 20).toFixed(1)} MiB (meta.db + WAL), ${(bytes / N).toFixed(0)} ` +
      "bytes per object",
  );
} finally {
  client.destroy();
  await Deno.remove(dir, { recursive: true });
}
