/**
 * `--upload-limit` and `--download-limit` over a long transfer on a real s3rver process: writes
 * SIZE MiB of random data through a mount limited to LIMIT Mbit/s (fsync at the end), then reads it
 * back through a fresh mount (nothing cached), and prints the rate each achieved against the limit.
 * With `--baseline`, first does the same without limits, to show what the machine and the loopback
 * server manage on their own (a limit above that cannot be reached).
 *
 * Usage: `deno run -A bench/bandwidth.ts [SIZE MiB] [LIMIT Mbit/s] [--baseline]` (defaults 1024 and
 * 100: about 86 s each way).
 *
 * @module
 */

import * as L from "../tests/_libc.ts";
import { startSlayer } from "../tests/_mount.ts";
import { startS3Server } from "../tests/_s3server.ts";

const args = Deno.args.filter((a) => !a.startsWith("--"));
const SIZE = Number(args[0] ?? 1024) * 2 ** 20;
const LIMIT = Number(args[1] ?? 100);
const BASELINE = Deno.args.includes("--baseline");

await using server = await startS3Server();
server.exportCredentials();
const buf = new Uint8Array(4 << 20);

/** Writes SIZE bytes and reads them back through two mounts with `extra` arguments. */
async function transfer(bucket: string, extra: string[]): Promise<[number, number]> {
  await server.createBucket(bucket);
  await using fs = await startSlayer({ storage: server.storeUrl(bucket, "v"), extraArgs: extra });
  let t = performance.now();
  const fd = L.open(`${fs.mnt}/big`, L.O.WRONLY | L.O.CREAT);
  for (let off = 0; off < SIZE; off += buf.length) {
    for (let i = 0; i < buf.length; i += 65536) crypto.getRandomValues(buf.subarray(i, i + 65536));
    L.pwriteFull(fd, buf, off);
  }
  L.fsync(fd);
  L.close(fd);
  const up = (performance.now() - t) / 1000;
  await fs.restart();
  t = performance.now();
  const rfd = L.open(`${fs.mnt}/big`, L.O.RDONLY);
  for (let off = 0; off < SIZE; off += buf.length) L.pread(rfd, buf, off);
  L.close(rfd);
  return [up, (performance.now() - t) / 1000];
}

const mbit = (sec: number) => (SIZE * 8 / 1e6 / sec).toFixed(1);
console.log(`${SIZE / 2 ** 20} MiB of random data, no disk cache`);
if (BASELINE) {
  const [up, down] = await transfer("baseline", ["--no-cache-dir"]);
  console.log(
    `no limit:  upload ${up.toFixed(1)} s (${mbit(up)} Mbit/s), ` +
      `download ${down.toFixed(1)} s (${mbit(down)} Mbit/s)`,
  );
}
const [up, down] = await transfer("limited", [
  "--no-cache-dir",
  "--upload-limit",
  String(LIMIT),
  "--download-limit",
  String(LIMIT),
]);
const pct = (sec: number) => `${(SIZE * 8 / 1e6 / sec / LIMIT * 100).toFixed(1)}% of the limit`;
console.log(
  `${LIMIT} Mbit/s: upload ${up.toFixed(1)} s (${mbit(up)} Mbit/s, ${pct(up)}), ` +
    `download ${down.toFixed(1)} s (${mbit(down)} Mbit/s, ${pct(down)})`,
);
