import assert from "node:assert/strict";
import { configureLogging, getLog, resetLogging } from "./log.ts";
import { jsonLogLine, Redactor } from "./_log_output.ts";

Deno.test("Redactor masks URL passwords, secret parameters and secret environment values", () => {
  const r = new Redactor(["extra-secret-value"], {
    AWS_ACCESS_KEY_ID: "AKIAEXAMPLEKEY",
    AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG",
    HOME: "/root",
    USE_TOKEN: "true",
  });
  const line = r.redact(
    "meta postgres://me:hunter22@db:5432/x and redis://:pw1234@r:6379/0, " +
      "s3 ?endpoint=http://127.0.0.1:9000&X-Amz-Signature=abcdef&token=t0k&region=us " +
      "key AKIAEXAMPLEKEY secret wJalrXUtnFEMI/K7MDENG extra-secret-value home /root true",
  );
  assert.equal(
    line,
    "meta postgres://me:***@db:5432/x and redis://:***@r:6379/0, " +
      "s3 ?endpoint=http://127.0.0.1:9000&X-Amz-Signature=***&token=***&region=us " +
      "key *** secret *** *** home /root true",
  );
});

Deno.test("jsonLogLine carries the context, the properties and errors as messages", () => {
  const line = jsonLogLine(
    {
      category: ["slayerfs", "fuse"],
      level: "error",
      message: ["read of inode ", 42n, " failed"],
      rawMessage: "read of inode {ino} failed",
      timestamp: Date.UTC(2026, 0, 2, 3, 4, 5),
      properties: { ino: 42n, path: "/a/b", error: new Error("boom", { cause: new Error("io") }) },
    },
    "read of inode 42 failed",
    { volume: "v1", mountpoint: "/mnt/v1" },
  );
  assert.ok(line.endsWith("\n"));
  assert.deepEqual(JSON.parse(line), {
    time: "2026-01-02T03:04:05.000Z",
    level: "error",
    category: "fuse",
    message: "read of inode 42 failed",
    volume: "v1",
    mountpoint: "/mnt/v1",
    ino: 42,
    path: "/a/b",
    error: "boom: io",
  });
});

Deno.test("configureLogging rotates its file at the cap and keeps N old files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-logrot-" });
  const path = `${dir}/daemon.log`;
  const file = await Deno.open(path, { append: true, create: true });
  const enc = new TextEncoder();
  try {
    const context: Record<string, unknown> = { mountpoint: "/mnt/x" };
    configureLogging({
      format: "json",
      context,
      // Appending through one descriptor, as the daemon's standard error does.
      write: (l) => file.writeSync(enc.encode(l)),
      rotate: { path, maxBytes: 1000, keep: 2 },
    });
    context.volume = "v";
    for (let i = 0; i < 100; i++) getLog("test").info("record {i} of the run", { i });
    resetLogging();
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["daemon.log", "daemon.log.1", "daemon.log.2"]);
    const seen: number[] = [];
    for (const name of names) {
      const text = await Deno.readTextFile(`${dir}/${name}`);
      assert.ok(text.length < 1000 + 200, `${name}: ${text.length} bytes`);
      for (const l of text.trimEnd().split("\n").filter((x) => x !== "")) {
        const rec = JSON.parse(l);
        assert.equal(rec.volume, "v");
        assert.equal(rec.mountpoint, "/mnt/x");
        seen.push(rec.i);
      }
    }
    // The newest records are kept, the current file has the last one.
    assert.ok(seen.includes(99));
    assert.ok(!seen.includes(0), "the oldest records were rotated away");
    assert.equal((await Deno.stat(`${dir}/daemon.log.1`)).mode! & 0o777, 0o600);
  } finally {
    resetLogging();
    file.close();
    await Deno.remove(dir, { recursive: true });
  }
});
