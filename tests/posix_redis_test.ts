/**
 * The POSIX suite on a SlayerFS mount whose metadata lives in a real Redis (a private
 * `redis-server` started by the test on a unix socket, with an fsync'ed append-only file).
 *
 * @module
 */

import { startSlayer } from "./_mount.ts";
import { startRedis } from "./_redis.ts";
import { networkedEngineCases } from "./posix/suite.ts";

const CASE_TIMEOUT_MS = 300_000;

Deno.test({
  name: "SlayerFS mount on Redis metadata passes every POSIX suite case",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    // Durability is the outage test's subject (redis_outage_test.ts); here an fsync of the
    // append-only file per commit would only make the 10,000-file cases slow.
    await using redis = await startRedis({ appendfsync: "everysec" });
    await using fs = await startSlayer({
      meta: redis.url({ prefix: "posix" }),
      extraArgs: ["-o", "allow_other"],
    });
    for (const [name, run] of Object.entries(networkedEngineCases)) {
      await t.step(name, () => fs.guard(CASE_TIMEOUT_MS, name, () => run(fs.mnt)));
    }
  },
});
