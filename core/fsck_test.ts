import assert from "node:assert/strict";
import { checkVolume, fsckFailed } from "./fsck.ts";
import { memVolume } from "./_test_util.ts";
import { decodeBlob, decodeSliceInfo, encodeSliceInfo, SLICE_INFO_SIZE } from "./meta/_codec.ts";
import { concatBytes } from "./slice.ts";

function random(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return b;
}

Deno.test("fsck: dedup blobs and inline blocks, paths in nested folders, reference counts", async () => {
  const { vol, kv, store } = await memVolume({ blockSize: 65536, dedup: true });
  try {
    await vol.mkdir("/a/b/c", { recursive: true });
    await vol.writeFile("/a/b/c/dedup1.bin", random(65536, 1));
    await vol.writeFile("/a/dedup2.bin", random(65536, 1)); // the same blob
    await vol.writeFile("/a/b/tiny.txt", new TextEncoder().encode("inline")); // inline
    await vol.writeFile("/other.bin", random(70000, 2));
    await vol.link("/other.bin", "/a/b/other-link");
    const fmt = vol.format;
    let r = await checkVolume(kv, fmt, store, { batch: 2 });
    assert.equal(fsckFailed(r), false, JSON.stringify(r));
    assert.equal(r.inodes, 8);

    // Lose the shared blob (2 references) and the inline blocks (tiny.txt's, other.bin's tail).
    const inline = await kv.txn((tx) => tx.scan("I"));
    assert.equal(inline.length, 2);
    const shared = (await kv.txn((tx) => tx.scan("B"))).map(([, v]) => decodeBlob(v))
      .filter((b) => b.refs === 2);
    assert.equal(shared.length, 1);
    await store.delete([shared[0]!.key]);
    await kv.txn((tx) => {
      for (const [k] of inline) tx.delete(k);
      return Promise.resolve();
    });
    r = await checkVolume(kv, fmt, store, { batch: 3 });
    assert.equal(fsckFailed(r), true);
    const byPath = new Map(r.brokenFiles.map((f) => [f.paths.join(" "), f.problems.join(" ")]));
    assert.deepEqual([...byPath.keys()].sort(), [
      "/a/b/c/dedup1.bin",
      "/a/b/other-link /other.bin",
      "/a/b/tiny.txt",
      "/a/dedup2.bin",
    ]);
    assert.match(byPath.get("/a/b/tiny.txt")!, /inline block 0 is missing/);
    assert.match(byPath.get("/a/dedup2.bin")!, /is missing from the store/);

    // A wrong reference count is reported, and repaired.
    const [[key, value]] = await kv.txn((tx) => tx.scan("K", { limit: 1 })) as [
      [string, Uint8Array],
    ];
    const info = decodeSliceInfo(value);
    await kv.txn((tx) => {
      tx.set(
        key,
        concatBytes(encodeSliceInfo(info.refs + 5, info.size), value.subarray(SLICE_INFO_SIZE)),
      );
      return Promise.resolve();
    });
    r = await checkVolume(kv, fmt, store, { repair: true });
    assert.equal(r.refMismatches, 1);
    assert.match(
      r.refExamples[0]!,
      new RegExp(`reference count ${info.refs + 5}, referenced ${info.refs} times`),
    );
    const fixed = await kv.txn((tx) => tx.get(key));
    assert.equal(decodeSliceInfo(fixed!).refs, info.refs);
  } finally {
    await vol.close();
  }
});
