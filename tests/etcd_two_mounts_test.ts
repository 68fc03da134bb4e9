/**
 * Two daemons mount one etcd volume at once (a private etcd, blocks in one shared folder): what
 * one writes and closes, the other reads; names one removes and re-creates are seen by the other,
 * even where the first one's engine still remembers the old values (its cached reads are checked
 * at commit).
 *
 * @module
 */

import assert from "node:assert/strict";
import { startEtcd } from "./_etcd.ts";
import { startSlayer } from "./_mount.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Retries `fn` for up to 5 s: the kernel caches names and attributes for 1 s. */
async function eventually<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

Deno.test({
  name: "two mounts of one etcd volume see each other's files",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using etcd = await startEtcd();
    const blocks = await Deno.makeTempDir({ prefix: "slayerfs-etcd-blocks-" });
    try {
      const storage = `file://${blocks}`;
      await using a = await startSlayer({ meta: etcd.url("two"), storage });
      await using b = await startSlayer({ meta: etcd.url("two"), storage, format: false });
      await Deno.writeFile(`${a.mnt}/from-a`, enc.encode("written on a"));
      await eventually(async () =>
        assert.equal(dec.decode(await Deno.readFile(`${b.mnt}/from-a`)), "written on a")
      );
      // b replaces what a created: a's engine remembers the old entry and inode.
      await Deno.remove(`${b.mnt}/from-a`);
      await Deno.writeFile(`${b.mnt}/from-a`, enc.encode("now from b"));
      await eventually(async () =>
        assert.equal(dec.decode(await Deno.readFile(`${a.mnt}/from-a`)), "now from b")
      );
      // a writes into the same directory again, many times, while b does too.
      await Promise.all([
        ...Array.from({ length: 20 }, (_, i) => Deno.writeFile(`${a.mnt}/a${i}`, enc.encode("a"))),
        ...Array.from({ length: 20 }, (_, i) => Deno.writeFile(`${b.mnt}/b${i}`, enc.encode("b"))),
      ]);
      const names = async (mnt: string) => {
        const out: string[] = [];
        for await (const e of Deno.readDir(mnt)) out.push(e.name);
        return out.sort();
      };
      await eventually(async () => assert.deepEqual(await names(a.mnt), await names(b.mnt)));
      assert.equal((await names(a.mnt)).length, 41);
    } finally {
      await Deno.remove(blocks, { recursive: true }).catch(() => {});
    }
  },
});
