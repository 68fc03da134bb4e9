/**
 * `--download-limit` holds the reads of imported objects too: they do not go through the volume's
 * block store (an imported file's bytes are ranged GETs of the original object), but they are
 * object-store traffic of the mount, waited for and counted like its own blocks. Also: `import`
 * on a terminal draws a progress bar.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { CLI, runCli, startSlayer } from "./_mount.ts";
import { run } from "./_run.ts";
import { startS3Server } from "./_s3server.ts";

const MiB = 2 ** 20;

Deno.test("--download-limit holds and counts the reads of an imported object", async () => {
  await using s3 = await startS3Server();
  await s3.createBucket("data");
  s3.exportCredentials();
  const client = s3.client();
  const body = new Uint8Array(3 * MiB);
  for (let i = 0; i < body.length; i += 65536) crypto.getRandomValues(body.subarray(i, i + 65536));
  try {
    await client.send(new PutObjectCommand({ Bucket: "data", Key: "in/blob.bin", Body: body }));
  } finally {
    client.destroy();
  }
  // 8 Mbit/s = 1 MB/s with a 0.5 s burst: 3 MiB (3.15 MB) take at least ~2.6 s.
  await using fs = await startSlayer({ extraArgs: ["--download-limit", "8"] });
  const imported = await fs.guard(
    120_000,
    "import",
    () => runCli(["import", "-q", fs.meta, s3.storeUrl("data", "in/"), "/ds"]),
  );
  assert.equal(imported.code, 0, imported.stderr);

  // On a terminal (script(1) gives it one) the import draws a progress bar, ending full.
  const tty = await fs.guard(120_000, "import on a terminal", () =>
    run("script", [
      "-qec",
      [Deno.execPath(), "run", "-A", CLI, "import", fs.meta, s3.storeUrl("data", "in/"), "/tty"]
        .map((a) => `'${a}'`).join(" "),
      "/dev/null",
    ]));
  assert.equal(tty.code, 0, tty.stdout + tty.stderr);
  assert.match(tty.stdout, /\[#{30}\] 100% 1\/1 objects, 3\.0 MiB referred to/);

  const t0 = performance.now();
  const back = await fs.guard(120_000, "read", () => Deno.readFile(`${fs.mnt}/ds/blob.bin`));
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(Buffer.from(back).equals(Buffer.from(body)), "the imported bytes");
  assert.ok(seconds >= 2.2, `3 MiB at 1 MB/s (0.5 MB burst) took only ${seconds.toFixed(2)} s`);

  const st = JSON.parse((await runCli(["status", "--json", fs.mnt])).stdout) as {
    bandwidth?: { downloadedBytes: number };
  };
  assert.ok(
    (st.bandwidth?.downloadedBytes ?? 0) >= body.length,
    `counted in status: ${JSON.stringify(st.bandwidth)}`,
  );
});
