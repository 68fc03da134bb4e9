/**
 * Runs every POSIX suite case on a real SlayerFS mount (SQLite metadata, file storage), one test
 * step per case, mounted with `-o allow_other` so the non-root cases can reach it. Each case runs under the harness watchdog, so a hung request kills the daemon,
 * fails that case, and the next case gets a fresh mount of the same volume.
 *
 * @module
 */

import { startSlayer } from "./_mount.ts";
import { posixCases } from "./posix/suite.ts";

/** Per-case limit; the large cases take well under this on tmpfs. */
const CASE_TIMEOUT_MS = 120_000;

Deno.test({
  name: "SlayerFS mount passes every POSIX suite case",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    // The non-root cases need other users to reach the mount.
    await using fs = await startSlayer({ extraArgs: ["-o", "allow_other"] });
    for (const [name, run] of Object.entries(posixCases)) {
      await t.step(name, () => fs.guard(CASE_TIMEOUT_MS, name, () => run(fs.mnt)));
    }
  },
});
