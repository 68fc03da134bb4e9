import assert from "node:assert/strict";
import { MemoryBlockStore, MemoryKvEngine } from "../backends/mod.ts";
import { BLOCK_SEGMENTED } from "./block_codec.ts";
import { Errno, FsError } from "./errno.ts";
import { mixedContent } from "./_test_util.ts";
import { formatVolume, Volume, type VolumeOptions } from "./volume.ts";
import type { SliceId } from "./types.ts";

const isEio = (err: unknown) => err instanceof FsError && err.errno === Errno.EIO;
const MiB = 1 << 20;

async function setup(
  options: VolumeOptions,
): Promise<{ kv: MemoryKvEngine; store: MemoryBlockStore; open: () => Promise<Volume> }> {
  const kv = new MemoryKvEngine();
  await formatVolume(kv, { name: "seg", storage: "mem://", compression: "lz4" });
  const store = new MemoryBlockStore();
  const base = { codecWorkers: 0, predict: false as const, ...options };
  return { kv, store, open: () => Volume.openWith(kv.share(), store.share(), base) };
}

/** Random 4 KiB reads as the FUSE layer does them when not sequential (`whole` false). */
async function randomReads(vol: Volume, path: string, want: Uint8Array, n: number) {
  const ino = (await vol.resolve(path)).ino;
  let x = 7;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const off = x % (want.byteLength - 5000);
    const len = 1 + (x >>> 8) % 8192; // some cross a segment or block boundary
    const out = new Uint8Array(len);
    await vol.vfs.data.readCommitted(ino, off, len, out, false);
    assert.deepEqual(out, want.subarray(off, off + len), `read ${i} at ${off}+${len}`);
  }
}

Deno.test("random reads of segmented blocks fetch only their segments and return the written bytes", async () => {
  const { open } = await setup({});
  const data = mixedContent(10 * MiB + 12345);
  const w = await open();
  await w.writeFile("/f", data);
  const ino = (await w.resolve("/f")).ino;
  const full = await w.vfs.meta.readChunkFull(ino, 0);
  const recs = [...full.blocks.values()].flat();
  assert.ok(recs.length >= 3 && recs.every((r) => r.flags & BLOCK_SEGMENTED), "segmented");
  await w.close();
  const vol = await open();
  try {
    await randomReads(vol, "/f", data, 200);
    const f = vol.vfs.data.fetched;
    // At most two segments per read, never a whole 4 MiB block.
    assert.ok(f.bytes <= 200 * 2 * 65536, `fetched ${f.bytes} bytes in ${f.objects} gets`);
    const before = f.objects;
    await randomReads(vol, "/f", data, 200); // the same reads again: from cached segments
    assert.equal(vol.vfs.data.fetched.objects, before);
    assert.deepEqual(await vol.readFile("/f"), data); // sequential: whole blocks
  } finally {
    await vol.close();
  }
});

Deno.test("blocks of the whole-block format still read, at random and whole", async () => {
  const { kv, store } = await setup({});
  const data = mixedContent(9 * MiB);
  const old = await Volume.openWith(kv.share(), store.share(), {
    codecWorkers: 0,
    segmented: false,
  });
  await old.writeFile("/old", data);
  const ino = (await old.resolve("/old")).ino;
  const full = await old.vfs.meta.readChunkFull(ino, 0);
  assert.ok([...full.blocks.values()].flat().every((r) => !(r.flags & BLOCK_SEGMENTED)));
  await old.close();
  const vol = await Volume.openWith(kv.share(), store.share(), { codecWorkers: 0, predict: false });
  try {
    await randomReads(vol, "/old", data, 50);
    assert.deepEqual(await vol.readFile("/old"), data);
  } finally {
    await vol.close();
  }
});

Deno.test("a corrupt segment fails its random reads with EIO; the block's other segments read", async () => {
  const { store, open } = await setup({});
  const data = mixedContent(4 * MiB);
  const w = await open();
  await w.writeFile("/f", data);
  const ino = (await w.resolve("/f")).ino;
  const full = await w.vfs.meta.readChunkFull(ino, 0);
  const [id] = [...full.blocks.keys()] as SliceId[];
  await w.close();
  const key = (await store.list("chunks/")).objects.find((o) => o.key.includes(`/${id}_0_`))!.key;
  const obj = await store.get(key);
  obj[obj.byteLength - 100]! ^= 1; // in the last segment (raw: an odd one)
  await store.put(key, obj);
  const vol = await open();
  try {
    const out = new Uint8Array(4096);
    await assert.rejects(
      vol.vfs.data.readCommitted(ino, data.byteLength - 4096, 4096, out, false),
      isEio,
    );
    await vol.vfs.data.readCommitted(ino, 0, 4096, out, false);
    assert.deepEqual(out, data.subarray(0, 4096));
    await assert.rejects(vol.readFile("/f"), isEio); // whole: fails as a whole
  } finally {
    await vol.close();
  }
});
