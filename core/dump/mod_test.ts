import assert from "node:assert/strict";
import { MemoryKvEngine } from "../../backends/kv_memory.ts";
import { memVolume } from "../_test_util.ts";
import { ROOT_CTX, ROOT_INO } from "../types.ts";
import { DumpError, dumpMeta, loadMeta } from "./mod.ts";

async function dumpText(kv: MemoryKvEngine, batch?: number): Promise<string> {
  let text = "";
  await dumpMeta(kv, (t) => {
    text += t;
    return Promise.resolve();
  }, batch ? { batch } : {});
  return text;
}

async function* linesOf(text: string): AsyncGenerator<string> {
  yield* text.split("\n");
}

const body = (t: string) => t.slice(t.indexOf("\n") + 1);

Deno.test("dump/load: layouts, versions, damaged dumps and non-empty targets", async () => {
  const { vol, kv } = await memVolume();
  try {
    const d = await vol.vfs.mkdir(ROOT_CTX, ROOT_INO, "d", 0o755);
    for (let i = 0; i < 30; i++) await vol.vfs.mknod(ROOT_CTX, d.ino, `f${i}`, 0o100644, 0);
    await vol.vfs.symlink(ROOT_CTX, ROOT_INO, "l", "d/f1");
    const text = await dumpText(kv, 4);
    assert.equal(body(await dumpText(kv)), body(text), "the page size does not show");
    const doc = JSON.parse(text);
    assert.equal(doc.slayerfs_dump.version, 1);
    assert.equal(doc.records.length, doc.end.keys);
    assert.equal(doc.slayerfs_dump.inodes, 33);

    // Streamed, one line, and a header line followed by another layout: the same keys.
    const variants = [
      text,
      JSON.stringify(doc),
      text.replace('"records":[\n', '"records":\n[\n'),
    ];
    for (const v of variants) {
      const to = new MemoryKvEngine();
      try {
        const stats = await loadMeta(to, linesOf(v), { batch: 5 });
        assert.equal(stats.keys, doc.end.keys);
        assert.equal(stats.inodes, 33);
        assert.equal(body(await dumpText(to)), body(text));
        await assert.rejects(loadMeta(to, linesOf(text)), DumpError, "not empty");
      } finally {
        await to.close();
      }
    }

    const refused = async (v: string, pattern: RegExp) => {
      const to = new MemoryKvEngine();
      try {
        await assert.rejects(loadMeta(to, linesOf(v)), (e: Error) => {
          assert.ok(e instanceof DumpError, String(e));
          assert.match(e.message, pattern);
          return true;
        });
        // Nothing usable is left: the format record is written last.
        assert.equal(await to.txn((tx) => tx.get("F")), undefined);
      } finally {
        await to.close();
      }
    };
    await refused(text.replace('"version":1', '"version":9'), /format version 9/);
    await refused(text.replace('"t":"symlink"', '"t":"nonsense"'), /Bad record \d+.*nonsense/);
    await refused(text.replace(/"end":\{"keys":\d+\}/, '"end":{"keys":3}'), /truncated or damaged/);
    await refused("", /empty|Not a SlayerFS dump/);
    await refused('{"hello":1}', /Not a SlayerFS dump/);
  } finally {
    await vol.close();
  }
});
