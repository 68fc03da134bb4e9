import assert from "node:assert/strict";
import { FileBlockStore, MemoryKvEngine } from "../backends/mod.ts";
import { BLOCK_SEGMENTED } from "./block_codec.ts";
import { BlockCache } from "./cache/mod.ts";
import { Errno, FsError } from "./errno.ts";
import { mixedContent } from "./_test_util.ts";
import { takeReply } from "./_reply_pool.ts";
import { formatVolume, Volume } from "./volume.ts";
import type { SliceId } from "./types.ts";

// Reads from a local store (`StoreLimits.local`) without a disk tier: only the segments a read
// needs, straight into the caller's buffer, nothing kept in memory (`SegmentReader.direct`).

const isEio = (err: unknown) => err instanceof FsError && err.errno === Errno.EIO;
const MiB = 1 << 20;

async function withVolume(
  fn: (vol: Volume, store: FileBlockStore) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-direct-" });
  const kv = new MemoryKvEngine();
  await formatVolume(kv, { name: "direct", storage: `file://${dir}`, compression: "lz4" });
  const store = await FileBlockStore.open(dir);
  // No cache given: written blocks are not kept in memory (`cacheWrites`), as on a mount.
  const vol = await Volume.openWith(kv, store, { codecWorkers: 0, predict: false });
  try {
    await fn(vol, store);
  } finally {
    await vol.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a local store is read in the segments each read needs, into its buffer, none kept in memory", async () => {
  await withVolume(async (vol, store) => {
    assert.equal(store.limits.local, true);
    const data = mixedContent(9 * MiB + 777, 99);
    await vol.writeFile("/f", data);
    const ino = (await vol.resolve("/f")).ino;
    const full = await vol.vfs.meta.readChunkFull(ino, 0);
    const recs = [...full.blocks.values()].flat();
    assert.ok(recs.length === 3 && recs.every((r) => r.flags & BLOCK_SEGMENTED), "segmented");
    const data2 = vol.vfs.data;
    const cache = data2.cache;
    assert.ok(cache instanceof BlockCache);
    const entries = cache.entries;
    const cases: [number, number][] = [
      [0, MiB], // aligned, one block: read straight into the buffer
      [MiB, MiB],
      [4 * MiB - 65536, 131072], // across a block boundary
      [100, 5000], // inside a segment
      [65536 * 3 + 17, MiB - 40], // unaligned, many segments, both kinds
      [9 * MiB, 777], // the short last segment of the short last block
      [0, 9 * MiB + 777], // all of it
    ];
    for (const [off, len] of cases) {
      for (const whole of [true, false]) {
        const out = new Uint8Array(len);
        await data2.readCommitted(ino, off, len, out, whole);
        assert.deepEqual(out, data.subarray(off, off + len), `${off}+${len} whole ${whole}`);
      }
    }
    assert.equal(cache.entries, entries, "nothing cached in memory");
    // A read within one block goes into the buffer given, with no copy of its own.
    const into = takeReply(MiB);
    const view = await data2.readView(ino, 2 * MiB, MiB, true, into);
    assert.ok(view !== undefined && view.buffer === into.buffer, "read into the reply buffer");
    assert.deepEqual(view, data.subarray(2 * MiB, 3 * MiB));
    const before = data2.fetched.bytes;
    const small = await data2.readView(ino, 5 * MiB + 10, 100, true);
    assert.deepEqual(small, data.subarray(5 * MiB + 10, 5 * MiB + 110));
    assert.ok(data2.fetched.bytes - before <= 65536, "one segment read, not the block");
  });
});

Deno.test("a corrupt segment of a local block fails the reads that need it with EIO, not others", async () => {
  await withVolume(async (vol, store) => {
    const data = mixedContent(4 * MiB, 99);
    await vol.writeFile("/f", data);
    const ino = (await vol.resolve("/f")).ino;
    const full = await vol.vfs.meta.readChunkFull(ino, 0);
    const [id] = [...full.blocks.keys()] as SliceId[];
    const key = (await store.list("chunks/")).objects.find((o) => o.key.includes(`/${id}_0_`))!
      .key;
    const obj = await store.get(key);
    obj[obj.byteLength - 100]! ^= 1; // in the last segment (raw: an odd one)
    await store.put(key, obj);
    const out = new Uint8Array(MiB);
    await assert.rejects(vol.vfs.data.readCommitted(ino, 3 * MiB, MiB, out, true), isEio);
    await assert.rejects(vol.vfs.data.readCommitted(ino, 4 * MiB - 8, 8, out, false), isEio);
    await vol.vfs.data.readCommitted(ino, 0, MiB, out, true);
    assert.deepEqual(out, data.subarray(0, MiB));
  });
});
