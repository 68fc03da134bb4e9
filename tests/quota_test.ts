/**
 * Directory quotas through real mounts, on SQLite and on a private Redis server
 * (`tests/_engines.ts`): EDQUOT from real syscalls (dd, touch, mkdir, rename) with nothing written
 * past the limit, limits changed by the CLI reaching a running mount at once, nested quotas,
 * usage kept exact under concurrent writers in two processes on each of two mounts (compared with
 * a walk of the tree), renames across quota trees (a file's usage moves; a directory gets EXDEV,
 * so `mv` copies), and `quota check --repair` after the usage was corrupted in the engine.
 *
 * @module
 */

import assert from "node:assert/strict";
import { openKvEngine } from "../backends/mod.ts";
import { encodeJson } from "../core/meta/_codec.ts";
import { quotaUsageKey } from "../core/meta/keys.ts";
import { QUOTA_CACHE_MS } from "../core/_vfs_quota.ts";
import type { Ino } from "../core/types.ts";
import { engineFixtures } from "./_engines.ts";
import { runCli, startSlayer } from "./_mount.ts";
import { probe, quotaGet, quotaSet, sh, walkUsage } from "./_tenants.ts";

const MiB = 2 ** 20;

/** Asserts that the usage `quota get` keeps for `path` equals a walk of `dir`. */
async function exact(meta: string, path: string, dir: string): Promise<void> {
  const q = await quotaGet(meta, path);
  const w = await walkUsage(dir);
  assert.deepEqual(
    { space: q.usedSpace, inodes: q.usedInodes },
    w,
    `usage kept for ${path} equals the walk`,
  );
}

/** Writers in a child shell: files made, grown, truncated and removed in `dir`. */
function writer(dir: string, id: number): Promise<{ code: number; stderr: string }> {
  return sh(`set -e; cd '${dir}'
for i in $(seq 1 12); do
  dd if=/dev/urandom of=w${id}-$i bs=$((i * 1700 + ${id} * 13)) count=1 status=none
  dd if=/dev/urandom of=shared-${id % 2} bs=3000 count=1 oflag=append conv=notrunc status=none
  if [ $((i % 3)) -eq 0 ]; then rm w${id}-$((i - 1)); fi
  if [ $((i % 4)) -eq 0 ]; then truncate -s $((i * 5000)) w${id}-$i; fi
done`);
}

for (const fx of engineFixtures.filter((f) => f.name === "sqlite3" || f.name === "redis")) {
  Deno.test({
    name: `${fx.name}: quotas: EDQUOT, live limits, exact usage across mounts, renames, repair`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      await using server = await fx.start();
      const meta = server.newVolumeUrl();
      await using a = await startSlayer({ meta });
      await using b = await startSlayer({ meta, format: false });
      await a.guard(400_000, "quota checks", async () => {
        const A = a.mnt, B = b.mnt;
        for (const d of ["team-a", "team-a/nested", "team-a/small", "team-b"]) {
          await Deno.mkdir(`${A}/${d}`);
        }
        // Written before any quota: the quota's walk counts it (and adopts it).
        await Deno.writeFile(`${A}/team-a/old`, new Uint8Array(10_000));
        await Deno.writeFile(`${A}/team-a/small/s`, new Uint8Array(5000));
        await quotaSet(meta, "/team-a", "--capacity", "8M", "--inodes", "1000");
        await quotaSet(meta, "/team-a/nested", "--capacity", "2M");
        const qa = await quotaGet(meta, "/team-a");
        assert.deepEqual(qa, {
          path: "/team-a",
          capacity: 8 * MiB,
          inodes: 1000,
          usedSpace: 12288 + 8192,
          usedInodes: 4,
        });
        assert.equal((await quotaGet(meta, "/team-a/nested")).inodes, null);
        // The mounts cache "no quota on the volume" for up to QUOTA_CACHE_MS (seen by the writes
        // above): the volume's first quota reaches their write checks after that, as documented.
        await new Promise((r) => setTimeout(r, QUOTA_CACHE_MS + 100));

        // dd past the nested quota: EDQUOT from write(2); the file stops exactly at the limit.
        const dd = await sh(`dd if=/dev/zero of='${A}/team-a/nested/big' bs=1M count=4`);
        assert.notEqual(dd.code, 0);
        assert.match(dd.stderr, /Disk quota exceeded/);
        assert.equal((await Deno.stat(`${A}/team-a/nested/big`)).size, 2 * MiB);
        assert.equal((await quotaGet(meta, "/team-a/nested")).usedSpace, 2 * MiB);
        // The write counted against every quota on its path.
        assert.equal((await quotaGet(meta, "/team-a")).usedSpace, 12288 + 8192 + 2 * MiB);
        // Below the limit nothing is lost: the 2 MiB written read back.
        const big = await Deno.readFile(`${B}/team-a/nested/big`);
        assert.equal(big.length, 2 * MiB);

        // Inodes: the fourth create in a 3-inode quota fails (touch, mkdir), on the other mount.
        await quotaSet(meta, "/team-b", "--inodes", "3");
        const created = await probe(`
for n in ["b1", "b2", "b3", "b4"]:
    op("create-" + n, lambda: os.close(os.open("${B}/team-b/" + n, os.O_CREAT | os.O_WRONLY)))
op("mkdir", lambda: os.mkdir("${B}/team-b/d"))
op("symlink", lambda: os.symlink("x", "${B}/team-b/l"))
`);
        assert.deepEqual(Object.fromEntries(created), {
          "create-b1": "OK",
          "create-b2": "OK",
          "create-b3": "OK",
          "create-b4": "EDQUOT",
          mkdir: "EDQUOT",
          symlink: "EDQUOT",
        });
        // A limit changed by the CLI reaches the running mount at its next create or write.
        await quotaSet(meta, "/team-b", "--inodes", "10", "--capacity", "64K");
        assert.equal(
          (await probe(`op("c", lambda: open("${B}/team-b/b4", "w").close())`)).get("c"),
          "OK",
        );
        const over = await sh(`dd if=/dev/zero of='${B}/team-b/x' bs=64K count=2`);
        assert.match(over.stderr, /Disk quota exceeded/);
        assert.equal((await Deno.stat(`${B}/team-b/x`)).size, 64 * 1024);
        await quotaSet(meta, "/team-b", "--capacity", "1M");
        const more = await sh(
          `dd if=/dev/zero of='${B}/team-b/x' bs=64K count=2 oflag=append conv=notrunc`,
        );
        assert.equal(more.code, 0, more.stderr);
        // truncate(2) and fallocate(2) past the limit fail whole.
        const grow = await probe(`
op("truncate", lambda: os.truncate("${B}/team-b/x", 4 << 20))
fd = os.open("${B}/team-b/x", os.O_WRONLY)
op("fallocate", lambda: os.posix_fallocate(fd, 0, 4 << 20))
os.close(fd)
`);
        assert.deepEqual(Object.fromEntries(grow), { truncate: "EDQUOT", fallocate: "EDQUOT" });
        assert.equal((await Deno.stat(`${B}/team-b/x`)).size, 192 * 1024);

        // Concurrent writers: two processes on each mount, in one quota tree.
        await Deno.mkdir(`${A}/team-a/conc`);
        // Made first: an O_CREAT racing on two mounts can fail with EEXIST (not a quota matter).
        for (const f of ["shared-0", "shared-1"]) {
          await Deno.writeFile(`${A}/team-a/conc/${f}`, new Uint8Array());
        }
        await new Promise((r) => setTimeout(r, 1100)); // B's kernel forgets it saw no such names
        const results = await Promise.all([
          writer(`${A}/team-a/conc`, 1),
          writer(`${A}/team-a/conc`, 2),
          writer(`${B}/team-a/conc`, 3),
          writer(`${B}/team-a/conc`, 4),
        ]);
        for (const r of results) assert.equal(r.code, 0, r.stderr);
        await new Promise((r) => setTimeout(r, 1500)); // past the kernel's attribute cache
        await exact(meta, "/team-a", `${A}/team-a`);
        await exact(meta, "/team-a/nested", `${A}/team-a/nested`);
        await exact(meta, "/team-b", `${A}/team-b`);

        // Renames across quota trees: a file's usage moves; a directory is EXDEV (mv copies).
        const before = await quotaGet(meta, "/team-a");
        await Deno.rename(`${A}/team-a/old`, `${A}/team-b/old`);
        const after = await quotaGet(meta, "/team-a");
        assert.equal(after.usedSpace, before.usedSpace - 12288);
        assert.equal(after.usedInodes, before.usedInodes - 1);
        await exact(meta, "/team-b", `${A}/team-b`);
        const moves = await probe(`
op("rename-dir", lambda: os.rename("${A}/team-a/small", "${A}/team-b/small"))
op("link-across", lambda: os.link("${A}/team-b/old", "${A}/team-a/old-link"))
op("rename-into-full", lambda: os.rename("${A}/team-a/nested/big", "${A}/team-b/big"))
`);
        assert.deepEqual(Object.fromEntries(moves), {
          "rename-dir": "EXDEV",
          "link-across": "EXDEV",
          "rename-into-full": "EDQUOT",
        });
        const mv = await sh(`mv '${A}/team-a/small' '${A}/team-b/small'`);
        assert.equal(mv.code, 0, mv.stderr);
        await exact(meta, "/team-a", `${A}/team-a`);
        await exact(meta, "/team-b", `${A}/team-b`);

        // list --json has every quota.
        const list = await runCli(["quota", "list", meta, "--json"]);
        assert.equal(list.code, 0, list.stderr);
        const paths = (JSON.parse(list.stdout) as { path: string }[]).map((q) => q.path);
        assert.deepEqual(paths, ["/team-a", "/team-a/nested", "/team-b"]);

        // Usage corrupted in the engine: check reports it (exit 1), --repair fixes it.
        const ino = (await Deno.stat(`${A}/team-a`)).ino as Ino;
        const kv = await openKvEngine(meta);
        try {
          await kv.txn((tx) => {
            tx.set(quotaUsageKey(ino), encodeJson({ space: 4096, inodes: 1 }));
            return Promise.resolve();
          });
        } finally {
          await kv.close();
        }
        const bad = await runCli(["quota", "check", meta]);
        assert.equal(bad.code, 1, bad.stdout);
        assert.match(bad.stdout, /\/team-a: usage kept 4096 bytes, 1 inodes; counted/);
        assert.match(bad.stdout, /\/team-b: ok/);
        assert.match(bad.stderr, /quota check --repair/);
        const fix = await runCli(["quota", "check", "--repair", meta]);
        assert.equal(fix.code, 0, fix.stderr);
        await exact(meta, "/team-a", `${A}/team-a`);
        assert.equal((await runCli(["quota", "check", meta])).code, 0);

        // delete: the quota goes; writes past the old limit work.
        const del = await runCli(["quota", "delete", meta, "--path", "/team-a/nested"]);
        assert.equal(del.code, 0, del.stderr);
        const gone = await runCli(["quota", "get", meta, "--path", "/team-a/nested", "--json"]);
        assert.equal(gone.code, 1);
        assert.match(gone.stderr, /No quota on "\/team-a\/nested"/);
      });
    },
  });
}
