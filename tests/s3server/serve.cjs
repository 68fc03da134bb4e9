// Runs s3rver for tests/_s3server.ts: loopback, a port chosen by the kernel (or given), private
// credentials, silent. Prints one JSON line {"port":N} once it listens, and exits when its stdin
// closes so that it never outlives the test process that started it.
"use strict";

const S3rver = require("s3rver");
const AWSAccount = require("s3rver/lib/models/account");

const [directory, port, accessKeyId, secretAccessKey] = process.argv.slice(2);
if (!directory || port === undefined || !accessKeyId || !secretAccessKey) {
  console.error("usage: serve.cjs DIRECTORY PORT ACCESS_KEY_ID SECRET_ACCESS_KEY");
  process.exit(2);
}

// Replace the well-known default key pair with the one the harness chose.
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey("S3RVER");
AWSAccount.DUMMY_ACCOUNT.createKeyPair(accessKeyId, secretAccessKey);

const server = new S3rver({
  address: "127.0.0.1",
  port: Number(port),
  directory,
  silent: true,
  vhostBuckets: false,
});

server.run().then(
  (address) => process.stdout.write(JSON.stringify({ port: address.port }) + "\n"),
  (err) => {
    console.error(`s3rver failed to start: ${err && err.stack || err}`);
    process.exit(1);
  },
);

process.stdin.on("data", () => {});
process.stdin.on("end", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
