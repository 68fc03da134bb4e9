/**
 * The POSIX suite on a SlayerFS mount whose metadata lives in a private PostgreSQL server
 * (tests/_postgres.ts, on a unix socket), with file block storage.
 *
 * @module
 */

import { startSlayer } from "./_mount.ts";
import { startPostgres } from "./_postgres.ts";
import { networkedEngineCases } from "./posix/suite.ts";

// Generous: each metadata operation is a few round trips to a server on this loaded machine.
const CASE_TIMEOUT_MS = 600_000;

Deno.test({
  name: "SlayerFS mount with PostgreSQL metadata passes every POSIX suite case",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using pg = await startPostgres();
    await using fs = await startSlayer({
      meta: await pg.newDatabase(),
      extraArgs: ["-o", "allow_other"],
    });
    for (const [name, run] of Object.entries(networkedEngineCases)) {
      await t.step(name, () => fs.guard(CASE_TIMEOUT_MS, name, () => run(fs.mnt)));
    }
  },
});
