/**
 * `format` and `mount` on a PostgreSQL metadata URL that cannot be used: each mistake is one clear
 * line on stderr (exit 2 for a malformed URL, as for any usage error; exit 1 otherwise), no
 * stack trace, no hang, and nothing left behind. Runs against a private server
 * (tests/_postgres.ts), plus a TCP listener that never answers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { errorLines } from "./_cli.ts";
import { forceUnmountSync, runCli } from "./_mount.ts";
import { startPostgres } from "./_postgres.ts";

function assertOneLine(
  r: { code: number; stderr: string },
  code: number,
  pattern: RegExp,
  what: string,
): void {
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, `${what}: expected one line on stderr, got:\n${r.stderr}`);
  assert.doesNotMatch(lines[0]!, /^\s*at |Uncaught|stack/i, `${what}: no stack trace`);
  assert.match(lines[0]!, pattern, `${what}: message`);
  assert.equal(r.code, code, `${what}: exit code (${lines[0]})`);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

Deno.test({
  name: "format and mount on an unusable PostgreSQL URL fail with one clear line",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using pg = await startPostgres();
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-cli-pg-" });
    // A TCP port that accepts connections and never answers.
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      try {
        for await (const conn of silent) held.push(conn);
      } catch { /* closed */ }
    })();
    try {
      const storage = `file://${dir}/blocks`;
      const format = (meta: string) => runCli(["format", "--storage", storage, meta, "v"]);
      const mount = (meta: string) => runCli(["mount", meta, `${dir}/mnt`]);
      const socketUrl = (db: string, extra = "") => pg.url(db) + extra;

      // Malformed URLs: usage errors.
      assertOneLine(
        await format(socketUrl("vol", "&frob=1")),
        2,
        /Unknown parameter "frob"/,
        "unknown parameter",
      );
      assertOneLine(
        await format(socketUrl("vol", "&pool=0")),
        2,
        /Invalid pool "0"/,
        "bad pool",
      );
      assertOneLine(await format("postgres://u@localhost/"), 2, /names no database/, "no db");

      assertOneLine(
        await runCli(["format", socketUrl("vol"), "v"]),
        2,
        /needs --storage/,
        "no --storage",
      );

      // Nothing listens there.
      assertOneLine(
        await format(`postgres://u@localhost/vol?host=${dir}/nowhere&port=5999`),
        1,
        /Cannot connect to PostgreSQL at .*nowhere.*: no server socket there/,
        "no socket",
      );
      const port = (silent.addr as Deno.NetAddr).port;
      const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const refusedPort = (closed.addr as Deno.NetAddr).port;
      closed.close();
      assertOneLine(
        await format(`postgres://u:p@127.0.0.1:${refusedPort}/vol`),
        1,
        /Cannot connect to PostgreSQL at 127\.0\.0\.1:\d+: connection refused/,
        "refused",
      );
      const t0 = Date.now();
      assertOneLine(
        await format(`postgres://u:p@127.0.0.1:${port}/vol?connect_timeout=2`),
        1,
        /Cannot connect to PostgreSQL at 127\.0\.0\.1:\d+: no answer in 2 s/,
        "silent server",
      );
      assert.ok(Date.now() - t0 < 30_000, "the connect timeout bounds the wait");

      // The server answers but refuses.
      await pg.createRole("alice", "right");
      await pg.newDatabase("alicedb");
      assertOneLine(
        await format(pg.url("alicedb", "alice", "wrong")),
        1,
        /refused the credentials of user "alice"/,
        "wrong password",
      );
      assertOneLine(
        await format(socketUrl("missing")),
        1,
        /database "missing" does not exist/,
        "missing database",
      );
      const foreign = await pg.newDatabase("foreign");
      await pg.query("foreign", "CREATE TABLE users (id integer)");
      for (const [what, run] of [["format", format], ["mount", mount]] as const) {
        assertOneLine(
          await run(foreign),
          1,
          /holds tables that are not SlayerFS's \(users\)/,
          `${what} on a foreign database`,
        );
      }
      const empty = await pg.newDatabase("empty");
      assertOneLine(
        await mount(empty),
        1,
        /holds no SlayerFS metadata: run slayerfs format first/,
        "mount of an empty database",
      );
      assert.deepEqual(
        await pg.query(
          "empty",
          "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
        ),
        [],
        "a mount creates nothing",
      );

      // A volume formatted by a newer build.
      const newer = await pg.newDatabase("newer");
      const ok = await format(newer);
      assert.equal(ok.code, 0, ok.stderr);
      await pg.query("newer", "UPDATE slayerfs_schema SET version = 99");
      assertOneLine(
        await mount(newer),
        1,
        /has SlayerFS schema version 99; this build reads up to 1/,
        "newer schema",
      );
      assert.equal(await exists(`${dir}/mnt`), false, "no mountpoint was made");
    } finally {
      silent.close();
      for (const c of held) c.close();
      await accepting;
      forceUnmountSync(`${dir}/mnt`);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
