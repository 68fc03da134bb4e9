/**
 * `-o ro` through a real mount: every change fails with EROFS from real syscalls (create, open
 * for writing or with O_TRUNC, truncate, chmod, chown, utimes, rename, unlink, mkdir, rmdir,
 * symlink, link, setxattr, removexattr) while reads, listings, xattr reads and readlink work; the
 * mount registers no session and leaves the volume's metadata as it was (the SQLite file byte for
 * byte; every key and value of a Redis). The
 * operations the kernel cannot send without a handle open for writing (write, fallocate,
 * copy_file_range into a file) are refused by the operation layer as well (`readOnlyOps`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { memVolume } from "../core/_test_util.ts";
import { Errno, FsError } from "../core/errno.ts";
import { readOnlyOps } from "../core/tenant_ops.ts";
import { type Fh, nameFromText, O_RDWR, ROOT_CTX, ROOT_INO } from "../core/types.ts";
import { runCli, startSlayer } from "./_mount.ts";
import { startRedis } from "./_redis.ts";
import { probe } from "./_tenants.ts";

/** The bytes of the SQLite file and its WAL (absent or empty count as empty), as text. */
async function metadataBytes(dir: string): Promise<string> {
  const read = (p: string) => Deno.readFile(p).catch(() => new Uint8Array());
  const text = (b: Uint8Array) => Array.from(b, (c) => c.toString(16)).join("");
  return `${text(await read(`${dir}/meta.db`))}|${text(await read(`${dir}/meta.db-wal`))}`;
}

/** A digest of every key and value of a Redis database (DUMP of each key, sorted by key). */
const REDIS_DIGEST = `local keys = redis.call("KEYS", "*")
table.sort(keys)
local parts = {}
for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. redis.call("DUMP", k) end
return #keys .. ":" .. redis.sha1hex(table.concat(parts, "|"))`;

/** An engine of the test: its meta URL, a snapshot of all its metadata, and a stop. */
interface RoEngine {
  meta: string;
  snapshot(): Promise<string>;
  stop(): Promise<void>;
}

const roEngines: Record<string, (dir: string) => Promise<RoEngine>> = {
  sqlite3: (dir) =>
    Promise.resolve({
      meta: `sqlite3://${dir}/meta.db`,
      snapshot: () => metadataBytes(dir),
      stop: () => Promise.resolve(),
    }),
  async redis() {
    const r = await startRedis();
    return {
      meta: r.url({ prefix: "ro" }),
      snapshot: () => r.cli("EVAL", REDIS_DIGEST, "0"),
      stop: () => r.stop(),
    };
  },
};

for (const [engine, startEngine] of Object.entries(roEngines)) {
  Deno.test({
    name: `${engine}: ro mount: EROFS for every change, reads work, no session, metadata untouched`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "slayerfs-ro-" });
      const eng = await startEngine(dir);
      try {
        const meta = eng.meta;
        const storage = `file://${dir}/blocks`;
        {
          await using w = await startSlayer({ meta, storage });
          await Deno.writeTextFile(`${w.mnt}/f`, "data");
          await Deno.mkdir(`${w.mnt}/d`);
          await Deno.symlink("f", `${w.mnt}/l`);
          const x = await probe(`op("set", lambda: os.setxattr("${w.mnt}/f", "user.a", b"1"))`);
          assert.equal(x.get("set"), "OK");
        }
        const before = await eng.snapshot();
        if (engine === "redis") {
          assert.match(before, /^[1-9]\d*:[0-9a-f]{40}$/, "a digest of the keys");
        }
        await using ro = await startSlayer({ meta, format: false, extraArgs: ["-o", "ro"] });
        const R = ro.mnt;
        const got = await ro.guard(60_000, "ro probes", () =>
          probe(`
R = "${R}"
op("read", lambda: open(R + "/f").read() == "data" or sys.exit("bad read"))
op("listdir", lambda: sorted(os.listdir(R)) == ["d", "f", "l"] or sys.exit("bad list"))
op("getxattr", lambda: os.getxattr(R + "/f", "user.a") == b"1" or sys.exit("bad xattr"))
op("readlink", lambda: os.readlink(R + "/l") == "f" or sys.exit("bad link"))
op("create", lambda: os.open(R + "/new", os.O_CREAT | os.O_WRONLY, 0o644))
op("open-wronly", lambda: os.open(R + "/f", os.O_WRONLY))
op("open-rdwr", lambda: os.open(R + "/f", os.O_RDWR))
op("open-trunc", lambda: os.open(R + "/f", os.O_RDONLY | os.O_TRUNC))
op("truncate", lambda: os.truncate(R + "/f", 0))
op("chmod", lambda: os.chmod(R + "/f", 0o600))
op("chown", lambda: os.chown(R + "/f", 1, 1))
op("utime", lambda: os.utime(R + "/f", (1, 1)))
op("rename", lambda: os.rename(R + "/f", R + "/g"))
op("unlink", lambda: os.unlink(R + "/f"))
op("mkdir", lambda: os.mkdir(R + "/e"))
op("rmdir", lambda: os.rmdir(R + "/d"))
op("symlink", lambda: os.symlink("f", R + "/m"))
op("link", lambda: os.link(R + "/f", R + "/h"))
op("mknod", lambda: os.mkfifo(R + "/p"))
op("setxattr", lambda: os.setxattr(R + "/f", "user.b", b"2"))
op("removexattr", lambda: os.removexattr(R + "/f", "user.a"))
`));
        const want: Record<string, string> = {
          read: "OK",
          listdir: "OK",
          getxattr: "OK",
          readlink: "OK",
        };
        for (const name of got.keys()) want[name] ??= "EROFS";
        assert.deepEqual(Object.fromEntries(got), want);
        assert.equal(got.size, 21);
        // No session: the read-only mount writes nothing, not even a heartbeat.
        const st = await runCli(["status", "--json", meta]);
        assert.equal(st.code, 0, st.stderr);
        assert.deepEqual((JSON.parse(st.stdout) as { sessions: unknown[] }).sessions, []);
        await new Promise((r) => setTimeout(r, 1500));
        await ro.stop();
        assert.equal(await eng.snapshot(), before, "the metadata did not change");
      } finally {
        await eng.stop();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    },
  });
}

const rofs = (e: unknown) => e instanceof FsError && e.errno === Errno.EROFS;

Deno.test("readOnlyOps refuses write, fallocate and copy_file_range even with a handle", async () => {
  const { vol } = await memVolume();
  await using _ = vol;
  const ctx = ROOT_CTX;
  const { attr, opened } = await vol.vfs.create(ctx, ROOT_INO, nameFromText("f"), 0o644, O_RDWR);
  const ops = readOnlyOps(vol.vfs);
  const fh = opened.fh as Fh;
  await assert.rejects(ops.write(ctx, attr.ino, fh, 0, new Uint8Array(4)), rofs);
  await assert.rejects(ops.fallocate!(ctx, attr.ino, fh, 0, 0, 4096), rofs);
  await assert.rejects(
    ops.copyFileRange!(ctx, attr.ino, fh, 0, attr.ino, fh, 8192, 10, 0),
    rofs,
  );
  await assert.rejects(ops.setattr(ctx, attr.ino, { size: 0 }), rofs);
  await assert.rejects(ops.open(ctx, attr.ino, O_RDWR), rofs);
  // Reads and a read-only open pass through.
  const h = await ops.open(ctx, attr.ino, 0);
  assert.equal((await ops.read(ctx, attr.ino, h.fh, 0, 10)).length, 0);
  await vol.vfs.release(ctx, attr.ino, fh, 0n, false);
  await ops.release(ctx, attr.ino, h.fh, 0n, false);
});
