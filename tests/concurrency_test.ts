/**
 * Several processes working on one SlayerFS mount at once: O_APPEND writers and renamers.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type SlayerMount, startSlayer } from "./_mount.ts";
import { run } from "./_run.ts";

/** Runs `code` (a Deno module body) in a child process with `ARG` in the environment. */
async function child(code: string, arg: string): Promise<void> {
  const out = await run(Deno.execPath(), ["eval", "--ext=ts", code], { env: { ARG: arg } });
  if (out.code !== 0) throw new Error(`Child failed (${out.code}): ${out.stderr}`);
}

/** Runs `code` in two child processes at once (one per argument) under the mount's watchdog. */
function inTwoChildren(fs: SlayerMount, label: string, code: string, args: [string, string]) {
  return fs.guard(180_000, label, () => Promise.all(args.map((arg) => child(code, arg))));
}

const APPENDER = `
const [path, id, count] = Deno.env.get("ARG")!.split("|");
const f = await Deno.open(path, { append: true, create: true });
for (let i = 0; i < Number(count); i++) {
  const rec = new TextEncoder().encode(
    "P" + id + " " + String(i).padStart(6, "0") + " " + "x".repeat(100 + (i % 50)) + "\\n",
  );
  const n = await f.write(rec);
  if (n !== rec.length) throw new Error("short write " + n);
}
f.close();
`;

Deno.test({
  name: "SlayerFS keeps every O_APPEND record of two concurrent writers intact",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using fs = await startSlayer();
    const path = `${fs.mnt}/log`;
    // 600 records each: Deno closes a dup of the fd after each write (a FUSE flush, so a commit
    // per record), and a chunk of thousands of tiny slices costs O(n) per commit (noted for the
    // speed issue); the interleaving is what this test is about.
    const count = 600;
    await inTwoChildren(fs, "appenders", APPENDER, [`${path}|A|${count}`, `${path}|B|${count}`]);
    const text = await Deno.readTextFile(path);
    assert.ok(text.endsWith("\n"));
    const lines = text.slice(0, -1).split("\n");
    assert.equal(lines.length, 2 * count, "record count");
    const next: Record<string, number> = { A: 0, B: 0 };
    for (const [i, line] of lines.entries()) {
      const m = /^P([AB]) (\d{6}) (x+)$/.exec(line);
      assert.ok(m, `record ${i} is corrupt: ${JSON.stringify(line.slice(0, 80))}`);
      const [, id, seq, pad] = m;
      assert.equal(Number(seq), next[id!], `records of ${id} out of order at line ${i}`);
      assert.equal(pad!.length, 100 + (Number(seq) % 50), `record ${i} has a torn payload`);
      next[id!]!++;
    }
    assert.deepEqual(next, { A: count, B: count });
  },
});

const RENAMER = `
const [dir, id, rounds] = Deno.env.get("ARG")!.split("|");
let moved = 0;
for (let r = 0; r < Number(rounds); r++) {
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  const name = names[Math.floor(Math.random() * names.length)];
  if (name === undefined) continue;
  const base = name.split(".")[0];
  try {
    await Deno.rename(dir + "/" + name, dir + "/" + base + "." + id + r);
    moved++;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
if (moved === 0) throw new Error("no rename succeeded");
`;

Deno.test({
  name: "SlayerFS loses and duplicates no file under concurrent renames from two processes",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using fs = await startSlayer();
    const dir = `${fs.mnt}/pool`;
    await Deno.mkdir(dir);
    const files = 50;
    for (let i = 0; i < files; i++) await Deno.writeTextFile(`${dir}/f${i}`, `content ${i}`);
    await inTwoChildren(fs, "renamers", RENAMER, [`${dir}|a|400`, `${dir}|b|400`]);
    const contents: string[] = [];
    for await (const e of Deno.readDir(dir)) {
      const text = await Deno.readTextFile(`${dir}/${e.name}`);
      assert.equal(e.name.split(".")[0], `f${text.split(" ")[1]}`, `${e.name} holds ${text}`);
      contents.push(text);
    }
    assert.equal(contents.length, files, "file count after the renames");
    assert.deepEqual(
      contents.sort(),
      Array.from({ length: files }, (_, i) => `content ${i}`).sort(),
    );
  },
});
