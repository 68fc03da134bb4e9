/**
 * `slayerfs doctor` (issue #12) on a real mount whose blocks are on a real S3 server (with keys
 * from the environment) and whose metadata is on a private Redis server with a password: the
 * archive holds every part (versions, the daemon's command line and settings, `status --json`,
 * the log's last lines, the system and the volume's mounts, a metrics scrape, and a CPU profile
 * of the running daemon with nodes and samples), and neither the S3 secret key nor the Redis
 * password appears anywhere in it, not even where the log itself quoted the secret.
 *
 * @module
 */

import assert from "node:assert/strict";
import { errorLines } from "./_cli.ts";
import { runCli, startSlayer } from "./_mount.ts";
import { startRedis } from "./_redis.ts";
import { run } from "./_run.ts";
import { startS3Server } from "./_s3server.ts";

const PASSWORD = "doctor-redis-pw-7f3a";

async function files(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${dir}/${rel}`)) {
    if (e.isDirectory) out.push(...await files(dir, `${rel}${e.name}/`));
    else out.push(`${rel}${e.name}`);
  }
  return out.sort();
}

Deno.test("doctor: every part in the archive, a real CPU profile, no secret anywhere", async () => {
  await using s3 = await startS3Server();
  await s3.createBucket("doctor");
  s3.exportCredentials();
  await using redis = await startRedis({ password: PASSWORD });
  await using fs = await startSlayer({
    meta: redis.url({ password: PASSWORD }),
    storage: s3.storeUrl("doctor", "vol"),
  });
  const work = await Deno.makeTempDir({ prefix: "slayerfs-doctor-test-" });
  try {
    // Some I/O, and a log line that quotes the secret as a careless error message might.
    await Deno.writeFile(`${fs.mnt}/data.bin`, new Uint8Array(3 << 20).fill(7));
    assert.equal((await Deno.readFile(`${fs.mnt}/data.bin`)).byteLength, 3 << 20);
    await Deno.writeTextFile(
      `${fs.dir}/daemon.log`,
      `slayerfs: [warn] test: leaked ${s3.secretAccessKey} and ${PASSWORD}\n`,
      { append: true },
    );
    const out = `${work}/report.tar.gz`;
    const r = await fs.guard(
      120_000,
      "doctor",
      () => runCli(["doctor", "--profile-seconds", "2", "--log-lines", "50", "-o", out, fs.mnt]),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Wrote ${out} \\(10 parts\\)$`, "m"));
    assert.equal((await Deno.stat(out)).mode! & 0o777, 0o600, "the archive is owner-only");
    const x = await run("tar", ["-xzf", out, "-C", work]);
    assert.equal(x.code, 0, x.stderr);
    const [top] = [...Deno.readDirSync(work)].filter((e) => e.isDirectory).map((e) => e.name);
    assert.match(top!, /^slayerfs-doctor-\w+-\d{8}T\d{6}$/);
    const dir = `${work}/${top}`;
    assert.deepEqual(await files(dir), [
      "cmdline.txt",
      "config.json",
      "cpu.cpuprofile",
      "daemon.log",
      "manifest.json",
      "metrics.txt",
      "mounts.txt",
      "status.json",
      "system.txt",
      "version.txt",
    ]);
    const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
    const manifest = JSON.parse(await read("manifest.json"));
    for (const [part, how] of Object.entries(manifest.parts)) {
      assert.match(how as string, /^ok, /, `${part}: ${how}`);
    }
    assert.match(await read("version.txt"), /^slayerfs \S+\ndeno \S+ .*\nlibfuse 3\.\d+/);
    const cmdline = await read("cmdline.txt");
    assert.match(cmdline, /^mount$/m);
    assert.ok(cmdline.includes(fs.mnt), cmdline);
    assert.match(cmdline, /redis\+unix:\/\/:\*\*\*@localhost\//, "the URL's password masked");
    const config = JSON.parse(await read("config.json"));
    assert.equal(config.mountpoint, fs.mnt);
    assert.equal(config.settings.cacheMiB, 32);
    assert.equal(config.settings.atimeMode, "noatime");
    assert.equal(config.environment.AWS_SECRET_ACCESS_KEY, "***");
    const status = JSON.parse(await read("status.json"));
    assert.equal(status.alive, true);
    assert.equal(status.mountpoint, fs.mnt);
    assert.match(status.usage, /inodes/);
    assert.match(status.meta, /:\*\*\*@localhost/);
    const log = await read("daemon.log");
    assert.match(log, /Serving ".*" at /);
    assert.match(log, /leaked \*\*\* and \*\*\*/);
    assert.ok(log.split("\n").length <= 52, "at most --log-lines lines and a heading");
    const system = await read("system.txt");
    assert.match(system, /^kernel: Linux version /m);
    assert.match(system, /^libfuse: 3\.\d+/m);
    assert.match(system, /^VmRSS:/m);
    const mounts = (await read("mounts.txt")).split("\n");
    assert.ok(mounts.some((l) => l.includes(` ${fs.mnt} `) && / - fuse\.slayerfs /.test(l)));
    assert.match(await read("metrics.txt"), /^slayerfs_fuse_written_bytes_total\{.*\} \d+/m);
    const profile = JSON.parse(await read("cpu.cpuprofile"));
    assert.ok(profile.nodes.length > 1, "profile nodes");
    assert.ok(profile.samples.length > 100, `samples over 2 s: ${profile.samples.length}`);
    assert.equal(profile.samples.length, profile.timeDeltas.length);
    assert.ok(profile.endTime - profile.startTime >= 1.9e6, "about 2 s of profile (µs)");
    assert.ok(profile.nodes.every((n: { id: number; callFrame: unknown }) => n.id && n.callFrame));
    // The secret key and the password appear in no file, however encoded.
    const grep = await run("grep", [
      "-rlaF",
      "-e",
      s3.secretAccessKey,
      "-e",
      PASSWORD,
      "-e",
      encodeURIComponent(PASSWORD),
      work,
    ]);
    assert.equal(grep.code, 1, `secrets found in: ${grep.stdout}`);
    const zgrep = await run("sh", ["-c", `gzip -dc '${out}' | grep -caF '${s3.secretAccessKey}'`]);
    assert.equal(zgrep.stdout.trim(), "0");
    // The profile request and its answer do not stay behind in the run folder.
    const runDir = `${Deno.env.get("SLAYERFS_HOME")}/run`;
    assert.deepEqual(
      [...Deno.readDirSync(runDir)].map((e) => e.name).filter((n) => /profile/.test(n)),
      [],
    );
    // Without a profile, and with the mount's daemon still serving afterwards.
    const quick = await runCli([
      "doctor",
      "--profile-seconds",
      "0",
      "-o",
      `${work}/q.tar.gz`,
      fs.mnt,
    ]);
    assert.equal(quick.code, 0, quick.stderr);
    assert.match(quick.stdout, /^ {2}cpu\.cpuprofile: not collected: --profile-seconds 0$/m);
    assert.equal((await Deno.readFile(`${fs.mnt}/data.bin`)).byteLength, 3 << 20);
    // Not a mount: one line, exit 1.
    const not = await runCli(["doctor", work]);
    assert.equal(not.code, 1);
    assert.match(errorLines(not.stderr).join("\n"), /is not inside a SlayerFS mount/);
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
