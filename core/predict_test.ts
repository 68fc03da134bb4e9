import assert from "node:assert/strict";
import { MemoryBlockStore, MemoryKvEngine } from "../backends/mod.ts";
import { formatVolume, Volume } from "./volume.ts";
import { ROOT_CTX } from "./types.ts";
import type { KvTxn, TxnOptions } from "./kv.ts";

Deno.test("Predictor replays a recorded access pattern into a cold cache on the next open", async () => {
  const kv = new MemoryKvEngine();
  const store = new MemoryBlockStore();
  await formatVolume(kv, { name: "p", storage: "mem://", blockSize: 64 << 10 });
  const opts = { predict: { idleMs: 50 }, codecWorkers: 0 };
  const files = ["/trigger", "/a", "/b", "/c"];
  {
    const vol = await Volume.openWith(kv.share(), store.share(), opts);
    for (const f of files) await vol.writeFile(f, crypto.getRandomValues(new Uint8Array(60_000)));
    await vol.close();
  }
  // First run: the pattern is recorded.
  {
    const vol = await Volume.openWith(kv.share(), store.share(), opts);
    for (const f of files) await vol.readFile(f);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(vol.vfs.predictor!.stats.recorded, 1);
    await vol.close();
  }
  // Second run, cold cache: opening the trigger fetches the rest before it is read.
  const vol = await Volume.openWith(kv.share(), store.share(), opts);
  try {
    const a = await vol.resolve("/c");
    const trigger = await vol.resolve("/trigger");
    const { fh } = await vol.vfs.open(ROOT_CTX, trigger.ino, 0);
    for (let i = 0; i < 100 && vol.vfs.predictor!.stats.prefetchedBlocks < 4; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(vol.vfs.predictor!.stats.replays, 1);
    assert.ok(vol.vfs.predictor!.stats.prefetchedBlocks >= 4);
    const hitsBefore = vol.vfs.data.cache.hits;
    const missesBefore = vol.vfs.data.cache.misses;
    await vol.readFile("/c");
    assert.ok(vol.vfs.data.cache.hits > hitsBefore, "the read hits the cache");
    assert.equal(vol.vfs.data.cache.misses, missesBefore, "and never misses");
    assert.ok(a.size > 0);
    await vol.vfs.release(ROOT_CTX, trigger.ino, fh, 0n, false);
  } finally {
    await vol.close();
  }
});

Deno.test("Predictor replays while it records: back-to-back starts replay", async () => {
  const kv = new MemoryKvEngine();
  await formatVolume(kv, { name: "p", storage: "mem://", blockSize: 64 << 10 });
  const vol = await Volume.openWith(kv, new MemoryBlockStore(), {
    predict: { idleMs: 100 },
    codecWorkers: 0,
  });
  try {
    const files = ["/trigger", "/a", "/b"];
    for (const f of files) await vol.writeFile(f, crypto.getRandomValues(new Uint8Array(60_000)));
    await new Promise((r) => setTimeout(r, 250)); // the writes' recording ends
    const p = vol.vfs.predictor!;
    const recorded = p.stats.recorded;
    const start = async () => {
      for (const f of files) await vol.readFile(f);
    };
    await start(); // records a pattern for /trigger (or extends the one running)
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(p.stats.recorded, recorded + 1, "the first start is recorded");
    const replays = p.stats.replays;
    await start(); // replays, and starts a new recording
    assert.equal(p.stats.replays, replays + 1, "the second start replays");
    // The second start's recording goes on (reads keep it alive) past idleMs after its replay...
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 50));
      await vol.readFile("/a");
    }
    const recordedBefore = p.stats.recorded;
    await start(); // ... and a third start during it replays too
    assert.equal(p.stats.recorded, recordedBefore, "the recording was still running");
    assert.equal(p.stats.replays, replays + 2, "a start during a recording replays too");
  } finally {
    await vol.close();
  }
});

Deno.test("Predictor: the first open of a file created on this mount asks for no pattern", async () => {
  const kv = new MemoryKvEngine();
  await formatVolume(kv, { name: "p", storage: "mem://" });
  const patternReads: string[] = [];
  // The engine as the volume sees it, noting every read of a pattern key (`P<ino>`).
  const watched = new Proxy(kv, {
    get(target, prop) {
      if (prop !== "txn") {
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      }
      return (fn: (tx: KvTxn) => Promise<unknown>, options?: TxnOptions) =>
        target.txn((tx) =>
          fn(
            new Proxy(tx, {
              get(t, p) {
                if (p !== "get") return Reflect.get(t, p, t).bind(t);
                return (key: string) => {
                  if (key.startsWith("P")) patternReads.push(key);
                  return t.get(key);
                };
              },
            }),
          ), options);
    },
  });
  const opts = { predict: { idleMs: 50 }, codecWorkers: 0 };
  {
    const vol = await Volume.openWith(kv.share(), new MemoryBlockStore(), opts);
    await vol.writeFile("/old", new Uint8Array(100).fill(1));
    await vol.close();
  }
  const vol = await Volume.openWith(watched, new MemoryBlockStore(), opts);
  try {
    await vol.writeFile("/new", new Uint8Array(100).fill(2));
    assert.equal((await vol.readFile("/new"))[0], 2);
    assert.deepEqual(patternReads, [], "a file created here has no pattern to look up");
    assert.equal((await vol.readFile("/old"))[0], 1);
    assert.equal(patternReads.length, 1, "a file created elsewhere is looked up once");
    assert.equal((await vol.readFile("/old"))[0], 1);
    assert.equal(patternReads.length, 1, "and then remembered without a pattern");
  } finally {
    await vol.close();
  }
});

Deno.test("Predictor leaves files read at random out of a pattern, and keeps small files and sequential reads", async () => {
  const kv = new MemoryKvEngine();
  const store = new MemoryBlockStore();
  const bs = 64 << 10;
  await formatVolume(kv, { name: "p", storage: "mem://", blockSize: bs });
  const opts = { predict: { idleMs: 50 }, codecWorkers: 0 };
  const vol = await Volume.openWith(kv, store, opts);
  try {
    await vol.writeFile("/trigger", crypto.getRandomValues(new Uint8Array(20_000)));
    await vol.writeFile("/small", crypto.getRandomValues(new Uint8Array(10_000)));
    await vol.writeFile("/seq", new Uint8Array(4 * bs).fill(7));
    await vol.writeFile("/random", new Uint8Array(16 * bs).fill(9));
    await new Promise((r) => setTimeout(r, 150)); // the writes' recording ends
    const p = vol.vfs.predictor!;
    const recorded = p.stats.recorded;
    const ino = async (path: string) => (await vol.resolve(path)).ino;
    // One recording: the trigger and the small file whole, the sequential file from its start,
    // and 4 KiB at random offsets in every block of the random one.
    const trigger = await ino("/trigger");
    const { fh } = await vol.vfs.open(ROOT_CTX, trigger, 0);
    await vol.readFile("/trigger");
    await vol.readFile("/small");
    await vol.readFile("/seq");
    const r = await ino("/random");
    const { fh: rfh } = await vol.vfs.open(ROOT_CTX, r, 0);
    for (let b = 0; b < 16; b++) {
      await vol.vfs.read(ROOT_CTX, r, rfh, b * bs + 4096 * (1 + (b * 7) % 14), 4096);
    }
    await vol.vfs.release(ROOT_CTX, r, rfh, 0n, false);
    await vol.vfs.release(ROOT_CTX, trigger, fh, 0n, false);
    for (let i = 0; i < 100 && p.stats.recorded === recorded; i++) {
      await new Promise((res) => setTimeout(res, 20));
    }
    const pattern = await vol.vfs.meta.getPattern(trigger);
    assert.ok(pattern, "a pattern was saved");
    const files = new Map(pattern.map((e) => [e.ino, e.blocks.length]));
    assert.equal(files.get(await ino("/small")), 1, "the small file, read whole");
    assert.equal(files.get(await ino("/seq")), 4, "the sequential file's blocks");
    assert.ok(!files.has(r), "not the file read at random");
  } finally {
    await vol.close();
  }
});
