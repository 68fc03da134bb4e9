/**
 * `slayerfs fsck` on every engine of `_engines.ts`: a healthy volume written through a real mount
 * checks clean; after a block object of one file is deleted and one of another is truncated in the
 * `file://` store, fsck exits 1 and names both files by path (every path of a hard-linked one);
 * a wrong counter is reported and `--repair` fixes it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { openKvEngine } from "../backends/mod.ts";
import { keyUsedInodes } from "../core/meta/keys.ts";
import { encodeNum } from "../core/meta/_codec.ts";
import { engineFixtures } from "./_engines.ts";
import { runCli, startSlayer } from "./_mount.ts";

/** Every file under `dir`, relative. */
async function files(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${dir}/${rel}`)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await files(dir, p));
    else out.push(p);
  }
  return out.sort();
}

function random(n: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

for (const fixture of engineFixtures) {
  Deno.test(`fsck names the files whose blocks are missing or short (${fixture.name})`, async () => {
    await using server = await fixture.start();
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-fsck-" });
    try {
      const blocks = `${dir}/blocks`;
      const meta = server.newVolumeUrl();
      let aObjects: string[];
      let bObjects: string[];
      {
        await using m = await startSlayer({
          meta,
          storage: `file://${blocks}`,
          formatArgs: ["--block-size", "64K"],
        });
        await Deno.mkdir(`${m.mnt}/data/deep`, { recursive: true });
        await Deno.writeFile(`${m.mnt}/data/deep/a.bin`, random(200_000));
        aObjects = await files(`${blocks}/chunks`);
        await Deno.writeFile(`${m.mnt}/data/b.bin`, random(100_000));
        await Deno.link(`${m.mnt}/data/b.bin`, `${m.mnt}/b-link`);
        bObjects = (await files(`${blocks}/chunks`)).filter((k) => !aObjects.includes(k));
        await Deno.writeFile(`${m.mnt}/small.txt`, new TextEncoder().encode("inline"));
        await Deno.writeFile(`${m.mnt}/data/ok.bin`, random(70_000));
      }
      assert.equal(aObjects.length, 3, `a.bin's blocks: ${aObjects}`);
      assert.equal(bObjects.length, 2, `b.bin's blocks: ${bObjects}`);

      const clean = await runCli(["fsck", meta]);
      assert.equal(clean.code, 0, clean.stderr + clean.stdout);
      assert.match(clean.stdout, /^broken files: 0$/m);
      assert.match(clean.stdout, /^ok$/m);

      await Deno.remove(`${blocks}/chunks/${aObjects[1]}`);
      const b0 = `${blocks}/chunks/${bObjects[0]}`;
      await Deno.writeFile(b0, (await Deno.readFile(b0)).subarray(0, 1000));
      const bad = await runCli(["fsck", meta]);
      assert.equal(bad.code, 1, bad.stdout);
      assert.match(bad.stderr, /^slayerfs: The volume has 2 broken files/m);
      assert.match(bad.stdout, /^broken files: 2$/m);
      assert.match(bad.stdout, /^ {2}\/data\/deep\/a\.bin \(inode \d+\)$/m);
      assert.match(bad.stdout, /is missing from the store/);
      assert.match(bad.stdout, /^ {2}(\/data\/b\.bin, \/b-link|\/b-link, \/data\/b\.bin) \(inode/m);
      assert.match(bad.stdout, /has 1000 bytes, expected \d+/);
      assert.doesNotMatch(bad.stdout, /ok\.bin|small\.txt/);

      // Put the blocks back (as fsck expects them) and break a counter instead.
      await Deno.remove(`${blocks}/chunks`, { recursive: true });
      const kv = await openKvEngine(meta);
      try {
        await kv.txn((tx) => {
          tx.set(keyUsedInodes, encodeNum(1234));
          return Promise.resolve();
        });
      } finally {
        await kv.close();
      }
      const counters = await runCli(["fsck", meta]);
      assert.equal(counters.code, 1);
      assert.match(counters.stdout, /^counter Ninodes: 1234, counted 7 \(--repair fixes them\)$/m);
      const repair = await runCli(["fsck", "--repair", meta]);
      assert.equal(repair.code, 1, "still broken: the blocks are gone");
      assert.match(repair.stdout, /counter Ninodes: 1234, counted 7 \(repaired\)/);
      const after = await runCli(["fsck", meta]);
      assert.doesNotMatch(after.stdout, /counter Ninodes/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
