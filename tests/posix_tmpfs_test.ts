/**
 * Runs every POSIX suite case on a private tmpfs, the reference: every case must pass there.
 *
 * @module
 */

import { mountTmpfs } from "./_tmpfs.ts";
import { posixCases } from "./posix/suite.ts";

Deno.test({
  name: "tmpfs passes every POSIX suite case",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using tmp = await mountTmpfs("2g");
    for (const [name, run] of Object.entries(posixCases)) {
      await t.step(name, () => run(tmp.mnt));
    }
  },
});
