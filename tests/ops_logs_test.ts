/**
 * The daemon's logs on a real S3 mount (issue #12, "Logs"): `--log-format json` gives one JSON
 * record per line with the volume and the mountpoint (and the inode of a failed request), the
 * log file rotates at a tiny `--log-max-size` keeping `--log-max-files` old files, and no line of
 * any of them holds the S3 access key or secret key, even at `--log-level debug` through an outage
 * of the store.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startSlayer } from "./_mount.ts";
import { startS3Server } from "./_s3server.ts";

Deno.test("an S3 mount's JSON logs rotate and never hold the keys", async () => {
  await using server = await startS3Server();
  await server.createBucket("logs");
  server.exportCredentials();
  const cap = 2048;
  await using fs = await startSlayer({
    storage: server.storeUrl("logs", "vol"),
    extraArgs: [
      "--log-format",
      "json",
      "--log-level",
      "debug",
      "--log-max-size",
      "2K",
      "--log-max-files",
      "2",
      "--no-cache-dir",
      "--cache-size",
      "0",
      "--no-metrics",
      "-o",
      "io_deadline=3",
    ],
  });
  const data = new Uint8Array(3 << 20).map((_, i) => i % 251);
  await Deno.writeFile(`${fs.mnt}/data.bin`, data);
  assert.deepEqual(await Deno.readFile(`${fs.mnt}/data.bin`), data);
  // A new daemon (nothing cached, in the kernel either), then an outage: reads of the blocks fail
  // with EIO at the deadline, and say so in the log.
  await fs.restart();
  await server.kill();
  try {
    await assert.rejects(Deno.readFile(`${fs.mnt}/data.bin`));
  } finally {
    await server.start();
  }
  assert.deepEqual(await Deno.readFile(`${fs.mnt}/data.bin`), data);

  const names = [...Deno.readDirSync(fs.dir)].map((e) => e.name).filter((n) =>
    n.startsWith("daemon.log")
  ).sort();
  assert.deepEqual(names, ["daemon.log", "daemon.log.1", "daemon.log.2"], "rotated, 2 kept");
  const records: Record<string, unknown>[] = [];
  for (const name of names) {
    const text = await Deno.readTextFile(`${fs.dir}/${name}`);
    assert.ok(!text.includes(server.accessKeyId), `${name} holds the access key`);
    assert.ok(!text.includes(server.secretAccessKey), `${name} holds the secret key`);
    // A record is written whole before the cap is checked: a file ends at most a line past it.
    assert.ok(text.length < cap + 4096, `${name}: ${text.length} bytes`);
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const rec = JSON.parse(line) as Record<string, unknown>;
      assert.equal(typeof rec.time, "string", line);
      assert.equal(typeof rec.level, "string", line);
      assert.equal(typeof rec.message, "string", line);
      assert.equal(rec.mountpoint, fs.mnt, line);
      records.push(rec);
    }
  }
  assert.ok(records.length >= 3, `records: ${records.length}`);
  // Every record after the volume opened names it; a failed read names its inode.
  assert.ok(records.some((r) => r.volume === "test"), "records name the volume");
  const failed = records.find((r) => r.level === "error" && typeof r.ino === "number");
  assert.ok(failed, `an error record with the inode:\n${JSON.stringify(records.slice(-5))}`);
  assert.equal(failed.volume, "test");
});
