/**
 * `slayerfs import` (issue #14, "existing objects, in place"): objects a plain AWS SDK client put
 * in a real S3 server (tests/_s3server.ts) become files of a real SlayerFS mount without a byte
 * copied: read back byte-exact (whole and a random range), sizes and tree as in the bucket; a
 * write (overwrite in the middle, append) lands in the volume while the object stays as it was;
 * an object changed underneath gives EIO, not mixed bytes; a second run skips everything;
 * `--refresh` takes added, changed and deleted objects and keeps a file written locally; `gc`
 * leaves the bucket alone; `fsck` is clean, then names the file whose object was deleted. Run on
 * SQLite and on a private Redis (tests/_engines.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { engineFixtures } from "./_engines.ts";
import { openKvEngine } from "../backends/mod.ts";
import { runCli, type SlayerMount, startSlayer } from "./_mount.ts";
import { startS3Server } from "./_s3server.ts";
import { readRange } from "../core/_file_range.ts";

const KiB = 1024;

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

/** Every file under `dir`: relative path → size. */
async function sizes(dir: string, rel = ""): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const e of Deno.readDir(`${dir}/${rel}`)) {
    const path = `${rel}${e.name}`;
    if (e.isDirectory) { for (const [k, v] of await sizes(dir, `${path}/`)) out.set(k, v); }
    else out.set(path, (await Deno.stat(`${dir}/${path}`)).size);
  }
  return out;
}

async function until(fn: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const same = (a: Uint8Array, b: Uint8Array, what: string) =>
  assert.ok(Buffer.from(a).equals(Buffer.from(b)), `${what}: ${a.byteLength} vs ${b.byteLength}`);

// On SQLite and on a private Redis: the feature works on every metadata engine (issue #14).
for (const fx of engineFixtures.filter((f) => f.name === "sqlite3" || f.name === "redis")) {
  Deno.test(`${fx.name}: import: S3 objects in place, reads, writes on top, EIO when changed, --refresh, gc, fsck`, async () => {
    await using server = await fx.start();
    await using s3 = await startS3Server();
    await s3.createBucket("data");
    s3.exportCredentials();
    const client = s3.client();
    const put = (key: string, body: Uint8Array) =>
      client.send(new PutObjectCommand({ Bucket: "data", Key: key, Body: body }));
    const get = async (key: string) =>
      await (await client.send(new GetObjectCommand({ Bucket: "data", Key: key }))).Body!
        .transformToByteArray();
    const objects = new Map<string, Uint8Array>([
      ["top.txt", new TextEncoder().encode("hello, imported world\n")],
      ["empty.dat", new Uint8Array(0)],
      ["a/b/one.bin", random(300 * KiB + 17)], // 5 blocks of 64 KiB
      ["a/two.bin", random(200 * KiB)],
      ["deep/er/still/x.csv", new TextEncoder().encode("a,b\n1,2\n")],
      ["changed.txt", new TextEncoder().encode("version 1\n")],
      ["gone.txt", new TextEncoder().encode("soon gone\n")],
      ["stale.bin", random(150 * KiB)],
      ["ünïcode name.txt", new TextEncoder().encode("utf-8\n")],
    ]);
    for (const [k, v] of objects) await put(`set1/${k}`, v);
    // Over one chunk (64 MiB): a slice per chunk, each referring to its part of the object.
    const huge = random(64 * 1024 * KiB + 100 * KiB);
    await put("set1/huge.bin", huge);
    await put("other/not-mine.txt", new TextEncoder().encode("outside the prefix"));
    const source = s3.storeUrl("data", "set1/");

    await using fs: SlayerMount = await startSlayer({
      meta: server.newVolumeUrl(),
      formatArgs: ["--block-size", "64K"],
    });
    const ds = `${fs.mnt}/datasets/set1`;
    const cli = (...args: string[]) => fs.guard(120_000, args.join(" "), () => runCli(args));
    const ok = async (...args: string[]) => {
      const r = await cli(...args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}\n${r.stdout}`);
      return r;
    };
    const summary = (out: string) => {
      const m =
        /(\d+) objects listed, (\d+) imported .*, (\d+) unchanged, (\d+) replaced, (\d+) removed, (\d+) kept/
          .exec(out);
      assert.ok(m, out);
      const [listed, imported, unchanged, replaced, removed, kept] = m.slice(1).map(Number);
      return { listed, imported, unchanged, replaced, removed, kept };
    };

    // Bad arguments: exit 2.
    assert.equal((await cli("import", fs.meta, "/tmp/x", "/d")).code, 2);
    assert.equal((await cli("import", fs.meta, source, "relative")).code, 2);

    // Import while mounted.
    let r = await ok("import", fs.meta, source, "/datasets/set1");
    assert.deepEqual(summary(r.stdout), {
      listed: 10,
      imported: 10,
      unchanged: 0,
      replaced: 0,
      removed: 0,
      kept: 0,
    });
    // Nothing was copied into the volume's own storage.
    const blocks = fs.storage.replace(/^file:\/\//, "");
    const stored = await sizes(blocks).catch(() => new Map<string, number>());
    assert.equal([...stored.keys()].filter((k) => k.startsWith("chunks/")).length, 0, "no blocks");

    // The tree, sizes and contents.
    const want = new Map(
      [...objects, ["huge.bin", huge] as const].map(([k, v]) => [k, v.byteLength]),
    );
    assert.deepEqual(await sizes(ds), want);
    for (const [k, v] of objects) {
      if (k === "stale.bin") continue; // read only after it changes underneath
      same(await Deno.readFile(`${ds}/${k}`), v, k);
    }
    const one = objects.get("a/b/one.bin")!;
    const at = 64 * KiB + 12345;
    same(
      await readRange(`${ds}/a/b/one.bin`, at, 100 * KiB),
      one.subarray(at, at + 100 * KiB),
      "a range",
    );
    const across = 64 * 1024 * KiB - 50 * KiB;
    same(
      await readRange(`${ds}/huge.bin`, across, 150 * KiB),
      huge.subarray(across),
      "across chunks",
    );
    same(await readRange(`${ds}/huge.bin`, 0, 10), huge.subarray(0, 10), "chunk 0");
    const two = objects.get("a/two.bin")!;
    same(
      await readRange(`${ds}/a/two.bin`, 150 * KiB, 10 * KiB),
      two.subarray(150 * KiB, 160 * KiB),
      "a range of an unread file",
    );

    // Resumable: a second run imports nothing.
    r = await ok("import", "-q", fs.meta, source, "/datasets/set1");
    assert.deepEqual(summary(r.stdout).unchanged, 10);
    assert.equal(summary(r.stdout).imported, 0);
    assert.equal(r.stderr.trim(), "", "-q: no progress lines");

    // A write on top: overwrite in the middle and append; the object stays as it was.
    {
      using f = await Deno.open(`${ds}/a/b/one.bin`, { write: true });
      await f.seek(100_000, Deno.SeekMode.Start);
      await f.write(new Uint8Array(5000).fill(7));
      await f.seek(0, Deno.SeekMode.End);
      await f.write(new TextEncoder().encode("appended"));
    }
    const local = new Uint8Array(one.byteLength + 8);
    local.set(one);
    local.fill(7, 100_000, 105_000);
    local.set(new TextEncoder().encode("appended"), one.byteLength);
    same(await Deno.readFile(`${ds}/a/b/one.bin`), local, "after the write");
    same(await get("set1/a/b/one.bin"), one, "the object is unchanged");

    // Changed underneath (same size): EIO, never bytes of two versions.
    const staleNew = random(150 * KiB);
    await put("set1/stale.bin", staleNew);
    await assert.rejects(() => Deno.readFile(`${ds}/stale.bin`), (e: Error) => {
      assert.match(String(e), /Input\/output error|EIO|os error 5/, String(e));
      return true;
    });

    // fsck: the changed object is named.
    let fsck = await cli("fsck", fs.meta);
    assert.equal(fsck.code, 1, fsck.stdout);
    assert.match(fsck.stdout, /stale\.bin/);
    assert.match(fsck.stdout, /changed \(ETag/);

    // --refresh: added, changed, deleted; the file written locally is kept.
    await put("set1/added/new.txt", new TextEncoder().encode("new one\n"));
    const changed = new TextEncoder().encode("version 2, longer\n");
    await put("set1/changed.txt", changed);
    await client.send(new DeleteObjectCommand({ Bucket: "data", Key: "set1/gone.txt" }));
    await put("set1/a/b/one.bin", random(1000)); // but the file was written here
    r = await ok("import", "--refresh", fs.meta, source, "/datasets/set1");
    assert.deepEqual(summary(r.stdout), {
      listed: 10,
      imported: 1,
      unchanged: 6,
      replaced: 2,
      removed: 1,
      kept: 1,
    });
    assert.match(r.stderr, /a\/b\/one\.bin" was written since its import: kept/);
    await fs.restart(); // no attributes or pages cached from before
    same(
      await Deno.readFile(`${ds}/added/new.txt`),
      new TextEncoder().encode("new one\n"),
      "added",
    );
    same(await Deno.readFile(`${ds}/changed.txt`), changed, "changed");
    same(await Deno.readFile(`${ds}/stale.bin`), staleNew, "stale, refreshed");
    // Kept as it is: its unwritten ranges still refer to the old version, gone from the bucket,
    // so reading them gives EIO rather than bytes of the new version (SEMANTICS.md).
    await assert.rejects(() => Deno.readFile(`${ds}/a/b/one.bin`));
    assert.equal((await Deno.stat(`${ds}/a/b/one.bin`)).size, local.byteLength, "kept local");
    await assert.rejects(() => Deno.stat(`${ds}/gone.txt`), Deno.errors.NotFound);

    // gc deletes nothing of the bucket; fsck is clean.
    const listing = async () =>
      ((await client.send(new ListObjectsV2Command({ Bucket: "data" }))).Contents ?? [])
        .map((o) => `${o.Key} ${o.ETag}`).sort();
    const before = await listing();
    await ok("gc", "--delete", "--min-age", "0", fs.meta);
    assert.deepEqual(await listing(), before, "gc left the bucket alone");
    // fsck names the file kept locally (its object changed); removed, the next refresh imports it.
    fsck = await cli("fsck", fs.meta);
    assert.equal(fsck.code, 1, fsck.stdout);
    assert.match(fsck.stdout, /broken files: 1\n.*a\/b\/one\.bin/);
    await Deno.remove(`${ds}/a/b/one.bin`);
    r = await ok("import", "--refresh", fs.meta, source, "/datasets/set1");
    assert.equal(summary(r.stdout).imported, 1, r.stdout);
    same(await Deno.readFile(`${ds}/a/b/one.bin`), await get("set1/a/b/one.bin"), "re-imported");
    fsck = await ok("fsck", fs.meta);
    assert.match(fsck.stdout, /broken files: 0/);

    // A removed imported file takes its references to the object with it (and puts nothing on
    // the garbage list: none of its bytes are in the volume's store).
    const externalRefs = async () => {
      const kv = await openKvEngine(fs.meta);
      try {
        return await kv.txn(async (tx) => (await tx.scan("E")).length, { readOnly: true });
      } finally {
        await kv.close();
      }
    };
    const refsBefore = await externalRefs();
    await Deno.remove(`${ds}/stale.bin`);
    await until(
      async () => (await externalRefs()) === refsBefore - 1,
      "stale.bin's reference gone",
    );

    // An object deleted underneath: fsck names its file (exit 1), reading it gives EIO.
    await client.send(new DeleteObjectCommand({ Bucket: "data", Key: "set1/a/two.bin" }));
    await fs.restart();
    await assert.rejects(() => Deno.readFile(`${ds}/a/two.bin`));
    fsck = await cli("fsck", fs.meta);
    assert.equal(fsck.code, 1, fsck.stdout);
    assert.match(fsck.stdout, /datasets\/set1\/a\/two\.bin/);
    assert.match(fsck.stdout, /is gone/);
    same(await get("other/not-mine.txt"), new TextEncoder().encode("outside the prefix"), "other");
    client.destroy();
  });
}
