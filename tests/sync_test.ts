/**
 * `slayerfs sync` (issue #14) between a local folder, a real S3 server (tests/_s3server.ts) whose
 * objects a plain AWS SDK client puts and reads, and a real SlayerFS mount: folder → S3 (a
 * multipart upload, the mtime in the object's metadata), S3 → mount, mount → folder; a second run
 * copies nothing; a changed file is copied again; `--check` finds a change that size and mtime
 * miss; `--dry-run` and `--delete`; `--include`/`--exclude` in order; and a destination that cannot
 * be written gives exit 1 with a summary naming the file, the other files copied.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { errorLines } from "./_cli.ts";
import { runCli, type SlayerMount, startSlayer } from "./_mount.ts";
import { startS3Server } from "./_s3server.ts";

const MiB = 2 ** 20;

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

/** Every file under `dir`: relative path → contents. */
async function tree(dir: string, rel = ""): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(`${dir}/${rel}`)) {
    const path = `${rel}${e.name}`;
    if (e.isDirectory) { for (const [k, v] of await tree(dir, `${path}/`)) out.set(k, v); }
    else out.set(path, await Deno.readFile(`${dir}/${path}`));
  }
  return out;
}

function assertSameFiles(
  got: Map<string, Uint8Array>,
  want: Map<string, Uint8Array>,
  what: string,
) {
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), `${what}: the same paths`);
  for (const [k, v] of want) assert.ok(Buffer.from(got.get(k)!).equals(v), `${what}: ${k}`);
}

/** The counts of the summary line. */
function counts(stdout: string) {
  const m =
    /^(?:Would copy|Copied) (\d+) of (\d+) files .*, (\d+) unchanged, (?:would delete|deleted) (\d+), (\d+) excluded, (\d+) failed/m
      .exec(stdout);
  assert.ok(m, `a summary line in:\n${stdout}`);
  const [copied, files, unchanged, deleted, excluded, failed] = m.slice(1).map(Number);
  return { copied, files, unchanged, deleted, excluded, failed };
}

Deno.test("sync: folder → S3 → mount → folder, incremental, --check, --delete, filters, failures", async () => {
  await using s3 = await startS3Server();
  await s3.createBucket("sync");
  s3.exportCredentials();
  const client = s3.client();
  await using fs: SlayerMount = await startSlayer();
  const work = await Deno.makeTempDir({ prefix: "slayerfs-sync-" });
  const sync = (...args: string[]) =>
    fs.guard(120_000, `sync ${args.join(" ")}`, () => runCli(["sync", ...args]));
  const ok = async (...args: string[]) => {
    const r = await sync(...args);
    assert.equal(r.code, 0, `sync ${args.join(" ")}: ${r.stderr}\n${r.stdout}`);
    return counts(r.stdout);
  };
  const usage = Promise.all([
    runCli(["sync", "slayerfs://vol/x", work]),
    runCli(["sync", `${work}/nope`, work]),
  ]);
  try {
    // A local folder: small files, an empty one, one over the multipart threshold, one excluded.
    const src = `${work}/src`;
    const files = new Map<string, Uint8Array>([
      ["hello.txt", new TextEncoder().encode("hello\n")],
      ["empty", new Uint8Array(0)],
      ["docs/readme.md", random(3000)],
      ["data/big.bin", random(18 * MiB)],
    ]);
    for (const [k, v] of files) {
      await Deno.mkdir(`${src}/${k}`.replace(/\/[^/]*$/, ""), { recursive: true });
      await Deno.writeFile(`${src}/${k}`, v);
    }
    await Deno.writeTextFile(`${src}/data/skip.tmp`, "scratch");

    // Folder → S3, read back by the plain client.
    const up = s3.storeUrl("sync", "up/");
    let c = await ok("--exclude", "*.tmp", src, up);
    assert.deepEqual(c, { copied: 4, files: 4, unchanged: 0, deleted: 0, excluded: 1, failed: 0 });
    const listed = await client.send(new ListObjectsV2Command({ Bucket: "sync", Prefix: "up/" }));
    assert.deepEqual(
      (listed.Contents ?? []).map((o) => o.Key).sort(),
      ["up/data/big.bin", "up/docs/readme.md", "up/empty", "up/hello.txt"],
    );
    const big = await client.send(new GetObjectCommand({ Bucket: "sync", Key: "up/data/big.bin" }));
    assert.ok(
      Buffer.from(await big.Body!.transformToByteArray()).equals(files.get("data/big.bin")!),
    );
    const head = await client.send(new HeadObjectCommand({ Bucket: "sync", Key: "up/hello.txt" }));
    const mtime = (await Deno.stat(`${src}/hello.txt`)).mtime!.getTime();
    assert.equal(head.Metadata?.mtime, String(mtime), "the source's mtime in the metadata");
    // Again: nothing to copy. A changed file (same size, later mtime) is copied again.
    c = await ok("--exclude", "*.tmp", src, up);
    assert.deepEqual([c.copied, c.unchanged], [0, 4]);
    await Deno.writeTextFile(`${src}/hello.txt`, "HELLO\n");
    await Deno.utime(`${src}/hello.txt`, new Date(), new Date(Date.now() + 5000));
    files.set("hello.txt", new TextEncoder().encode("HELLO\n"));
    c = await ok("--exclude", "*.tmp", src, up);
    assert.deepEqual([c.copied, c.unchanged], [1, 3]);

    // S3 → S3 (another prefix), in 8 MiB ranged reads and a multipart upload.
    c = await ok(up, s3.storeUrl("sync", "copy/"));
    assert.deepEqual([c.copied, c.files], [4, 4]);
    const copy = await client.send(
      new GetObjectCommand({ Bucket: "sync", Key: "copy/data/big.bin" }),
    );
    assert.ok(
      Buffer.from(await copy.Body!.transformToByteArray()).equals(files.get("data/big.bin")!),
    );

    // Objects put by the plain client → the mount.
    const objects = new Map<string, Uint8Array>([
      ["a.txt", new TextEncoder().encode("from s3\n")],
      ["d/b.bin", random(2 * MiB + 17)],
      ["d/e/c.csv", new TextEncoder().encode("x,y\n1,2\n")],
      ["d/e/f.csv", new TextEncoder().encode("3,4\n")],
      ["z.log", random(100)],
    ]);
    for (const [k, v] of objects) {
      await client.send(new PutObjectCommand({ Bucket: "sync", Key: `in/${k}`, Body: v }));
    }
    const fromS3 = s3.storeUrl("sync", "in/");
    c = await ok(fromS3, `${fs.mnt}/fromS3`);
    assert.deepEqual([c.copied, c.files], [5, 5]);
    assertSameFiles(await tree(`${fs.mnt}/fromS3`), objects, "S3 → mount");
    c = await ok(fromS3, `${fs.mnt}/fromS3`);
    assert.deepEqual([c.copied, c.unchanged], [0, 5], "S3 → mount again");

    // The mount → a folder, and again.
    const out = `${work}/out`;
    c = await ok(`${fs.mnt}/fromS3`, out);
    assert.equal(c.copied, 5);
    assertSameFiles(await tree(out), objects, "mount → folder");

    // A change that keeps size and mtime: only --check sees it.
    const st = await Deno.stat(`${out}/a.txt`);
    await Deno.writeTextFile(`${out}/a.txt`, "FROM S3\n");
    await Deno.utime(`${out}/a.txt`, st.atime!, st.mtime!);
    assert.equal((await ok(`${fs.mnt}/fromS3`, out)).copied, 0);
    c = await ok("--check", `${fs.mnt}/fromS3`, out);
    assert.deepEqual([c.copied, c.unchanged], [1, 4]);
    assert.equal(await Deno.readTextFile(`${out}/a.txt`), "from s3\n");

    // --dry-run --delete lists and changes nothing; --delete removes.
    await Deno.remove(`${fs.mnt}/fromS3/z.log`);
    await Deno.writeTextFile(`${fs.mnt}/fromS3/new.txt`, "new");
    const dry = await sync("--dry-run", "--delete", `${fs.mnt}/fromS3`, out);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^would copy new\.txt$/m);
    assert.match(dry.stdout, /^would delete z\.log$/m);
    assert.deepEqual(counts(dry.stdout), {
      copied: 1,
      files: 5,
      unchanged: 4,
      deleted: 1,
      excluded: 0,
      failed: 0,
    });
    assert.ok((await tree(out)).has("z.log") && !(await tree(out)).has("new.txt"), "dry run");
    c = await ok("--delete", `${fs.mnt}/fromS3`, out);
    assert.deepEqual([c.copied, c.deleted], [1, 1]);
    assertSameFiles(await tree(out), await tree(`${fs.mnt}/fromS3`), "after --delete");

    // Filters, in order: the first rule that matches decides.
    const [csv, none] = await Promise.all([
      ok("-p", "2", "--include", "*.csv", "--exclude", "*", fromS3, `${work}/csv`),
      ok("--exclude", "*", "--include", "*.csv", fromS3, `${work}/none`),
    ]);
    assert.deepEqual([csv.copied, csv.excluded], [2, 3]);
    assert.deepEqual([...(await tree(`${work}/csv`)).keys()].sort(), ["d/e/c.csv", "d/e/f.csv"]);
    assert.deepEqual([none.copied, none.excluded], [0, 5]);
    // --delete leaves excluded files alone.
    await Deno.writeTextFile(`${work}/csv/keep.me`, "mine");
    c = await ok("--delete", "--include", "*.csv", "--exclude", "*", fromS3, `${work}/csv`);
    assert.deepEqual([c.copied, c.deleted], [0, 0]);
    assert.equal(await Deno.readTextFile(`${work}/csv/keep.me`), "mine");

    // A destination file that cannot be written (a folder holds its name): exit 1, a summary
    // naming it, the other files copied; the next run retries only it.
    const bad = `${work}/bad`;
    await Deno.mkdir(`${bad}/hello.txt`, { recursive: true });
    await Deno.writeTextFile(`${bad}/hello.txt/inside`, "in the way");
    const failed = await sync("--exclude", "*.tmp", src, bad);
    assert.equal(failed.code, 1, failed.stdout);
    assert.deepEqual(counts(failed.stdout).copied, 3);
    assert.equal(counts(failed.stdout).failed, 1);
    assert.match(failed.stdout, /^Failed:\n {2}copy hello\.txt: .+$/m);
    // Not a terminal: the progress bar, if drawn at all, is one plain line.
    const err = errorLines(failed.stderr).filter((l) => !l.startsWith("[#"));
    assert.equal(err.length, 1, failed.stderr);
    assert.match(
      err[0]!,
      /^slayerfs: 1 of 4 files failed \(first: copy hello\.txt: .*\); run again/,
    );
    assert.ok(
      Buffer.from(await Deno.readFile(`${bad}/data/big.bin`)).equals(files.get("data/big.bin")!),
    );
    await Deno.remove(`${bad}/hello.txt`, { recursive: true });
    c = await ok("--exclude", "*.tmp", src, bad);
    assert.deepEqual([c.copied, c.unchanged], [1, 3], "resumed: only the failed file");
    assertSameFiles(await tree(bad), files, "folder → folder");

    // Usage errors (run meanwhile): a slayerfs:// URL, a missing source.
    const [viaUrl, missing] = await usage;
    assert.equal(viaUrl.code, 2);
    assert.match(errorLines(viaUrl.stderr)[0]!, /through its mount/);
    assert.equal(missing.code, 1);
    assert.match(errorLines(missing.stderr)[0]!, /Cannot read the source/);
  } finally {
    await usage.catch(() => {});
    client.destroy();
    await Deno.remove(work, { recursive: true });
  }
});
