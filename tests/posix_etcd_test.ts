/**
 * The POSIX suite on a SlayerFS mount whose metadata lives in a real etcd (a private single-node
 * cluster started by the test on loopback), blocks in a local folder.
 *
 * @module
 */

import { startSlayer } from "./_mount.ts";
import { startEtcd } from "./_etcd.ts";
import { networkedEngineCases } from "./posix/suite.ts";

/**
 * Per-case watchdog. Every create, unlink and write of one volume updates its usage counters, so
 * the writers of one mount take turns on etcd (see backends/kv_etcd.ts): large_directory's 30000
 * transactions take minutes on a loaded machine.
 */
const CASE_TIMEOUT_MS = 900_000;

Deno.test({
  name: "SlayerFS mount with etcd metadata passes every POSIX suite case",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using etcd = await startEtcd();
    await using fs = await startSlayer({
      meta: etcd.url("posix"),
      extraArgs: ["-o", "allow_other"],
    });
    for (const [name, run] of Object.entries(networkedEngineCases)) {
      await t.step(name, () => fs.guard(CASE_TIMEOUT_MS, name, () => run(fs.mnt)));
    }
  },
});
