/**
 * The random fill on real mounts of a volume on s3rver (`core/_random_fill.ts`): a file written
 * through a mount without a disk cache is read at random through a second mount with an empty one;
 * after 32 random reads of its first two blocks the whole file (12 blocks) is in that mount's disk
 * cache, and reading it all then costs no GET. `-o random_fill=0` leaves it off, and a file changed
 * on the other mount during its fill reads back its new contents.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { type SlayerMount, startSlayer } from "./_mount.ts";
import { diskBlocks, type MountStatus, mountStatus } from "./_status.ts";
import { startS3Server } from "./_s3server.ts";
import { bytesEqual, pseudoRandom } from "./posix/_helpers.ts";
import { readAt as pread } from "../core/_file_range.ts";

const MiB = 2 ** 20;
const SIZE = 48 * MiB; // twelve 4 MiB blocks

/** The status of `fs` once `ready` holds (state is written every 2 s), or after 30 s. */
async function statusWhen(
  fs: SlayerMount,
  ready: (s: MountStatus) => boolean,
): Promise<MountStatus> {
  const end = Date.now() + 30_000;
  for (;;) {
    const s = await mountStatus(fs);
    if (ready(s) || Date.now() > end) return s;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * 64 random 4 KiB reads of the first 8 MiB of `path` (never offset 0), each checked: more than the
 * 32 that start a fill, as the kernel's readahead answers some of them from its pages.
 */
async function randomReads(path: string, data: Uint8Array, seed: number): Promise<void> {
  using file = await Deno.open(path);
  let x = seed;
  for (let i = 0; i < 64; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const off = 4096 * (1 + (x % (8 * MiB / 4096 - 1)));
    const got = await pread(file, off, 4096);
    assert.deepEqual(got, data.subarray(off, off + 4096), `at ${off}`);
  }
}

/**
 * A volume on a fresh s3rver bucket, its file `f` (`data`) written through mount `writer` (no
 * disk cache), and a second mount `reader` with an empty disk cache and `readerArgs`; `objects`
 * counts the block objects in the bucket.
 */
async function setup(name: string, readerArgs: string[], data: Uint8Array) {
  const server = await startS3Server();
  await server.createBucket(name);
  server.exportCredentials();
  const stack = new AsyncDisposableStack();
  stack.use(server);
  try {
    const writer = stack.use(
      await startSlayer({ storage: server.storeUrl(name, "v"), extraArgs: ["--no-cache-dir"] }),
    );
    await Deno.writeFile(`${writer.mnt}/f`, data);
    const reader = stack.use(
      await startSlayer({
        meta: writer.meta,
        format: false,
        extraArgs: ["--cache-dir", `${writer.dir}/cache-${name}`, ...readerArgs],
      }),
    );
    const client = server.client();
    const objects = async () =>
      (await client.send(new ListObjectsV2Command({ Bucket: name, Prefix: "v/chunks/" })))
        .KeyCount ?? 0;
    return { writer, reader, objects, [Symbol.asyncDispose]: () => stack.disposeAsync() };
  } catch (err) {
    await stack.disposeAsync();
    throw err;
  }
}

Deno.test({
  name: "S3 mount: a file read at random is fetched whole into the disk cache",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const data = pseudoRandom(SIZE, 1);
    await using t = await setup("fill", [], data);
    const f = `${t.reader.mnt}/f`;
    const blocks = await t.objects();
    assert.ok(blocks >= 12, `${blocks} objects`);
    await randomReads(f, data, 1);
    const s = await statusWhen(t.reader, (s) => diskBlocks(s) >= blocks);
    assert.equal(s.randomFill?.files, 1, JSON.stringify(s.randomFill));
    // The reads touched the blocks of the first 8 MiB (3 at most, slices need not be aligned):
    // the fill fetched the others.
    assert.ok((s.randomFill?.blocks ?? 0) >= blocks - 3, JSON.stringify(s.randomFill));
    assert.ok(diskBlocks(s) >= blocks, JSON.stringify(s.cache));
    // All of it from the disk cache now: byte-identical, and not one GET.
    bytesEqual(await Deno.readFile(f), data, "the file read whole after the fill");
    await randomReads(f, data, 2);
    const after = await mountStatus(t.reader);
    assert.equal(after.storeGets, s.storeGets, "reads after the fill fetch nothing");
  },
});

Deno.test({
  name: "S3 mount with -o random_fill=0: a file read at random is not fetched whole",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const data = pseudoRandom(SIZE, 2);
    await using t = await setup("nofill", ["-o", "random_fill=0"], data);
    await randomReads(`${t.reader.mnt}/f`, data, 3);
    await new Promise((r) => setTimeout(r, 3000)); // a fill would have ended by now
    const s = await mountStatus(t.reader);
    assert.deepEqual(s.randomFill, { files: 0, blocks: 0 });
    // Only the blocks read (fetched whole behind the reads, 3 at most) are on disk.
    assert.ok(diskBlocks(s) <= 3, JSON.stringify(s.cache));
    assert.ok((await t.objects()) >= 12);
  },
});

Deno.test({
  name: "S3 mount: a file changed on another mount during its fill reads back its new contents",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const data = pseudoRandom(SIZE, 3);
    await using t = await setup("change", [], data);
    const f = `${t.reader.mnt}/f`;
    await randomReads(f, data, 4); // the fill starts at the 32nd read
    // At once (while the fill runs, unless it was quicker), 1 MiB of the middle changes on the
    // other mount: a new slice over the old ones.
    const patch = pseudoRandom(MiB, 4);
    {
      using w = await Deno.open(`${t.writer.mnt}/f`, { write: true });
      await w.seek(20 * MiB + 123, Deno.SeekMode.Start);
      for (let n = 0; n < patch.byteLength;) n += await w.write(patch.subarray(n));
    }
    const fresh = data.slice();
    fresh.set(patch, 20 * MiB + 123);
    // The reader's next open sees the change: its fill stops, and a new one starts.
    await randomReads(f, fresh, 5);
    const s = await statusWhen(t.reader, (s) => s.randomFill?.files === 2);
    assert.equal(s.randomFill?.files, 2, JSON.stringify(s.randomFill));
    await randomReads(f, fresh, 6);
    bytesEqual(await Deno.readFile(f), fresh, "the new contents, read whole");
  },
});
