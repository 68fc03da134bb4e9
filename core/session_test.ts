/**
 * Sessions and the opens they record, with two `Vfs` on one SQLite volume (two engines on one
 * file, as two daemons have): close-to-open, an unlink on one while the other has the file open,
 * the cleanup of a dead session (its unlinked-open files deleted, the hooks run, the record gone)
 * and a session that finds itself taken for dead (registers anew, lost hooks run).
 *
 * @module
 */

import assert from "node:assert/strict";
import { SqliteKvEngine } from "../backends/kv_sqlite.ts";
import { MemoryKvEngine } from "../backends/kv_memory.ts";
import { FileBlockStore } from "../backends/store_file.ts";
import { Session } from "./session.ts";
import { Errno, FsError } from "./errno.ts";
import { O_RDWR } from "./types.ts";
import { formatVolume, Volume } from "./volume.ts";

const te = new TextEncoder();

async function twoMounts(dir: string, timeoutMs = 60_000) {
  const open = async (name: string) => {
    const kv = await SqliteKvEngine.open(`${dir}/meta.db`);
    const store = await FileBlockStore.open(`${dir}/blocks`);
    const session = await Session.register(kv, { mountpoint: name, version: "test", timeoutMs });
    return { vol: await Volume.openWith(kv, store, { session }), session };
  };
  const kv = await SqliteKvEngine.open(`${dir}/meta.db`);
  await formatVolume(kv, { name: "t", storage: `file://${dir}/blocks`, blockSize: 64 << 10 });
  await kv.close();
  return [await open("a"), await open("b")] as const;
}

/** Asserts equal bytes (without node's slow diff of large arrays). */
function same(got: Uint8Array, want: Uint8Array, what = "bytes"): void {
  const at = got.findIndex((b, i) => b !== want[i]);
  assert.ok(
    got.length === want.length && at < 0,
    `${what} differ (length ${got.length}, at ${at})`,
  );
}

async function objects(dir: string): Promise<number> {
  let n = 0;
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      if (e.isDirectory) await walk(`${d}/${e.name}`);
      else if (!e.name.startsWith(".")) n++;
    }
  };
  await walk(`${dir}/blocks/chunks`).catch(() => {});
  return n;
}

async function until(what: string, fn: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("two mounts: close-to-open, and a file unlinked on one stays open on the other", async () => {
  const dir = await Deno.makeTempDir();
  const [a, b] = await twoMounts(dir);
  try {
    assert.notEqual(a.session.id, b.session.id);
    assert.deepEqual((await Session.list(a.vol.vfs.meta.kv)).map((s) => s.mountpoint), ["a", "b"]);
    const data = new Uint8Array(300_000).map((_, i) => i * 7);
    await a.vol.writeFile("/f", data);
    same(await b.vol.readFile("/f"), data);
    // Changed on A: B's next open sees the new contents and size.
    await a.vol.writeFile("/f", te.encode("short"));
    same(await b.vol.readFile("/f"), te.encode("short"));

    // Open on A, unlinked on B: A keeps reading and writing it; its last close frees it.
    await a.vol.writeFile("/g", data);
    const f = await a.vol.open("/g", O_RDWR);
    await b.vol.unlink("/g");
    await assert.rejects(b.vol.readFile("/g"));
    same(await f.read(0, data.length), data);
    await f.write(data.length, te.encode("more"));
    await f.sync();
    same(await f.read(data.length, 10), te.encode("more"));
    const before = await objects(dir);
    assert.ok(before >= 5, `blocks of /g are stored (${before})`);
    await f.close();
    await until("the blocks of /g to go", async () => (await objects(dir)) < before - 4);
  } finally {
    await a.vol.close();
    await b.vol.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a dead session is cleaned up by another mount; a live one that was cut off registers anew", async () => {
  const dir = await Deno.makeTempDir();
  const [a, b] = await twoMounts(dir);
  try {
    const cleaned: number[] = [];
    b.session.onCleanup((_kv, sid) => void cleaned.push(sid));
    const lost: Array<[number, number]> = [];
    a.session.onLost((old, now) => void lost.push([old, now]));
    const data = new Uint8Array(200_000).map((_, i) => i * 3);
    await a.vol.writeFile("/g", data);
    await a.vol.writeFile("/h", data);
    const f = await a.vol.open("/g", O_RDWR);
    const h = await a.vol.open("/h", O_RDWR);
    await b.vol.unlink("/g");
    const before = await objects(dir);
    const aId = a.session.id;

    // B judges A dead (as if A's heartbeat were two minutes old): A's unlinked open file goes.
    assert.deepEqual(await b.session.cleanStale(Date.now() + 120_000), [aId]);
    assert.deepEqual(cleaned, [aId]);
    assert.deepEqual((await Session.list(b.vol.vfs.meta.kv)).map((s) => s.id), [b.session.id]);
    await until("the blocks of /g to go", async () => (await objects(dir)) < before);

    // A finds out at its next beat: a new session, and the lost hooks learn of it.
    assert.equal(await a.session.beat(), false);
    assert.notEqual(a.session.id, aId);
    assert.deepEqual(lost, [[aId, a.session.id]]);
    assert.equal(await a.session.beat(), true);
    assert.deepEqual(await b.session.cleanStale(), [], "A is live again");
    // /g was deleted meanwhile: reading it on A fails (EIO: its blocks are gone, or the file if
    // A must look its slices up), it does not give zeros.
    await assert.rejects(
      f.read(0, data.length),
      (err) => err instanceof FsError && err.errno === Errno.EIO,
    );
    await f.close().catch(() => {});
    // /h, open on A all along, is recorded again under the new session: an unlink keeps it.
    await b.vol.unlink("/h");
    same(await h.read(0, data.length), data);
    await h.close();
  } finally {
    await a.vol.close();
    await b.vol.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a clean close deletes the session and its open records", async () => {
  const dir = await Deno.makeTempDir();
  const [a, b] = await twoMounts(dir);
  try {
    await a.vol.writeFile("/f", te.encode("x"));
    const f = await a.vol.open("/f", O_RDWR);
    await f.close();
    await a.vol.close();
    assert.deepEqual((await Session.list(b.vol.vfs.meta.kv)).map((s) => s.id), [b.session.id]);
    const keys = await b.vol.vfs.meta.kv.txn((tx) => tx.scan("U", { keysOnly: true }));
    assert.deepEqual(keys, [], "no open records left");
  } finally {
    await a.vol.close();
    await b.vol.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failed cleanup hook leaves the session expired, and the next round cleans it", async () => {
  const kv = new MemoryKvEngine();
  try {
    const a = await Session.register(kv, { mountpoint: "a", version: "t", timeoutMs: 1000 });
    const b = await Session.register(kv, { mountpoint: "b", version: "t", timeoutMs: 1000 });
    let fail = true;
    const seen: number[] = [];
    b.onCleanup((_kv, sid) => {
      seen.push(sid);
      if (fail) throw new Error("hook failed");
    });
    const later = Date.now() + 5000;
    // The error goes to the session's onError (logged), not to the caller.
    assert.deepEqual(await b.cleanStale(later), []);
    const recs = await Session.list(kv);
    assert.equal(recs.find((r) => r.id === a.id)?.expired, true, "expired, not deleted");
    fail = false;
    assert.deepEqual(await b.cleanStale(later), [a.id]);
    assert.deepEqual(seen, [a.id, a.id], "the hook ran again");
    assert.deepEqual((await Session.list(kv)).map((r) => r.id), [b.id]);
  } finally {
    await kv.close();
  }
});
