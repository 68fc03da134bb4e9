/**
 * The CLI on Redis metadata: a wrong URL, an unreachable server, refused credentials, a missing
 * database, a database that holds other data, or no volume give one clear line (exit 2 for a
 * usage error, 1 otherwise), never a hang or a stack trace, and create nothing.
 *
 * @module
 */

import assert from "node:assert/strict";
import { errorLines } from "./_cli.ts";
import { isMounted, runCli, startSlayer } from "./_mount.ts";
import { startRedis } from "./_redis.ts";

function assertOneLineError(
  r: { code: number; stderr: string },
  code: number,
  pattern: RegExp,
  what: string,
): void {
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, `${what}: expected one line on stderr, got:\n${r.stderr}`);
  assert.doesNotMatch(lines[0]!, /^\s*at |Uncaught|stack/i, `${what}: no stack trace`);
  assert.match(lines[0]!, pattern, `${what}: message`);
  assert.equal(r.code, code, `${what}: exit code`);
}

Deno.test("cli on redis: bad URLs, unreachable servers and foreign databases get one line", async () => {
  await using redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-cli-redis-" });
  try {
    const storage = `file://${dir}/blocks`;
    const format = (meta: string, ...extra: string[]) =>
      runCli(["format", ...extra, "--storage", storage, meta, "v"]);

    // Usage errors: exit 2.
    assertOneLineError(
      await format(redis.url() + "&colour=blue"),
      2,
      /Unknown parameter "colour" in "redis\+unix:.*": expected one of db, prefix/,
      "unknown parameter",
    );
    assertOneLineError(
      await format("redis:///0"),
      2,
      /names no host/,
      "no host",
    );
    assertOneLineError(
      await format(redis.url({ prefix: "a{b}" })),
      2,
      /Invalid prefix "a\{b\}"/,
      "a prefix that breaks the hash tag",
    );
    assertOneLineError(
      await runCli(["format", redis.url(), "v"]),
      2,
      /redis\+unix:\/\/ metadata needs --storage/,
      "format without --storage",
    );

    // The server cannot be used: exit 1.
    assertOneLineError(
      await format(`redis+unix://${dir}/none.sock`),
      1,
      /^slayerfs: Cannot connect to Redis at redis\+unix:\/\/.*none\.sock: connect ENOENT/,
      "no server on the socket",
    );
    assertOneLineError(
      await format("redis://127.0.0.1:1/0"),
      1,
      /^slayerfs: Cannot connect to Redis at redis:\/\/127\.0\.0\.1:1\/0: connect ECONNREFUSED/,
      "a refused TCP port",
    );
    assertOneLineError(
      await format(redis.url({ db: 99 })),
      1,
      /has no database 99: ERR DB index is out of range/,
      "a database out of range",
    );
    await redis.cli("-n", "2", "set", "session:42", "someone else's");
    assertOneLineError(
      await format(redis.url({ db: 2 })),
      1,
      /holds data that is not SlayerFS's \(key "session:42"\)/,
      "a database with other data",
    );
    await redis.cli("-n", "3", "set", "setting", "{}");
    assertOneLineError(
      await format(redis.url({ db: 3 })),
      1,
      /\(it looks like a JuiceFS volume\)/,
      "a JuiceFS database",
    );
    assert.equal(await redis.cli("-n", "2", "dbsize"), "1", "nothing written to a foreign db");

    // A mount of a database without a volume, or of no server, fails before the mountpoint exists.
    const mnt = `${dir}/mnt`;
    assertOneLineError(
      await runCli(["mount", redis.url({ db: 4 }), mnt]),
      1,
      /No volume in "redis\+unix:.*": run slayerfs format first/,
      "mount of an empty database",
    );
    assertOneLineError(
      await runCli(["mount", `redis+unix://${dir}/none.sock`, mnt]),
      1,
      /Cannot connect to Redis/,
      "mount without a server",
    );
    assertOneLineError(
      await runCli(["status", `redis+unix://${dir}/none.sock`]),
      1,
      /Cannot connect to Redis/,
      "status without a server",
    );
    assert.ok(!isMounted(mnt));
    await assert.rejects(Deno.stat(mnt), Deno.errors.NotFound, "no mountpoint left behind");
    assert.equal(await redis.cli("-n", "4", "dbsize"), "0", "nothing written to an empty db");

    // A volume is formatted, found again, and kept apart from another prefix.
    const ok = await format(redis.url({ db: 5 }));
    assert.equal(ok.code, 0, ok.stderr);
    const again = await format(redis.url({ db: 5 }));
    assert.equal(again.code, 0, again.stderr);
    const other = await format(redis.url({ db: 5, prefix: "second" }));
    assert.equal(other.code, 0, other.stderr);
    const status = await runCli(["status", redis.url({ db: 5, prefix: "second" })]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /Volume "v"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli on redis: a password is required, and a wrong one is refused", async () => {
  await using redis = await startRedis({ password: "s3cret" });
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-cli-redis-" });
  try {
    const format = (meta: string) =>
      runCli(["format", "--storage", `file://${dir}/blocks`, meta, "v"]);
    assertOneLineError(
      await format(redis.url()),
      1,
      /Redis at redis\+unix:.* needs a password \(redis\+unix:\/\/\[USER\]:PASS@localhost\/PATH\.sock\)/,
      "no password",
    );
    const wrong = await format(redis.url({ password: "guess" }));
    assertOneLineError(wrong, 1, /refused the credentials: WRONGPASS/, "a wrong password");
    assert.doesNotMatch(wrong.stderr, /guess/, "the password is not printed");
    // With the password: format, mount, and status and info beside the mount.
    await using fs = await startSlayer({ meta: redis.url({ password: "s3cret" }) });
    await Deno.writeTextFile(`${fs.mnt}/hello`, "hello");
    const status = await runCli(["status", fs.mnt]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /Metadata: +redis\+unix:\/\/:\*\*\*@localhost\//);
    assert.match(status.stdout, /Usage: +.*2 inodes/);
    assert.doesNotMatch(status.stdout, /s3cret/);
    const info = await runCli(["info", `${fs.mnt}/hello`]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /5/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli on redis: rediss:// verifies the server's certificate, with ?ca= for a private CA", async () => {
  await using redis = await startRedis({ tls: true });
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-cli-redis-" });
  try {
    const format = (meta: string) =>
      runCli(["format", "--storage", `file://${dir}/blocks`, meta, "v"]);
    assertOneLineError(
      await format(redis.tlsUrl({ ca: false })),
      1,
      /Cannot connect to Redis at rediss:\/\/localhost:\d+\/0: self-signed certificate/,
      "a certificate no known authority signed",
    );
    assertOneLineError(
      await format(redis.tlsUrl({ db: 1 }) + "&verify=no"),
      2,
      /Unknown parameter "verify" .*: expected one of prefix, ca/,
      "an unknown parameter",
    );
    const ok = await format(redis.tlsUrl({ db: 1 }));
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await redis.cli("-n", "1", "exists", "{slayerfs}m"), "1");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli on redis: a server that accepts but never answers is an error, not a hang", async () => {
  await using redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-cli-redis-" });
  redis.pause();
  try {
    assertOneLineError(
      await runCli(["format", "--storage", `file://${dir}/blocks`, redis.url(), "v"]),
      1,
      /^slayerfs: Redis at redis\+unix:.* does not answer \(no reply in 10 s\)$/,
      "a frozen server",
    );
  } finally {
    redis.resume();
    await Deno.remove(dir, { recursive: true });
  }
});
