import assert from "node:assert/strict";
import { type BlockStore, NotFoundError } from "../core/block_store.ts";
import { type S3TestServer, startS3Server } from "../tests/_s3server.ts";
import { openBlockStore } from "./registry.ts";
import { storeConformance } from "./store_conformance.ts";
import { openS3BlockStore, parseS3Url, S3BlockStore, type S3StoreOptions } from "./store_s3.ts";
import { configureLogging, resetLogging } from "../core/log.ts";

/** An object's key and size, without the time it was written. */
const keySize = (o: { key: string; size: number } | undefined) => o && { key: o.key, size: o.size };

const MiB = 1024 * 1024;

/** Starts a server with bucket `test`, runs `fn` with a store on it, and cleans everything up. */
async function withStore(
  fn: (store: S3BlockStore, server: S3TestServer) => Promise<void>,
  options: S3StoreOptions = {},
  prefix = "fs1",
  params = "",
): Promise<void> {
  const server = await startS3Server();
  try {
    await server.createBucket("test");
    const store = await openS3BlockStore(server.storeUrl("test", prefix) + params, {
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      ...options,
    });
    try {
      await fn(store, server);
    } finally {
      await store.close();
    }
  } finally {
    await server.stop();
  }
}

/** Compares byte arrays without node:assert's deepEqual, which is very slow on megabytes. */
function assertBytes(actual: Uint8Array, expected: Uint8Array, what = "bytes"): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}

// The shared block-store conformance suite, each case on its own fresh s3rver and bucket.
const servers = new WeakMap<BlockStore, S3TestServer>();
storeConformance("S3BlockStore", async () => {
  const server = await startS3Server();
  try {
    await server.createBucket("conformance");
    const store = await openS3BlockStore(server.storeUrl("conformance", "blocks"), {
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
    servers.set(store, server);
    return store;
  } catch (err) {
    await server.stop();
    throw err;
  }
}, {
  dispose: async (store) => {
    await servers.get(store)?.stop();
  },
});

function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
    out[i + 1] = (x >>> 8) & 0xff;
    out[i + 2] = (x >>> 16) & 0xff;
    out[i + 3] = (x >>> 24) & 0xff;
  }
  return out;
}

Deno.test("parseS3Url() reads bucket, prefix, endpoint, region and path style", () => {
  assert.deepEqual(
    parseS3Url("s3://blocks/fs1?endpoint=http://127.0.0.1:4568&region=eu-west-1&path_style=true"),
    {
      bucket: "blocks",
      prefix: "fs1/",
      endpoint: "http://127.0.0.1:4568",
      region: "eu-west-1",
      pathStyle: true,
      signPayload: false,
      http: "fetch",
      getTimeoutMs: 30_000,
      putTimeoutMs: 60_000,
      retries: 5,
    },
  );
  const tuned = parseS3Url("s3://bkt/p?get_timeout=2.5&put_timeout=10&retries=0");
  assert.deepEqual([tuned.getTimeoutMs, tuned.putTimeoutMs, tuned.retries], [2500, 10_000, 0]);
  assert.equal(parseS3Url("s3://bkt/p?http=node").http, "node");
  assert.equal(parseS3Url("s3://bkt/p?http=fetch").http, "fetch");
  assert.equal(parseS3Url("s3://bkt/p?sign_payload=true").signPayload, true);
  assert.equal(parseS3Url("s3://bkt/p?sign_payload=0").signPayload, false);
  const bare = parseS3Url("s3://my.bucket-1?region=us-east-2");
  assert.equal(bare.prefix, "");
  assert.equal(bare.endpoint, undefined);
  assert.equal(bare.pathStyle, false);
  assert.equal(parseS3Url("s3://b1b/a/b/?region=x1").prefix, "a/b/");
  assert.equal(
    parseS3Url("s3://bkt/p?endpoint=http%3A%2F%2Flocalhost%3A9000&region=r").endpoint,
    "http://localhost:9000",
  );
  assert.equal(
    parseS3Url("s3://bkt/p?endpoint=https://s3.example&path_style=false").pathStyle,
    false,
  );
});

Deno.test("parseS3Url() rejects bad URLs with clear messages", () => {
  const cases: [string, RegExp][] = [
    ["not a url", /Invalid S3 storage URL "not a url"/],
    ["file:///tmp/x", /must start with "s3:\/\/", got "file:\/\/\/tmp\/x"/],
    ["s3:///prefix", /names no bucket/],
    ["s3://AKIA:secret@bucket/p", /must not contain credentials/],
    ["s3://bucket:9000/p", /port after the bucket/],
    ["s3://Bad_Bucket/p", /Invalid bucket name "bad_bucket"|Invalid bucket name "Bad_Bucket"/],
    ["s3://bucket/p?endpiont=http://x", /Unknown S3 storage URL parameter "endpiont"/],
    ["s3://bucket/p?endpoint=localhost:9000", /Invalid S3 endpoint "localhost:9000"/],
    ["s3://bucket/p?endpoint=ftp://host", /Invalid S3 endpoint "ftp:\/\/host"/],
    ["s3://bucket/p?endpoint=http://host/path", /must not have a path/],
    ["s3://bucket/p?path_style=maybe", /Invalid path_style "maybe"/],
    ["s3://bucket/p?sign_payload=yes", /Invalid sign_payload "yes"/],
    ["s3://bucket/p?http=curl", /Invalid http "curl": expected fetch or node/],
    ["s3://bucket/p?region=EU%20West", /Invalid S3 region "EU West"/],
    ["s3://bucket/p?get_timeout=0", /Invalid get_timeout "0": expected seconds > 0/],
    ["s3://bucket/p?put_timeout=soon", /Invalid put_timeout "soon": expected seconds > 0/],
    ["s3://bucket/p?retries=-1", /Invalid retries "-1": expected a whole number >= 0/],
    ["s3://bucket/p?retries=1.5", /Invalid retries "1.5"/],
  ];
  for (const [url, message] of cases) {
    assert.throws(() => parseS3Url(url), message, url);
  }
});

Deno.test("S3BlockStore.url is canonical and has no secrets", async () => {
  const store = new S3BlockStore("s3://bkt/fs?endpoint=http://127.0.0.1:1&region=r1", {
    credentials: { accessKeyId: "AKIDSECRETID", secretAccessKey: "VERYSECRET" },
  });
  try {
    assert.equal(store.url, "s3://bkt/fs/?endpoint=http://127.0.0.1:1&region=r1&path_style=true");
    assert.equal(store.limits.concurrency, 16);
    assert.doesNotMatch(JSON.stringify(store), /SECRET/);
  } finally {
    await store.close();
  }
});
const tuned = new S3BlockStore("s3://bkt/fs?region=r1&retries=2&get_timeout=5&put_timeout=7.5");
try {
  assert.equal(
    tuned.url,
    "s3://bkt/fs/?region=r1&path_style=false&get_timeout=5&put_timeout=7.5&retries=2",
  );
  assert.equal(new S3BlockStore(tuned.url).url, tuned.url);
} finally {
  await tuned.close();
}

Deno.test("S3BlockStore put/get/head/delete/list round trip", async () => {
  await withStore(async (store) => {
    const data = pattern(100_000, 7);
    await store.put("a/1", data);
    await store.put("a/2", new Uint8Array(0));
    await store.put("b/1", data.subarray(10, 20));
    assert.deepEqual(await store.get("a/1"), data);
    assert.deepEqual(await store.get("a/2"), new Uint8Array(0));
    assert.deepEqual(await store.get("b/1"), data.slice(10, 20));
    assert.deepEqual(await store.get("a/1", 99_990), data.slice(99_990));
    assert.deepEqual(await store.get("a/1", 500, 1000), data.slice(500, 1500));
    assert.deepEqual(await store.get("a/1", 99_000, 5000), data.slice(99_000));
    assert.deepEqual(await store.get("a/1", 100_000, 10), new Uint8Array(0));
    assert.deepEqual(await store.get("a/1", 200_000, 10), new Uint8Array(0));
    assert.deepEqual(await store.get("a/1", 200_000), new Uint8Array(0));
    assert.deepEqual(await store.get("a/1", 5, 0), new Uint8Array(0));
    await assert.rejects(store.get("nope"), NotFoundError);
    await assert.rejects(store.get("nope", 10, 10), NotFoundError);
    await assert.rejects(store.get("nope", 0, 0), NotFoundError);
    assert.deepEqual(keySize(await store.head("a/1")), { key: "a/1", size: 100_000 });
    assert.deepEqual(keySize(await store.head("a/2")), { key: "a/2", size: 0 });
    assert.equal(await store.head("nope"), undefined);
    const page = await store.list("a/");
    assert.deepEqual(page.objects.map(keySize), [{ key: "a/1", size: 100_000 }, {
      key: "a/2",
      size: 0,
    }]);
    assert.equal(page.truncated, false);
    const first = await store.list("", { limit: 1 });
    assert.deepEqual(first.objects.map(keySize), [{ key: "a/1", size: 100_000 }]);
    assert.equal(first.truncated, true);
    assert.deepEqual((await store.list("", { startAfter: "a/1" })).objects.map((o) => o.key), [
      "a/2",
      "b/1",
    ]);
    await store.delete(["a/1", "missing", "b/1"]);
    await store.delete([]);
    assert.deepEqual((await store.list("")).objects.map((o) => o.key), ["a/2"]);
    await assert.rejects(store.get("a/1"), NotFoundError);
  });
});

Deno.test("S3BlockStore uploads with and without a signed payload", async () => {
  await withStore(async (store, server) => {
    const creds = { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };
    const signedUrl = `${server.storeUrl("test", "signed")}&sign_payload=true`;
    await using signed = await openS3BlockStore(signedUrl, { credentials: creds });
    assert.match(signed.url, /&sign_payload=true$/);
    assert.doesNotMatch(store.url, /sign_payload/);
    const data = pattern(3 * MiB + 17, 3);
    await store.put("unsigned", data);
    await signed.put("signed", data);
    assertBytes(await store.get("unsigned"), data, "unsigned payload");
    assertBytes(await signed.get("signed"), data, "signed payload");
    // A multipart upload (parts are PUTs with bodies too).
    const big = pattern(20 * MiB + 5, 4);
    await store.put("big", big);
    assertBytes(await store.get("big"), big, "unsigned multipart");
  });
});

Deno.test("S3BlockStore keeps to its prefix", async () => {
  await withStore(async (store, server) => {
    const creds = { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };
    await using other = await openS3BlockStore(server.storeUrl("test", "fs2"), {
      credentials: creds,
    });
    await using root = await openS3BlockStore(server.storeUrl("test"), { credentials: creds });
    await store.put("k", new Uint8Array([1]));
    await other.put("k", new Uint8Array([2, 2]));
    assert.deepEqual(await store.get("k"), new Uint8Array([1]));
    assert.deepEqual(await other.get("k"), new Uint8Array([2, 2]));
    assert.deepEqual((await root.list("")).objects.map((o) => o.key), ["fs1/k", "fs2/k"]);
    assert.deepEqual((await store.list("")).objects.map(keySize), [{ key: "k", size: 1 }]);
  });
});

Deno.test("openS3BlockStore() names a missing bucket", async () => {
  await using server = await startS3Server();
  const err = await openS3BlockStore(server.storeUrl("nobucket", "fs"), {
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof Error);
  assert.equal(err.message, `Bucket "nobucket" does not exist at ${server.endpoint}`);
});

Deno.test("openS3BlockStore() reports refused credentials", async () => {
  await using server = await startS3Server();
  await server.createBucket("test");
  // s3rver refuses unknown access keys with 403 InvalidAccessKeyId, but it does not verify
  // SigV4 signatures, so a wrong secret for a known key is accepted and cannot be tested here.
  const credentials = { accessKeyId: "NOSUCHKEY", secretAccessKey: "wrong-secret" };
  const err = await openS3BlockStore(server.storeUrl("test"), { credentials }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error);
  assert.equal(
    err.message,
    `Access to bucket "test" at ${server.endpoint} was refused (InvalidAccessKeyId): check the ` +
      "credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the AWS profile)",
  );
});

Deno.test("openBlockStore() opens s3:// URLs with credentials from the environment", async () => {
  await using server = await startS3Server();
  await server.createBucket("test");
  const saved = {
    id: Deno.env.get("AWS_ACCESS_KEY_ID"),
    secret: Deno.env.get("AWS_SECRET_ACCESS_KEY"),
  };
  Deno.env.set("AWS_ACCESS_KEY_ID", server.accessKeyId);
  Deno.env.set("AWS_SECRET_ACCESS_KEY", server.secretAccessKey);
  try {
    const store = await openBlockStore(server.storeUrl("test", "env"));
    try {
      assert.ok(store instanceof S3BlockStore);
      await store.put("x", new Uint8Array([9]));
      assert.deepEqual(await store.get("x"), new Uint8Array([9]));
    } finally {
      await store.close();
    }
  } finally {
    if (saved.id === undefined) Deno.env.delete("AWS_ACCESS_KEY_ID");
    else Deno.env.set("AWS_ACCESS_KEY_ID", saved.id);
    if (saved.secret === undefined) Deno.env.delete("AWS_SECRET_ACCESS_KEY");
    else Deno.env.set("AWS_SECRET_ACCESS_KEY", saved.secret);
  }
});

Deno.test("S3BlockStore uploads a 40 MiB object in parts and reads ranges across parts", async () => {
  await withStore(async (store, server) => {
    const data = pattern(40 * MiB, 42);
    await store.put("big", data);
    // The object went up as a multipart upload: s3rver keeps no "-N" ETag suffix, so check that
    // no part file was left behind and the object is whole.
    assert.deepEqual(keySize(await store.head("big")), { key: "big", size: 40 * MiB });
    const part = 8 * MiB;
    for (
      const [offset, length] of [
        [part - 10, 20],
        [2 * part - 1, part + 2],
        [0, 1],
        [39 * MiB, MiB],
        [40 * MiB - 5, 100],
      ] as const
    ) {
      assertBytes(
        await store.get("big", offset, length),
        data.subarray(offset, offset + length),
        `range ${offset}+${length}`,
      );
    }
    assertBytes(await store.get("big"), data, "whole object");
    assert.ok(server.directory.length > 0);
  });
});

Deno.test("S3BlockStore lists more than 1000 keys in pages and deletes in batches", async () => {
  await withStore(async (store) => {
    const keys = Array.from({ length: 2100 }, (_, i) => `k/${String(i).padStart(5, "0")}`);
    const one = new Uint8Array([1]);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < keys.length) await store.put(keys[next++]!, one);
      }),
    );
    const seen: string[] = [];
    let startAfter: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await store.list("k/", startAfter === undefined ? {} : { startAfter });
      pages++;
      seen.push(...page.objects.map((o) => o.key));
      if (!page.truncated) break;
      startAfter = page.objects.at(-1)!.key;
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen, keys);
    const big = await store.list("k/", { limit: 1500 });
    assert.equal(big.objects.length, 1500);
    assert.equal(big.truncated, true);
    const rest = await store.list("k/", { startAfter: big.objects.at(-1)!.key, limit: 5000 });
    assert.deepEqual(rest.objects.length, 600);
    assert.equal(rest.truncated, false);
    await store.delete(keys.slice(0, 2050));
    assert.deepEqual((await store.list("k/")).objects.map((o) => o.key), keys.slice(2050));
  });
});

Deno.test("S3BlockStore gives up quickly with a clear error when the endpoint refuses connections", async () => {
  // A port that was free a moment ago: nothing listens there.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const store = new S3BlockStore(`s3://test/p?endpoint=http://127.0.0.1:${port}`, {
    credentials: { accessKeyId: "a", secretAccessKey: "b" },
    maxAttempts: 4,
    baseBackoffMs: 20,
  });
  try {
    const t0 = performance.now();
    const err = await store.put("x", new Uint8Array([1])).then(() => undefined, (e: unknown) => e);
    const ms = performance.now() - t0;
    assert.ok(err instanceof Error);
    assert.match(
      err.message,
      new RegExp(
        `^S3 PUT "x" in bucket "test" at http://127.0.0.1:${port} failed after 4 attempts: .*ECONNREFUSED`,
      ),
    );
    assert.ok(ms < 3000, `took ${ms} ms`);
  } finally {
    await store.close();
  }
});

Deno.test("S3BlockStore retries across a server restart", async () => {
  await withStore(async (store, server) => {
    const data = pattern(256 * 1024, 3);
    await store.put("before", data);
    await server.kill();
    const writes = Promise.all(
      Array.from({ length: 8 }, (_, i) => store.put(`during/${i}`, data)),
    );
    const reads = store.get("before");
    await new Promise((r) => setTimeout(r, 300));
    await server.start();
    await writes;
    assertBytes(await reads, data);
    for (let i = 0; i < 8; i++) assertBytes(await store.get(`during/${i}`), data);
  }, { baseBackoffMs: 50, maxAttempts: 8 });
});

Deno.test("S3BlockStore times out a request that gets no answer (get_timeout, retries), then recovers", async () => {
  await withStore(
    async (store, server) => {
      await store.put("k", new Uint8Array([5]));
      server.pause();
      let resumed = false;
      const lines: string[] = [];
      configureLogging({ level: "debug", write: (l) => lines.push(l) });
      try {
        const t0 = performance.now();
        const err = await store.get("k").then(() => undefined, (e: unknown) => e);
        const ms = performance.now() - t0;
        assert.ok(err instanceof Error);
        assert.match(
          err.message,
          /^S3 GET "k" .* failed after 2 attempts: S3 GET timed out after 300 ms/,
        );
        assert.ok(ms < 2000, `took ${ms} ms`);
        server.resume();
        resumed = true;
        assert.deepEqual(await store.get("k"), new Uint8Array([5]));
        // The outage is one warning, its retries debug lines, its end one info line.
        const s3 = lines.filter((l) => l.includes(" s3: "));
        assert.match(
          s3[0] ?? "",
          /^slayerfs: \[warning\] s3: S3 GET "k" at .* failed, retrying: .*timed out/,
        );
        assert.match(s3[1] ?? "", /^slayerfs: \[debug\] s3: S3 GET "k" failed again/);
        assert.match(s3[2] ?? "", /^slayerfs: s3: S3 at http:\/\/127\.0\.0\.1:\d+ answers again/);
        assert.equal(s3.length, 3, s3.join(""));
      } finally {
        resetLogging();
        if (!resumed) server.resume();
      }
    },
    { baseBackoffMs: 10 },
    "fs1",
    "&get_timeout=0.3&retries=1",
  );
});

Deno.test({
  name: "S3BlockStore throughput for 4 MiB objects at concurrency 16",
  ignore: Deno.env.get("SLAYERFS_S3_BENCH") === undefined,
  fn: async () => {
    await withStore(async (store) => {
      const count = 64;
      const data = pattern(4 * MiB, 1);
      const run = async (op: (i: number) => Promise<unknown>) => {
        let next = 0;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: store.limits.concurrency }, async () => {
            while (next < count) await op(next++);
          }),
        );
        return (count * 4) / ((performance.now() - t0) / 1000);
      };
      const put = await run((i) => store.put(`bench/${i}`, data));
      const get = await run((i) => store.get(`bench/${i}`));
      console.log(`PUT ${put.toFixed(0)} MiB/s, GET ${get.toFixed(0)} MiB/s`);
    });
  },
});

Deno.test("S3BlockStore answers alike over fetch and over node:http", async () => {
  await withStore(async (store, server) => {
    const creds = { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };
    await using node = await openS3BlockStore(`${server.storeUrl("test", "fs1")}&http=node`, {
      credentials: creds,
    });
    assert.match(node.url, /&http=node$/);
    assert.doesNotMatch(store.url, /http=/);
    const data = pattern(4 * MiB + 3, 9);
    await store.put("a b+c", data); // a key that needs escaping in the path
    await node.put("n", data);
    for (const [name, s] of [["fetch", store], ["node", node]] as const) {
      for (const key of ["a b+c", "n"]) {
        assertBytes(await s.get(key), data, `${name} ${key} whole`);
        assertBytes(await s.get(key, MiB - 5, 2 * MiB), data.subarray(MiB - 5, 3 * MiB - 5), name);
        assertBytes(
          await s.get(key, data.byteLength - 2),
          data.subarray(data.byteLength - 2),
          name,
        );
        assert.equal((await s.get(key, data.byteLength + 10, 4)).byteLength, 0, `${name} past end`);
        assert.equal((await s.head(key))?.size, data.byteLength, `${name} head`);
      }
      await assert.rejects(s.get("missing"), NotFoundError, `${name} missing`);
      assert.equal(await s.head("missing"), undefined, `${name} head missing`);
      assert.deepEqual((await s.list("")).objects.map((o) => o.key).sort(), ["a b+c", "n"]);
    }
  });
});
