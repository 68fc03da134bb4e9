/**
 * `etcd://` volumes through the real CLI against a private etcd: each way a volume can be wrong
 * (a bad URL, a server that is not there, refused credentials, a prefix holding other data or
 * another volume, a prefix with no volume) ends `format` or `mount` with one line and exit code
 * 1 (2 for a malformed URL), never a hang or a stack trace; and the right credentials work.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cliIn, errorLines } from "./_cli.ts";
import { startEtcd } from "./_etcd.ts";
import { forceUnmountSync } from "./_mount.ts";

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-etcd-cli-" });
  try {
    await fn(dir);
  } finally {
    forceUnmountSync(`${dir}/m`);
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs the CLI and returns its single error line, checking the exit code. */
async function failsWith(
  args: string[],
  code: number,
  env: Record<string, string> = {},
): Promise<string> {
  const r = await cliIn(args, undefined, env);
  const lines = errorLines(r.stderr);
  assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
  assert.equal(lines.length, 1, r.stderr);
  assert.doesNotMatch(lines[0]!, /\bat .*\.(ts|js):\d+/, "no stack trace");
  return lines[0]!;
}

Deno.test("malformed etcd URLs are usage errors naming what is wrong", async () => {
  await withTemp(async (dir) => {
    const storage = ["--storage", `file://${dir}/blocks`];
    const cases: [string, RegExp][] = [
      ["etcd://127.0.0.1:2379", /needs a key prefix for the volume, e\.g\. etcd:\/\/127/],
      ["etcd://127.0.0.1:2379/v?timeout=3", /Unknown parameter "timeout"/],
      ["etcd://localhost/v", /Invalid etcd endpoint "localhost".*expected HOST:PORT/],
      ["etcd://127.0.0.1:2379,nohost/v", /Invalid etcd endpoint "nohost"/],
    ];
    for (const [url, expected] of cases) {
      assert.match(await failsWith(["format", ...storage, url, "v"], 2), expected);
    }
    const noStorage = await failsWith(["format", "etcd://127.0.0.1:2379/v", "v"], 2);
    assert.match(noStorage, /etcd:\/\/ metadata needs --storage/);
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing created");
  });
});

Deno.test("an etcd that refuses connections is one line, at format and at mount", async () => {
  await withTemp(async (dir) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close(); // nothing listens there now: connections are refused
    const url = `etcd://127.0.0.1:${port}/v`;
    const format = await failsWith(["format", "--storage", `file://${dir}/blocks`, url, "v"], 1);
    assert.match(format, new RegExp(`Cannot reach etcd at 127\\.0\\.0\\.1:${port}.*refused`));
    await Deno.mkdir(`${dir}/m`);
    const mount = await failsWith(["mount", url, `${dir}/m`], 1);
    assert.match(mount, new RegExp(`Cannot reach etcd at 127\\.0\\.0\\.1:${port}`));
  });
});

Deno.test("etcd prefixes: foreign data, another volume, no volume", async () => {
  await using etcd = await startEtcd();
  await withTemp(async (dir) => {
    const storage = ["--storage", `file://${dir}/blocks`];
    await etcd.put("other/config", "not ours");
    const foreign = await failsWith(["format", ...storage, etcd.url("other"), "v"], 1);
    assert.match(foreign, /prefix "other" .* holds data that is not a SlayerFS volume/);

    const ok = await cliIn(["format", ...storage, etcd.url("vol"), "v"]);
    assert.equal(ok.code, 0, ok.stderr);
    const other = await failsWith([
      "format",
      ...storage,
      "--block-size",
      "1M",
      etcd.url("vol"),
      "v",
    ], 1);
    assert.match(other, /already formatted with blockSize/);
    // A volume below another one's prefix would mix keys with it: refused too.
    const below = await failsWith(["format", ...storage, etcd.url("vol/sub"), "v"], 1);
    assert.match(below, /prefix "vol\/sub" .* is inside the SlayerFS volume at prefix "vol"/);

    await Deno.mkdir(`${dir}/m`);
    const none = await failsWith(["mount", etcd.url("empty"), `${dir}/m`], 1);
    assert.match(none, /No volume in "etcd:\/\/.*\/empty": run slayerfs format first/);
    const mountForeign = await failsWith(["mount", etcd.url("other"), `${dir}/m`], 1);
    assert.match(mountForeign, /holds data that is not a SlayerFS volume/);
  });
});

Deno.test("etcd credentials: refused, missing, then accepted from ETCD_PASSWORD", async () => {
  await using etcd = await startEtcd();
  await etcd.enableAuth("s3cret");
  await withTemp(async (dir) => {
    const storage = ["--storage", `file://${dir}/blocks`];
    const bad = etcd.url("v", { user: "root", password: "wrong" });
    assert.match(
      await failsWith(["format", ...storage, bad, "v"], 1),
      /etcd at 127\.0\.0\.1:\d+ refused the credentials of etcd:\/\/root:\*\*\*@/,
    );
    assert.match(
      await failsWith(["format", ...storage, etcd.url("v"), "v"], 1),
      /requires a user and password/,
    );
    const user = etcd.url("v").replace("etcd://", "etcd://root@");
    const ok = await cliIn(["format", ...storage, user, "v"], undefined, {
      ETCD_PASSWORD: "s3cret",
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.doesNotMatch(ok.stdout + ok.stderr, /s3cret/, "the password is never printed");
  });
});

Deno.test("etcds: TLS volumes format, and a missing client certificate is one line", async () => {
  await using etcd = await startEtcd({ tls: true });
  await withTemp(async (dir) => {
    const storage = ["--storage", `file://${dir}/blocks`];
    const noCert = etcd.url("t", undefined, { clientCert: false });
    assert.match(
      await failsWith(["format", ...storage, noCert, "t"], 1),
      // Whether the client sees the close or the server's alert first depends on timing.
      /Cannot reach etcd at localhost:\d+ .*(the server closed the connection|BadCertificate)/,
    );
    const missing = etcd.url("t").replace(/ca=[^&]*/, `ca=${dir}/none.pem`);
    assert.match(
      await failsWith(["format", ...storage, missing, "t"], 1),
      /Cannot read the CA certificate ".*none\.pem"/,
    );
    const ok = await cliIn(["format", ...storage, etcd.url("t"), "t"]);
    assert.equal(ok.code, 0, ok.stderr);
  });
});
