/**
 * The POSIX suite on a SlayerFS mount whose blocks live in a real S3-compatible server (s3rver,
 * started by the test as a separate process on loopback).
 *
 * @module
 */

import { startSlayer } from "./_mount.ts";
import { startS3Server } from "./_s3server.ts";
import { posixCases } from "./posix/suite.ts";

const CASE_TIMEOUT_MS = 180_000;

Deno.test({
  name: "SlayerFS mount on S3 passes every POSIX suite case",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using server = await startS3Server();
    await server.createBucket("posix");
    // The daemon takes its credentials from the environment, like any AWS SDK client.
    server.exportCredentials();
    await using fs = await startSlayer({
      storage: server.storeUrl("posix", "vol"),
      extraArgs: ["-o", "allow_other"],
    });
    for (const [name, run] of Object.entries(posixCases)) {
      await t.step(name, () => fs.guard(CASE_TIMEOUT_MS, name, () => run(fs.mnt)));
    }
  },
});
