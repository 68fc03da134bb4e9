import assert from "node:assert/strict";
import { memVolume } from "../_test_util.ts";
import { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, O_CREAT, O_RDWR } from "../types.ts";
import type { Volume } from "../volume.ts";
import { attrKey } from "./keys.ts";

const KiB = 1024;
const small = { blockSize: 64 * KiB, chunkSize: 256 * KiB };

async function allocated(vol: Volume, path: string): Promise<number | undefined> {
  return (await vol.stat(path)).allocated;
}

Deno.test("allocated counts the bytes that hold data, not holes, once per byte", async () => {
  const { vol } = await memVolume(small);
  try {
    const f = await vol.open("/f", O_RDWR | O_CREAT);
    await f.write(10 * 256 * KiB + 5, new Uint8Array(1000).fill(1)); // far past the start
    await f.sync();
    assert.equal(await allocated(vol, "/f"), 1000, "a sparse file counts its data only");
    await f.write(0, new Uint8Array(300 * KiB).fill(2)); // across a chunk boundary
    await f.write(100, new Uint8Array(50 * KiB).fill(3)); // an overwrite
    const pending = (await allocated(vol, "/f"))!;
    assert.ok(pending >= 1000 + 300 * KiB, "pending writes count (an upper bound: overwrites too)");
    await f.sync();
    assert.equal(await allocated(vol, "/f"), 1000 + 300 * KiB, "an overwrite counts once");
    await vol.vfs.fallocate(
      vol.ctx,
      f.ino,
      f.fh,
      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
      0,
      64 * KiB,
    );
    assert.equal(await allocated(vol, "/f"), 1000 + 236 * KiB, "a punched hole no longer counts");
    await vol.truncate("/f", 100 * KiB);
    assert.equal(await allocated(vol, "/f"), 36 * KiB, "truncation drops what it cuts");
    await vol.truncate("/f", 1 << 30);
    assert.equal(await allocated(vol, "/f"), 36 * KiB, "growing adds a hole");
    await f.close();
  } finally {
    await vol.close();
  }
});

Deno.test("allocated: fallocate counts its range, data written into it is not counted twice", async () => {
  const { vol } = await memVolume(small);
  try {
    const f = await vol.open("/f", O_RDWR | O_CREAT);
    await vol.vfs.fallocate(vol.ctx, f.ino, f.fh, 0, 0, 300 * KiB);
    assert.equal(await allocated(vol, "/f"), 300 * KiB);
    await f.write(0, new Uint8Array(300 * KiB).fill(1));
    await f.sync();
    assert.equal(await allocated(vol, "/f"), 300 * KiB);
    await f.close();
    // copy_file_range shares slices: the copy holds data too.
    const g = await vol.open("/g", O_RDWR | O_CREAT);
    const src = await vol.open("/f", O_RDWR);
    await vol.vfs.copyFileRange(vol.ctx, src.ino, src.fh, 0, g.ino, g.fh, 1 << 20, 100 * KiB, 0);
    assert.equal(await allocated(vol, "/g"), 100 * KiB);
    await src.close();
    await g.close();
  } finally {
    await vol.close();
  }
});

Deno.test("allocated of a file from an older version is counted at its next change", async () => {
  const { vol, kv } = await memVolume(small);
  try {
    await vol.writeFile("/f", new Uint8Array(100 * KiB).fill(1));
    const { ino } = await vol.stat("/f");
    // Older versions left the count out of the attributes (bytes 72..84 zero).
    await kv.txn(async (tx) => {
      const v = (await tx.get(attrKey(ino)))!.slice();
      v.fill(0, 72);
      tx.set(attrKey(ino), v);
    });
    assert.equal((await vol.vfs.meta.getattr(ino)).allocated, undefined, "not counted yet");
    await vol.truncate("/f", 50 * KiB);
    assert.equal(await allocated(vol, "/f"), 50 * KiB, "counted by a scan, then changed");
  } finally {
    await vol.close();
  }
});

Deno.test("a freed slice whose blocks were all inline leaves no garbage entry", async () => {
  const { vol } = await memVolume();
  const meta = vol.vfs.meta;
  try {
    await vol.writeFile("/small", new Uint8Array(1000).fill(1)); // an inline block
    await vol.writeFile("/big", new Uint8Array(64 * KiB).fill(2)); // a stored block
    const root = (await vol.stat("/")).ino;
    const never = () => false;
    const small = await meta.unlink(root, "small", never);
    assert.equal(small.freed.length, 1, "the slice is freed");
    assert.equal(small.freed[0]!.size, 0, "with nothing in the store");
    assert.deepEqual(await meta.listGarbage(), [], "and no garbage entry to clear");
    const big = await meta.unlink(root, "big", never);
    assert.equal(big.freed.length, 1);
    assert.deepEqual(
      await meta.listGarbage(),
      [{ id: big.freed[0]!.id, size: big.freed[0]!.size }],
      "a stored block's slice waits in the garbage list until its objects are deleted",
    );
    assert.ok(big.freed[0]!.size > 0);
  } finally {
    await vol.close();
  }
});
