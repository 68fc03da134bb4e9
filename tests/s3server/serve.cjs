// Runs s3rver for tests/_s3server.ts: loopback, a port chosen by the kernel (or given), private
// credentials, silent. Prints one JSON line {"port":N} once it listens, and exits when its stdin
// closes so that it never outlives the test process that started it.
"use strict";

const S3rver = require("s3rver");
const AWSAccount = require("s3rver/lib/models/account");
const FilesystemStore = require("s3rver/lib/stores/filesystem");

// s3rver walks its directory tree to list, so keys come out in directory order ("l/x" before
// "l-x"), not in the byte order S3 promises, and it stats every file and reads every listed
// object's metadata. Collect the matching keys from directory entries alone (no stat), sort them
// by bytes, page, and read the metadata of the page's objects only, so that listing a prefix of
// N objects page by page costs O(N) per page in directory entries, not in file reads.
const fs = require("fs");
const path = require("path");
const S3Object = require("s3rver/lib/models/object");
const OBJECT_SUFFIX = "._S3rver_object";
function* objectKeys(bucketPath, prefix) {
  const stack = [bucketPath];
  while (stack.length > 0) {
    const dir = stack.pop();
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.posix.join(dir, ent.name);
      const rel = full.slice(bucketPath.length + 1);
      if (ent.isDirectory()) {
        // Only directories that can hold keys under the prefix.
        if (rel.startsWith(prefix) || prefix.startsWith(rel + "/")) stack.push(full);
      } else if (ent.name.endsWith(OBJECT_SUFFIX)) {
        const key = rel.slice(0, -OBJECT_SUFFIX.length);
        if (key.startsWith(prefix)) yield key;
      }
    }
  }
}
FilesystemStore.prototype.listObjects = async function (bucket, options) {
  const { delimiter = "", startAfter = "", prefix = "", maxKeys = Infinity } = options;
  const byBytes = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  const after = (key) => byBytes(key, startAfter) > 0;
  const keys = [];
  const commonPrefixes = new Set();
  for (const key of objectKeys(this.getBucketPath(bucket), prefix)) {
    const idx = delimiter ? key.slice(prefix.length).indexOf(delimiter) : -1;
    if (idx !== -1) commonPrefixes.add(key.slice(0, prefix.length + idx + delimiter.length));
    else if (after(key)) keys.push(key);
  }
  keys.sort(byBytes);
  const page = keys.slice(0, maxKeys);
  const metadata = await Promise.all(
    page.map((key) =>
      this.getMetadata(bucket, key).catch((err) => {
        if (err.code === "ENOENT") return undefined;
        throw err;
      })
    ),
  );
  const objects = [];
  page.forEach((key, i) => {
    if (metadata[i] !== undefined) objects.push(new S3Object(bucket, key, null, metadata[i]));
  });
  return {
    objects,
    commonPrefixes: [...commonPrefixes].filter(after).sort(byBytes),
    isTruncated: keys.length > maxKeys,
  };
};

// s3rver streams a PUT straight into the object's file, so two PUTs of one key interleave into an
// object neither wrote. S3 keeps one of them whole: serialize PUTs per key to get the same.
const putObject = FilesystemStore.prototype.putObject;
const putChains = new Map();
FilesystemStore.prototype.putObject = function (object) {
  const id = `${object.bucket}/${object.key}`;
  const run = (putChains.get(id) || Promise.resolve()).then(() => putObject.call(this, object));
  const tail = run.catch(() => {});
  putChains.set(id, tail);
  tail.then(() => {
    if (putChains.get(id) === tail) putChains.delete(id);
  });
  return run;
};

// s3rver's DELETE removes the key's directories once they look empty, while a PUT of another key
// in the same directory may be between creating it and opening its file there: that PUT's write
// stream then fails with ENOENT, an unhandled 'error' event that kills the server. S3 has no
// directories: delete the object's files and leave the (empty) directories, which hold no key.
FilesystemStore.prototype.deleteObject = async function (bucket, key) {
  await Promise.all(
    ["object", "object.md5", "metadata.json"].map((kind) =>
      fs.promises.unlink(this.getResourcePath(bucket, key, kind)).catch((err) => {
        if (err.code !== "ENOENT") throw err;
      })
    ),
  );
};

const [directory, port, accessKeyId, secretAccessKey] = process.argv.slice(2);
if (!directory || port === undefined || !accessKeyId || !secretAccessKey) {
  console.error(
    "usage: serve.cjs DIRECTORY PORT ACCESS_KEY_ID SECRET_ACCESS_KEY",
  );
  process.exit(2);
}

// Replace the well-known default key pair with the one the harness chose.
AWSAccount.DUMMY_ACCOUNT.revokeAccessKey("S3RVER");
AWSAccount.DUMMY_ACCOUNT.createKeyPair(accessKeyId, secretAccessKey);

// s3rver answers a range of an empty object with "206, Content-Length: 1" and no byte, so the
// client waits until the connection drops. S3 answers 416 InvalidRange; so do we.
// S3RVER_GET_LATENCY_MS (benchmarks): each GET waits this long first, as a remote service would.
const getLatencyMs = Number(process.env.S3RVER_GET_LATENCY_MS || 0);
const getObject = FilesystemStore.prototype.getObject;
FilesystemStore.prototype.getObject = async function (bucket, key, options) {
  if (getLatencyMs > 0) await new Promise((resolve) => setTimeout(resolve, getLatencyMs));
  const object = await getObject.call(this, bucket, key, options);
  if (object && object.range && object.size === 0 && object.content) {
    object.content.destroy();
    object.content = null;
  }
  return object;
};

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
