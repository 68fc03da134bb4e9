import assert from "node:assert/strict";
import { type BlockStore, NotFoundError } from "../core/block_store.ts";
import { Errno, FsError } from "../core/errno.ts";
import { startS3Server } from "../tests/_s3server.ts";
import { FaultyBlockStore, FileBlockStore, MemoryBlockStore } from "./mod.ts";
import { storeConformance } from "./store_conformance.ts";
import { openS3BlockStore } from "./store_s3.ts";
import {
  WRITEBACK_TEMP_PREFIX,
  WritebackBlockStore,
  type WritebackOptions,
} from "./store_writeback.ts";

/** An object's key and size, without the time it was written. */
const keySize = (o: { key: string; size: number } | undefined) => o && { key: o.key, size: o.size };

const KiB = 1024;
const MiB = 1024 * KiB;
const FAST_RETRY = { baseMs: 5, maxMs: 40 };

function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (seed * 31 + i * 7 + (i >> 8)) & 0xff;
  return out;
}

/** Compares bytes without node:assert's deepEqual, which is slow on megabytes. */
function assertBytes(actual: Uint8Array, expected: Uint8Array, what = "bytes"): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${what}: byte ${i} differs`);
  }
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-writeback-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function stagedNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function waitFor(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) assert.fail(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function openOver(
  inner: BlockStore,
  dir: string,
  extra: Partial<WritebackOptions> = {},
): Promise<WritebackBlockStore> {
  return WritebackBlockStore.open(inner, {
    dir,
    capacityBytes: 64 * MiB,
    retry: FAST_RETRY,
    ...extra,
  });
}

const isPut = (call: { op: string }) => call.op === "put";

// The shared conformance suite, each case on a fresh staging directory over a memory store.
const dirs = new Map<BlockStore, string>();
storeConformance("WritebackBlockStore over MemoryBlockStore", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-writeback-" });
  const store = await openOver(new MemoryBlockStore(), dir);
  dirs.set(store, dir);
  return store;
}, {
  dispose: async (store) => {
    const dir = dirs.get(store);
    dirs.delete(store);
    if (dir !== undefined) await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("put() is readable at once from staging and reaches the inner store after flush()", async () => {
  await withDir(async (dir) => {
    const mem = new MemoryBlockStore();
    const inner = new FaultyBlockStore(mem.share());
    const heal = inner.failWhen(isPut); // uploads cannot finish yet
    const store = await openOver(inner, dir);
    try {
      const key = "chunks/0/1/1234_0_4194304";
      const data = pattern(300 * KiB, 1);
      await store.put(key, data);
      assert.deepEqual(await stagedNames(dir), ["chunks%2F0%2F1%2F1234_0_4194304"]);
      assert.equal(await mem.head(key), undefined);
      assertBytes(await store.get(key), data);
      assertBytes(await store.get(key, 1000, 5000), data.subarray(1000, 6000), "range");
      assertBytes(await store.get(key, data.length - 10, 100), data.subarray(-10), "tail");
      assert.equal((await store.get(key, data.length + 5, 10)).length, 0);
      assert.deepEqual(keySize(await store.head(key)), { key, size: data.length });
      assert.equal(store.stats().stagedObjects, 1);
      assert.equal(store.stats().stagedBytes, data.length);

      heal();
      await store.flush();
      assertBytes(await mem.get(key), data, "inner copy");
      assert.deepEqual(await stagedNames(dir), []);
      const stats = store.stats();
      assert.equal(stats.stagedObjects, 0);
      assert.equal(stats.stagedBytes, 0);
      assert.equal(stats.uploading, 0);
      assert.equal(stats.uploaded, 1);
      assertBytes(await store.get(key, 10, 10), data.subarray(10, 20), "from inner");
    } finally {
      await store.close();
    }
  });
});

Deno.test("an outage: puts and gets of staged data go on, uploads resume when it ends", async () => {
  await withDir(async (dir) => {
    const mem = new MemoryBlockStore();
    const inner = new FaultyBlockStore(mem.share());
    const errors: unknown[] = [];
    const store = await openOver(inner, dir, {
      uploadConcurrency: 3,
      onError: (e) => errors.push(e),
    });
    try {
      await store.put("before", pattern(100, 0));
      await store.flush();
      const heal = inner.failWhen(() => true); // every call fails: S3 is unreachable
      const keys = Array.from({ length: 20 }, (_, i) => `chunks/${i % 3}/${i}/${i}_0_65536`);
      for (const [i, key] of keys.entries()) {
        await store.put(key, pattern(64 * KiB, i));
        assert.equal(store.stats().stagedBytes, (i + 1) * 64 * KiB);
      }
      await waitFor("failed uploads", () => store.stats().failures >= 3);
      for (const [i, key] of keys.entries()) {
        assertBytes(await store.get(key), pattern(64 * KiB, i));
      }
      assert.equal((await store.head(keys[0]!))?.size, 64 * KiB);
      await assert.rejects(store.get("before"), FsError); // only in the dead inner store
      assert.equal(mem.size, 1);
      assert.match(store.stats().lastError ?? "", /Injected fault/);
      assert.ok(errors.length >= 3);

      heal();
      await store.flush();
      assert.equal(mem.size, 21);
      for (const [i, key] of keys.entries()) assertBytes(await mem.get(key), pattern(64 * KiB, i));
      assert.equal(store.stats().stagedObjects, 0);
      assert.deepEqual(await stagedNames(dir), []);
    } finally {
      await store.close();
    }
  });
});

Deno.test("a full staging area fails puts with ENOSPC during an outage and loses nothing", async () => {
  await withDir(async (dir) => {
    const mem = new MemoryBlockStore();
    const inner = new FaultyBlockStore(mem.share());
    const heal = inner.failWhen(isPut);
    const store = await openOver(inner, dir, { capacityBytes: 100 * KiB });
    try {
      await store.put("a", pattern(40 * KiB, 1));
      await store.put("b", pattern(40 * KiB, 2));
      await waitFor("a failed upload", () => store.stats().failures > 0);
      const enospc = (err: unknown) => err instanceof FsError && err.errno === Errno.ENOSPC;
      await assert.rejects(store.put("c", pattern(40 * KiB, 3)), enospc);
      await assert.rejects(store.put("huge", pattern(101 * KiB, 4)), enospc);
      assert.deepEqual(await stagedNames(dir), ["a", "b"]); // no temporary file left behind
      assert.equal(store.stats().stagedBytes, 80 * KiB);
      await store.put("small", pattern(20 * KiB, 5)); // what fits still goes in

      heal();
      await store.flush();
      assertBytes(await mem.get("a"), pattern(40 * KiB, 1));
      assertBytes(await mem.get("b"), pattern(40 * KiB, 2));
      assertBytes(await mem.get("small"), pattern(20 * KiB, 5));
      await store.put("c", pattern(40 * KiB, 3)); // room again
      await store.flush();
      assertBytes(await mem.get("c"), pattern(40 * KiB, 3));
    } finally {
      await store.close();
    }
  });
});

Deno.test("a full staging area makes puts wait while uploads make room", async () => {
  await withDir(async (dir) => {
    const mem = new MemoryBlockStore();
    const inner = new FaultyBlockStore(mem.share(), { latencyMs: 20 });
    const store = await openOver(inner, dir, { capacityBytes: 100 * KiB, uploadConcurrency: 2 });
    try {
      let peak = 0;
      await Promise.all(Array.from({ length: 12 }, async (_, i) => {
        await store.put(`k/${i}`, pattern(30 * KiB, i));
        peak = Math.max(peak, store.stats().stagedBytes);
      }));
      assert.ok(peak <= 100 * KiB, `peak ${peak}`);
      await store.flush();
      assert.equal(mem.size, 12);
      for (let i = 0; i < 12; i++) assertBytes(await mem.get(`k/${i}`), pattern(30 * KiB, i));
    } finally {
      await store.close();
    }
  });
});

Deno.test("delete() of a staged key before and during its upload leaves it nowhere", async () => {
  await withDir(async (dir) => {
    const mem = new MemoryBlockStore();
    const inner = new FaultyBlockStore(mem.share());
    const store = await openOver(inner, dir);
    try {
      // Before: uploads fail, the key is only staged.
      const heal = inner.failWhen(isPut);
      await store.put("d/before", pattern(1000, 1));
      await waitFor("a failed upload", () => store.stats().failures > 0);
      await store.delete(["d/before"]);
      assert.equal(await store.head("d/before"), undefined);
      await assert.rejects(store.get("d/before"), NotFoundError);
      assert.deepEqual(await stagedNames(dir), []);
      heal();
      await store.flush();
      assert.equal(await mem.head("d/before"), undefined);

      // During: the inner put is in flight when delete() is called.
      inner.latencyMs = 150;
      await store.put("d/during", pattern(1000, 2));
      await waitFor("the upload to start", () => store.stats().uploading === 1);
      await store.delete(["d/during"]);
      assert.equal(await mem.head("d/during"), undefined);
      assert.equal(await store.head("d/during"), undefined);
      await store.flush();
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await mem.head("d/during"), undefined);
      assert.deepEqual(await stagedNames(dir), []);
      assert.equal(mem.size, 0);
    } finally {
      await store.close();
    }
  });
});

Deno.test("put() of a key whose upload is in flight uploads the newer version too", async () => {
  await withDir(async (dir) => {
    const mem = new MemoryBlockStore();
    const inner = new FaultyBlockStore(mem.share(), { latencyMs: 100 });
    const store = await openOver(inner, dir);
    try {
      await store.put("o", pattern(5000, 1));
      await waitFor("the upload to start", () => store.stats().uploading === 1);
      await store.put("o", pattern(3000, 2));
      assertBytes(await store.get("o"), pattern(3000, 2));
      assert.equal(store.stats().stagedBytes, 3000);
      await store.flush();
      assertBytes(await mem.get("o"), pattern(3000, 2));
      assert.equal(store.stats().uploaded, 2);
      assert.deepEqual(await stagedNames(dir), []);
    } finally {
      await store.close();
    }
  });
});

Deno.test("list() merges staged keys with the inner listing, sorted and paged", async () => {
  await withDir(async (dir) => {
    const mem = new MemoryBlockStore();
    for (const k of ["l/1", "l/3", "l/5", "l/7", "m/x"]) await mem.put(k, pattern(1, 0));
    const inner = new FaultyBlockStore(mem.share());
    const heal = inner.failWhen(isPut);
    const store = await openOver(inner, dir);
    try {
      for (const k of ["l/0", "l/4", "l/5", "l/8", "k/y"]) await store.put(k, pattern(9, 0));
      const keys: string[] = [];
      const sizes = new Map<string, number>();
      let startAfter: string | undefined;
      for (;;) {
        const page = await store.list(
          "l/",
          startAfter === undefined ? { limit: 2 } : {
            limit: 2,
            startAfter,
          },
        );
        assert.ok(page.objects.length <= 2);
        for (const o of page.objects) {
          keys.push(o.key);
          sizes.set(o.key, o.size);
        }
        if (!page.truncated) break;
        startAfter = page.objects.at(-1)!.key;
      }
      assert.deepEqual(keys, ["l/0", "l/1", "l/3", "l/4", "l/5", "l/7", "l/8"]);
      assert.equal(sizes.get("l/5"), 9); // the staged version is the newer one
      assert.equal(sizes.get("l/1"), 1);
      const all = await store.list("");
      assert.deepEqual(
        all.objects.map((o) => o.key),
        ["k/y", "l/0", "l/1", "l/3", "l/4", "l/5", "l/7", "l/8", "m/x"],
      );
      assert.equal(all.truncated, false);
      heal();
      await store.flush();
      assert.deepEqual((await store.list("l/", { startAfter: "l/4" })).objects.map((o) => o.key), [
        "l/5",
        "l/7",
        "l/8",
      ]);
    } finally {
      await store.close();
    }
  });
});

Deno.test("open() uploads what an earlier run staged and removes its temporary files", async () => {
  await withDir(async (dir) => {
    // The first run "crashes": it is never closed before the second opens the directory.
    const dead = new FaultyBlockStore(new MemoryBlockStore());
    dead.failWhen(() => true);
    const first = await openOver(dead, dir);
    await first.put("chunks/1/1_0_10", pattern(10, 1));
    await first.put("chunks/2/2_0_20", pattern(20, 2));
    await Deno.writeFile(`${dir}/${WRITEBACK_TEMP_PREFIX}leftover`, pattern(5, 5));
    await Deno.writeFile(`${dir}/not.a.key`, pattern(5, 5));

    const mem = new MemoryBlockStore();
    const second = await openOver(mem.share(), dir);
    try {
      assert.equal(second.stats().stagedObjects + second.stats().uploaded, 2);
      await second.flush();
      assertBytes(await mem.get("chunks/1/1_0_10"), pattern(10, 1));
      assertBytes(await mem.get("chunks/2/2_0_20"), pattern(20, 2));
      assert.deepEqual(await stagedNames(dir), ["not.a.key"]);
    } finally {
      await second.close();
      await first.close();
    }
  });
});

Deno.test("objects acknowledged by a SIGKILLed process reach the inner store on the next open", async () => {
  await withDir(async (root) => {
    const dir = `${root}/staging`;
    const innerDir = `${root}/inner`;
    const code = `
      import { WritebackBlockStore } from ${
      JSON.stringify(import.meta.resolve("./store_writeback.ts"))
    };
      import { FaultyBlockStore } from ${JSON.stringify(import.meta.resolve("./store_faulty.ts"))};
      import { FileBlockStore } from ${JSON.stringify(import.meta.resolve("./store_file.ts"))};
      const inner = new FaultyBlockStore(await FileBlockStore.open(Deno.env.get("WB_INNER")), { latencyMs: 20 });
      const store = await WritebackBlockStore.open(inner, {
        dir: Deno.env.get("WB_DIR"), capacityBytes: 1 << 30, uploadConcurrency: 2,
      });
      let next = 0;
      const enc = new TextEncoder();
      await Promise.all([0, 1, 2, 3].map(async () => {
        for (;;) {
          const i = next++;
          const data = new Uint8Array(1000 + (i * 7919) % 60000);
          for (let j = 0; j < data.length; j++) data[j] = (i * 31 + j * 7 + (j >> 8)) & 0xff;
          await store.put("chunks/" + (i % 4) + "/" + i + "_0_" + data.length, data);
          await Deno.stdout.write(enc.encode(i + " " + data.length + "\\n"));
        }
      }));
    `;
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      env: { WB_DIR: dir, WB_INNER: innerDir },
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let text = "";
    const decoder = new TextDecoder();
    let killed = false;
    for await (const chunk of child.stdout) {
      text += decoder.decode(chunk, { stream: true });
      if (!killed && text.split("\n").length > 60) {
        child.kill("SIGKILL");
        killed = true;
      }
    }
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL");
    const acked = text.split("\n").slice(0, -1).map((line) => line.split(" ").map(Number));
    assert.ok(acked.length >= 60);

    const inner = await FileBlockStore.open(innerDir);
    const store = await openOver(inner, dir);
    try {
      assert.ok(!(await stagedNames(dir)).some((n) => n.startsWith(WRITEBACK_TEMP_PREFIX)));
      assert.ok(store.stats().stagedObjects > 0, "the child left staged objects");
      await store.flush();
      for (const [i, size] of acked) {
        const key = `chunks/${i! % 4}/${i}_0_${size}`;
        assertBytes(await inner.get(key), pattern(size!, i!), key);
      }
      assert.deepEqual(await stagedNames(dir), []);
    } finally {
      await store.close();
    }
  });
});

Deno.test("flush() rejects when its signal aborts or the store closes; close() keeps staged files", async () => {
  await withDir(async (dir) => {
    const inner = new FaultyBlockStore(new MemoryBlockStore());
    inner.failWhen(isPut);
    const store = await openOver(inner, dir);
    await store.put("kept", pattern(10, 1));
    await assert.rejects(store.flush({ signal: AbortSignal.timeout(50) }));
    // The rejection must have its handler before close() settles it.
    const pending = assert.rejects(store.flush(), FsError);
    await store.close();
    await pending;
    await assert.rejects(store.put("x", pattern(1, 1)), FsError);
    assert.deepEqual(await stagedNames(dir), ["kept"]);
  });
});

Deno.test("a staged file removed behind the store's back is reported, not retried forever", async () => {
  await withDir(async (dir) => {
    const inner = new FaultyBlockStore(new MemoryBlockStore());
    const heal = inner.failWhen(isPut);
    const errors: unknown[] = [];
    const store = await openOver(inner, dir, { onError: (e) => errors.push(e) });
    try {
      await store.put("gone", pattern(10, 1));
      await store.put("kept", pattern(10, 2));
      await Deno.remove(`${dir}/gone`);
      // Uploads keep failing until the store has seen the file gone: an attempt that read it just
      // before the removal would otherwise upload it once the puts heal.
      const reported = () => errors.some((e) => e instanceof FsError && e.errno === Errno.EIO);
      await waitFor("the missing file to be reported", reported);
      heal();
      await store.flush();
      assert.equal(store.stats().stagedBytes, 0);
      assertBytes(await store.get("kept"), pattern(10, 2));
      await assert.rejects(store.get("gone"), NotFoundError);
    } finally {
      await store.close();
    }
  });
});

Deno.test("random puts, overwrites and deletes racing uploads and upload failures match a model", async () => {
  await withDir(async (dir) => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const mem = new MemoryBlockStore();
    const inner = new FaultyBlockStore(mem.share(), { latencyMs: 1 });
    inner.failWhen((call) => call.op === "put" && rand(4) === 0); // a quarter of uploads fail
    const store = await openOver(inner, dir, { uploadConcurrency: 4 });
    const model = new Map<string, number>(); // key -> seed of its data
    const size = (s: number) => 1 + (s * 37) % 3000;
    try {
      for (let step = 0; step < 300; step++) {
        const key = `r/${rand(8)}`;
        if (rand(3) === 0) {
          await store.delete([key]);
          model.delete(key);
        } else {
          const s = step + 1;
          await store.put(key, pattern(size(s), s));
          model.set(key, s);
        }
        if (rand(4) === 0) await new Promise((r) => setTimeout(r, rand(5)));
        const probe = `r/${rand(8)}`;
        const want = model.get(probe);
        if (want === undefined) assert.equal(await store.head(probe), undefined, probe);
        else assertBytes(await store.get(probe), pattern(size(want), want), `${probe}@${step}`);
      }
      inner.clearFaults();
      await store.flush();
      assert.deepEqual(await stagedNames(dir), []);
      const keys = (await mem.list("r/")).objects.map((o) => o.key);
      assert.deepEqual(keys, [...model.keys()].sort());
      for (const [key, s] of model) assertBytes(await mem.get(key), pattern(size(s), s), key);
    } finally {
      await store.close();
    }
  });
});

Deno.test("put() of a key too long for a file name writes through to the inner store", async () => {
  await withDir(async (dir) => {
    const mem = new MemoryBlockStore();
    const store = await openOver(mem.share(), dir);
    try {
      const key = `blobs/${"ab/".repeat(100)}x`;
      await store.put(key, pattern(10, 1));
      assertBytes(await mem.get(key), pattern(10, 1));
      assert.deepEqual(await stagedNames(dir), []);
    } finally {
      await store.close();
    }
  });
});

Deno.test("WritebackBlockStore stages blocks while a real S3 server is down and uploads them when it returns", async () => {
  await using server = await startS3Server();
  await server.createBucket("writeback");
  const url = server.storeUrl("writeback", "vol1");
  const credentials = {
    accessKeyId: server.accessKeyId,
    secretAccessKey: server.secretAccessKey,
  };
  const keys = Array.from({ length: 6 }, (_, i) => `chunks/0/${i}/${i + 2}_0_${MiB}`);
  await withDir(async (dir) => {
    const s3 = await openS3BlockStore(url, { credentials, maxAttempts: 1, requestTimeoutMs: 5000 });
    const store = await openOver(s3, dir, { retry: { baseMs: 50, maxMs: 500 } });
    try {
      await store.put("chunks/0/0/1_0_1000", pattern(1000, 1));
      await store.flush();

      await server.kill();
      for (const [i, key] of keys.entries()) await store.put(key, pattern(MiB, i));
      await waitFor("a failed upload", () => store.stats().failures > 0);
      assertBytes(await store.get(keys[3]!, 100, 1000), pattern(MiB, 3).subarray(100, 1100));
      assert.equal(store.stats().stagedObjects, 6);

      await server.start();
      await store.flush({ signal: AbortSignal.timeout(30_000) });
      assert.deepEqual(await stagedNames(dir), []);
    } finally {
      await store.close();
    }
    const check = await openS3BlockStore(url, { credentials });
    try {
      const listed = (await check.list("chunks/")).objects.map((o) => o.key);
      assert.deepEqual(listed, ["chunks/0/0/1_0_1000", ...keys].sort());
      for (const [i, key] of keys.entries()) assertBytes(await check.get(key), pattern(MiB, i));
    } finally {
      await check.close();
    }
  });
});
