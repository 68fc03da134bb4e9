/**
 * `slayerfs status` prints no credential: the metadata URL's password is masked in the text and
 * JSON views of a mount and of a volume (PostgreSQL with a password in its URL, a real mount).
 *
 * @module
 */

import assert from "node:assert/strict";
import { runCli, startSlayer } from "./_mount.ts";
import { PG_SUPERUSER, startPostgres } from "./_postgres.ts";

Deno.test({
  name: "status masks the metadata URL's password in every view",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using pg = await startPostgres();
    await pg.newDatabase("masked");
    // The superuser logs in by `trust` on the private cluster's socket: the password in the URL
    // is carried everywhere the URL goes, but never checked.
    const password = "Pg-Secret-4711";
    const meta = pg.url("masked", PG_SUPERUSER, password);
    await using fs = await startSlayer({ meta });
    await Deno.writeTextFile(`${fs.mnt}/f`, "x");
    for (
      const args of [["status", fs.mnt], ["status", "--json", fs.mnt], ["status", meta], [
        "status",
        "--json",
        meta,
      ]]
    ) {
      const r = await runCli(args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.ok(!r.stdout.includes(password), `${args.join(" ")} prints the password`);
    }
    const st = JSON.parse((await runCli(["status", "--json", fs.mnt])).stdout) as {
      meta: string;
      args?: string[];
    };
    assert.match(st.meta, /^postgres:\/\/slayer:\*\*\*@localhost\/masked\?/);
    assert.ok(st.args?.every((a) => !a.includes(password)), "the daemon's arguments");
  },
});
