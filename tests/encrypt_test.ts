/**
 * Encryption at rest (issue #12) through a real mount on a real s3rver process: the bucket,
 * read back with the AWS SDK directly, holds no plaintext (a repeated marker text, and known
 * incompressible data) and no object of the unencrypted layout; the files read back; a flipped
 * byte or two swapped objects are EIO (and a log line naming the block), never wrong data; a
 * wrong or missing key (file or `$SLAYERFS_ENCRYPTION_KEY`) refuses the mount with one line; `fsck`,
 * `gc` and `dump`/`load` work without the key, and the loaded volume still needs it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import * as L from "./_libc.ts";
import { cliIn, errorLines } from "./_cli.ts";
import { isMounted, REPO_ROOT, runCli, startSlayer } from "./_mount.ts";
import type { RunResult } from "./_run.ts";
import { startS3Server } from "./_s3server.ts";
import { bytesEqual, pseudoRandom, throwsErrno } from "./posix/_helpers.ts";
import { encodeBlock, toHex } from "../core/block_codec.ts";
import { SEALED_OVERHEAD } from "../core/_crypto.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 4 * MiB;

function assertOneLine(r: RunResult, code: number, pattern: RegExp, what: string): void {
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}${r.stdout}`);
  assert.match(lines[0]!, pattern, what);
  assert.equal(r.code, code, `${what}: exit code`);
}

/** Whether `hay` contains any of the 64-byte windows of `data` at a few spread offsets. */
function containsPieceOf(hay: Buffer, data: Uint8Array): boolean {
  const n = Math.min(64, data.byteLength);
  for (const at of [0, data.byteLength >> 2, data.byteLength >> 1, data.byteLength - n]) {
    if (hay.indexOf(Buffer.from(data.subarray(at, at + n))) >= 0) return true;
  }
  return false;
}

Deno.test({
  name: "an encrypted volume on S3: ciphertext only, reads back, tampering is EIO, keys checked",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using server = await startS3Server();
    await server.createBucket("enc");
    server.exportCredentials();
    const keys = await Deno.makeTempDir({ prefix: "slayerfs-keys-" });
    const s3 = server.client();
    const mnt2 = `${keys}/mnt2`;
    try {
      const key = `${keys}/vol.key`;
      await Deno.writeFile(key, crypto.getRandomValues(new Uint8Array(32)), { mode: 0o600 });
      const wrongHex = toHex(crypto.getRandomValues(new Uint8Array(32)));
      const wrong = `${keys}/wrong.key`;
      await Deno.writeTextFile(wrong, wrongHex + "\n");
      await using fs = await startSlayer({
        storage: server.storeUrl("enc", "v"),
        formatArgs: ["--encrypt-key", key],
        // No disk cache: every read after a restart comes from S3.
        extraArgs: ["--encrypt-key", key, "--no-cache-dir"],
      });

      // Compressible text with a distinctive marker, known incompressible data (two blocks of
      // b.bin), two files of one size to swap, and a small file (inline if not encrypted).
      const marker = "SLAYERFS-PLAINTEXT-MARKER-7f3a9c;";
      const files: Record<string, Uint8Array> = {
        "a.txt": new TextEncoder().encode(marker.repeat(Math.ceil(1.5 * MiB / marker.length))),
        "b.bin": pseudoRandom(BLOCK + 300 * KiB, 11),
        "c.bin": pseudoRandom(MiB, 12),
        "d.bin": pseudoRandom(MiB, 13),
        "small.txt": new TextEncoder().encode(marker + " a small secret"),
      };
      for (const [name, data] of Object.entries(files)) {
        await Deno.writeFile(`${fs.mnt}/${name}`, data);
      }
      for (const [name, data] of Object.entries(files)) {
        bytesEqual(await Deno.readFile(`${fs.mnt}/${name}`), data, `${name} read back`);
      }

      // What an unencrypted volume would store: each block LZ4-compressed where it helps.
      const plainLayout: Uint8Array[] = [];
      for (const data of Object.values(files)) {
        for (let o = 0; o < data.byteLength; o += BLOCK) {
          plainLayout.push(encodeBlock(data.subarray(o, o + BLOCK), true, false).data);
        }
      }
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: "enc", Prefix: "v/" }));
      const objects = (listed.Contents ?? []).map((o) => o.Key!).sort();
      assert.equal(objects.length, plainLayout.length, `one object per block: ${objects}`);
      const bodies = new Map<string, Uint8Array>();
      for (const k of objects) {
        const got = await s3.send(new GetObjectCommand({ Bucket: "enc", Key: k }));
        bodies.set(k, await got.Body!.transformToByteArray());
      }
      const markerBytes = new TextEncoder().encode(marker);
      for (const [k, body] of bodies) {
        const hay = Buffer.from(body);
        assert.equal(hay.indexOf(Buffer.from(markerBytes)), -1, `${k}: no marker text`);
        for (const data of Object.values(files)) {
          assert.ok(!containsPieceOf(hay, data), `${k}: no piece of any file's plaintext`);
        }
        for (const enc of plainLayout) {
          assert.ok(!containsPieceOf(hay, enc), `${k}: no piece of an unencrypted object`);
        }
      }
      // The detector itself finds plaintext where it is (so the checks above can fail).
      assert.ok(containsPieceOf(Buffer.from(plainLayout[1]!), files["b.bin"]!), "detector works");
      assert.deepEqual(
        [...bodies.values()].map((b) => b.byteLength).sort((x, y) => x - y),
        plainLayout.map((e) => e.byteLength + SEALED_OVERHEAD).sort((x, y) => x - y),
        "each object is its unencrypted block plus the nonce, tag and version",
      );

      // fsck needs no key: it checks each object's sealed size.
      const fsck = await runCli(["fsck", fs.meta]);
      assert.equal(fsck.code, 0, fsck.stderr + fsck.stdout);
      assert.match(fsck.stdout, /^ok$/m);
      // gc neither: every object is referenced.
      const gc = await runCli(["gc", fs.meta]);
      assert.equal(gc.code, 0, gc.stderr);
      assert.match(gc.stdout, new RegExp(`^referenced: ${objects.length}$`, "m"));
      assert.match(gc.stdout, /^leaked: 0 /m);

      // Tamper: one byte of b.bin's first block, and the bodies of c.bin's and d.bin's blocks
      // swapped (same size: only the associated data tells them apart).
      const first = objects.find((k) => k.endsWith(`_0_${BLOCK}`))!;
      const [c, d] = objects.filter((k) => k.endsWith(`_0_${MiB}`));
      assert.ok(first && c && d, `the objects to tamper with: ${objects}`);
      const flipped = bodies.get(first)!.slice();
      flipped[flipped.byteLength >> 1]! ^= 0x20;
      const put = (k: string, body: Uint8Array) =>
        s3.send(new PutObjectCommand({ Bucket: "enc", Key: k, Body: body }));
      await put(first, flipped);
      await put(c, bodies.get(d)!);
      await put(d, bodies.get(c)!);
      await fs.restart(); // no block left in the daemon's memory or the kernel's page cache
      await fs.guard(60_000, "reads of tampered files", () => {
        for (const name of ["b.bin", "c.bin", "d.bin"]) {
          const fd = L.open(`${fs.mnt}/${name}`, L.O.RDONLY | L.O.CLOEXEC);
          try {
            throwsErrno(() => L.preadFull(fd, 4096, 0), "EIO", `${name}: first block`);
          } finally {
            L.close(fd);
          }
        }
        // b.bin's second block is intact and still reads.
        const fd = L.open(`${fs.mnt}/b.bin`, L.O.RDONLY | L.O.CLOEXEC);
        try {
          bytesEqual(
            L.preadFull(fd, 300 * KiB, BLOCK),
            files["b.bin"]!.subarray(BLOCK),
            "b.bin's untouched block",
          );
        } finally {
          L.close(fd);
        }
      });
      for (const name of ["a.txt", "small.txt"]) {
        bytesEqual(await Deno.readFile(`${fs.mnt}/${name}`), files[name]!, `${name} untouched`);
      }
      const relative = (k: string) => k.slice("v/".length);
      for (const k of [first, c, d]) {
        assert.match(
          fs.log(),
          new RegExp(`Block "${relative(k)}" fails authentication`),
          `the daemon's log names ${k}`,
        );
      }

      // A wrong key or none refuses the mount with one line (a second mount of the volume).
      assertOneLine(
        await cliIn(["mount", "--encrypt-key", wrong, fs.meta, mnt2]),
        1,
        new RegExp(`^slayerfs: Wrong key: the key in "${wrong}" is not the key of volume "test"$`),
        "wrong key file",
      );
      assertOneLine(
        await cliIn(["mount", fs.meta, mnt2], REPO_ROOT, { SLAYERFS_ENCRYPTION_KEY: wrongHex }),
        1,
        /^slayerfs: Wrong key: the key in \$SLAYERFS_ENCRYPTION_KEY is not the key of volume "test"$/,
        "wrong key in the environment",
      );
      assertOneLine(
        await cliIn(["mount", fs.meta, mnt2]),
        1,
        /^slayerfs: Volume "test" is encrypted: give its key with --encrypt-key FILE/,
        "no key",
      );
      assert.ok(!isMounted(mnt2), "nothing mounted");
      // The right key as text in the environment mounts (in the background).
      const keyText = Buffer.from(await Deno.readFile(key)).toString("base64");
      const ok = await cliIn(
        ["mount", "--no-cache-dir", "--log", `${keys}/mnt2.log`, fs.meta, mnt2],
        REPO_ROOT,
        { SLAYERFS_ENCRYPTION_KEY: keyText },
      );
      try {
        assert.equal(ok.code, 0, ok.stderr);
        bytesEqual(await Deno.readFile(`${mnt2}/small.txt`), files["small.txt"]!, "via $KEY");
      } finally {
        const u = await runCli(["umount", mnt2]);
        assert.equal(u.code, 0, u.stderr);
      }

      // dump and load need no key; the loaded volume keeps the encryption record.
      const dump = await runCli(["dump", "-q", fs.meta, `${keys}/dump.json`]);
      assert.equal(dump.code, 0, dump.stderr);
      assert.match(await Deno.readTextFile(`${keys}/dump.json`), /"keyCheck"/);
      const meta2 = `sqlite3://${keys}/meta2.db`;
      const load = await runCli(["load", "-q", meta2, `${keys}/dump.json`]);
      assert.equal(load.code, 0, load.stderr);
      assertOneLine(
        await cliIn(["mount", "--encrypt-key", wrong, meta2, mnt2]),
        1,
        /^slayerfs: Wrong key: .* is not the key of volume "test"$/,
        "wrong key for the loaded volume",
      );
    } finally {
      s3.destroy();
      if (isMounted(mnt2)) await runCli(["umount", "--lazy", mnt2]);
      await Deno.remove(keys, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("format --encrypt-key: a bad key file or an inline size creates nothing; a new format checks the key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-encfmt-" });
  try {
    const key = `${dir}/k`;
    await Deno.writeTextFile(
      key,
      Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64") + "\n",
    );
    await Deno.writeTextFile(`${dir}/short`, "0123456789abcdef\n");
    const meta = `sqlite3://${dir}/vol/meta.db`;
    const before = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertOneLine(
      await cliIn(["format", "--encrypt-key", `${dir}/none`, meta, "v"]),
      1,
      new RegExp(`^slayerfs: Cannot read key file "${dir}/none": no such file$`),
      "missing key file",
    );
    assertOneLine(
      await cliIn(["format", "--encrypt-key", `${dir}/short`, meta, "v"]),
      1,
      /^slayerfs: Key file ".*short" holds 17 bytes that are not a key: expected 32 random bytes/,
      "malformed key file",
    );
    assertOneLine(
      await cliIn(["format", "--encrypt-key", key, "--inline-max", "4K", meta, "v"]),
      2,
      /^slayerfs: --inline-max cannot be used with --encrypt-key/,
      "inline blocks with encryption",
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), before, "nothing made");
    const ok = await cliIn(["format", "--encrypt-key", key, meta, "v"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /, encrypted \(aes-256-gcm\)$/m);
    assert.equal((await cliIn(["format", "--encrypt-key", key, meta, "v"])).code, 0, "same key");
    await Deno.writeFile(`${dir}/other`, crypto.getRandomValues(new Uint8Array(32)));
    assertOneLine(
      await cliIn(["format", "--encrypt-key", `${dir}/other`, meta, "v"]),
      1,
      /^slayerfs: Wrong key: it is not the key of volume "v"$/,
      "format again with another key",
    );
    assertOneLine(
      await cliIn(["format", meta, "v"]),
      1,
      /^slayerfs: Volume "v" is already formatted with encryption$/,
      "format again without the key",
    );
    // image opens the volume: it needs the key too.
    assertOneLine(
      await cliIn(["image", "ls", meta]),
      1,
      /^slayerfs: Volume "v" is encrypted: give its key with --encrypt-key FILE/,
      "image without the key",
    );
    const ls = await cliIn(["image", "ls", "--encrypt-key", key, meta]);
    assert.equal(ls.code, 0, ls.stderr);
    const status = await cliIn(["status", meta]);
    assert.match(status.stdout, /encryption aes-256-gcm/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
