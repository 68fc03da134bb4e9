import { deepEqual, equal, ok } from "node:assert/strict";
import {
  type BlockTable,
  dataOffsetFor,
  dataOffsetOf,
  decodeBlockFile,
  decodePrefix,
  encodePrefix,
  fileName,
  filePath,
  readHeader,
  readSegments,
  SEGMENT,
  writeBlockFile,
} from "./_block_file.ts";
import { segmentSums } from "../block_codec.ts";
import { block, withTempDir } from "./_test_util.ts";

const encoder = new TextEncoder();

/** A whole block file of `data` under `key`. */
function blockFile(key: string, data: Uint8Array): Uint8Array {
  const prefix = encodePrefix(encoder.encode(key), data);
  const out = new Uint8Array(prefix.length + data.length);
  out.set(prefix);
  out.set(data, prefix.length);
  return out;
}

/** Reads from `buf` as a file. */
const readFrom = (buf: Uint8Array) => (dst: Uint8Array, pos: number) => {
  const part = buf.subarray(pos, pos + dst.length);
  dst.set(part);
  return Promise.resolve(part.length);
};

Deno.test("block files: the layout, round trip and checks of key, size and segments", () => {
  const key = "chunks/0/0/1_0_150000";
  const data = block(key, 150_000);
  const file = blockFile(key, data);
  equal(file.length, 20 + key.length + 8 * 3 + data.length);
  equal(dataOffsetFor(key.length, data.length), file.length - data.length);
  equal(dataOffsetOf(key.length, file.length), file.length - data.length);
  equal(new TextDecoder().decode(file.subarray(0, 4)), "SFC2");
  const got = decodeBlockFile(file, key);
  ok(typeof got !== "string");
  deepEqual(got.data, data);
  equal(got.table.dataLength, data.length);
  equal(decodeBlockFile(file, "other"), `file holds key "${key}"`);
  ok(/does not match header/.test(decodeBlockFile(file.subarray(0, -1), key) as string));
  const bad = file.slice();
  bad[bad.length - 1]! ^= 1;
  equal(decodeBlockFile(bad, key), "checksum mismatch in segment 2");
  const head = file.slice();
  head[25]! ^= 1; // in the key
  equal(decodePrefix(head), "header checksum mismatch");
  equal(decodePrefix(file.subarray(0, 10)), "file of 10 bytes is shorter than its header");
  // Checksums given by the caller give the same file.
  deepEqual(encodePrefix(encoder.encode(key), data, segmentSums(data)), file.subarray(0, -150_000));
});

Deno.test("readSegments() reads and verifies only the segments of a range", async () => {
  const key = "chunks/0/0/2_0_200000";
  const data = block(key, 200_000);
  const file = blockFile(key, data);
  const reads: Array<[number, number]> = [];
  const readAt = (dst: Uint8Array, pos: number) => {
    reads.push([pos, dst.length]);
    return readFrom(file)(dst, pos);
  };
  const first = await readSegments(
    readAt,
    { key, size: file.length, table: undefined },
    70_000,
    10,
  );
  ok(typeof first !== "string" && first.table !== undefined);
  deepEqual(first.data, data.subarray(70_000, 70_010));
  const offset = dataOffsetFor(key.length, data.length);
  deepEqual(reads, [[offset + SEGMENT, SEGMENT], [0, offset]], "segment 1 and the prefix");
  const table: BlockTable = first.table;
  reads.length = 0;
  const again = await readSegments(readAt, { key, size: file.length, table }, 0, 200_000);
  ok(typeof again !== "string");
  deepEqual(again.data, data);
  deepEqual(reads, [[offset, 200_000]], "the table is known: no prefix read");
  const bad = file.slice();
  bad[offset + 3 * SEGMENT + 5]! ^= 1;
  equal(
    await readSegments(readFrom(bad), { key, size: file.length, table }, 3 * SEGMENT, 10),
    "checksum mismatch in segment 3",
  );
  equal(
    await readSegments(
      readFrom(file.subarray(0, -1)),
      { key, size: file.length, table },
      3 * SEGMENT,
      10,
    ),
    "file is shorter than its header says",
  );
});

Deno.test("fileName() escapes keys and cuts long ones", () => {
  equal(fileName("chunks/0/1/7_0_3", 1n), "chunks+0+1+7_0_3");
  equal(fileName(".a b", 1n), "%2Ea%20b");
  const long = fileName("x".repeat(300), 0xabcn);
  equal(long.length, 200 - 17 + 1 + 3);
  ok(long.endsWith("~abc"));
  equal(filePath("/c", { key: "k", hash: 0xff00000000000000n }), "/c/ff/k");
});

Deno.test("writeBlockFile() and readHeader() agree", async () => {
  await withTempDir(async (dir) => {
    const key = "chunks/0/0/3_0_1000";
    const path = `${dir}/f`;
    await writeBlockFile(path, encoder.encode(key), block(key, 1000));
    const head = await readHeader(path);
    equal(head?.key, key);
    equal(head?.size, (await Deno.stat(path)).size);
    deepEqual([...Deno.readDirSync(dir)].map((d) => d.name), ["f"], "no temp file left");
    await Deno.truncate(path, 100);
    equal(await readHeader(path), undefined);
  });
});
