/**
 * `slayerfs clone` and `slayerfs snapshot create` of a model-like folder: FILES files of MIB MiB of
 * random data (no holes, nothing compressible) written through a mount on a `file://` store, then
 * cloned and snapshotted. Prints the time of each (the command's wall time, Deno's start
 * included, and the time the daemon took, as the command reports it) and the objects in the store
 * before and after: a clone adds none.
 *
 * Usage: `deno run -A bench/clone.ts [FILES] [MiB per file] [--copy]` (defaults 20 and 100:
 * 2 GiB); `--copy` also times `cp -r` of the folder inside the mount, for contrast.
 *
 * @module
 */

import * as L from "../tests/_libc.ts";
import { runCli, startSlayer } from "../tests/_mount.ts";

const args = Deno.args.filter((a) => !a.startsWith("--"));
const FILES = Number(args[0] ?? 20);
const MIB = Number(args[1] ?? 100);
const COPY = Deno.args.includes("--copy");

async function objects(storage: string): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else {
        count++;
        bytes += (await Deno.stat(p)).size;
      }
    }
  };
  await walk(new URL(storage).pathname).catch(() => {});
  return { count, bytes };
}

async function timed(what: string, args: string[]): Promise<[number, string]> {
  const t = performance.now();
  const r = await runCli(args);
  if (r.code !== 0) throw new Error(`${what}: ${r.stderr}`);
  return [performance.now() - t, r.stdout.trim()];
}

await using fs = await startSlayer();
const dir = `${fs.mnt}/model`;
await Deno.mkdir(dir);
const buf = new Uint8Array(4 << 20);
let t = performance.now();
for (let f = 0; f < FILES; f++) {
  const fd = L.open(`${dir}/shard-${String(f).padStart(3, "0")}.bin`, L.O.WRONLY | L.O.CREAT);
  for (let off = 0; off < MIB << 20; off += buf.length) {
    for (let i = 0; i < buf.length; i += 65536) crypto.getRandomValues(buf.subarray(i, i + 65536));
    L.pwriteFull(fd, buf.subarray(0, Math.min(buf.length, (MIB << 20) - off)), off);
  }
  L.close(fd);
}
const writeMs = performance.now() - t;
const before = await objects(fs.storage);
const [cloneMs, cloneOut] = await timed("clone", ["clone", dir, `${fs.mnt}/model-ft`]);
const afterClone = await objects(fs.storage);
const [snapMs, snapOut] = await timed("snapshot", ["snapshot", "create", dir, "v1"]);
const afterSnap = await objects(fs.storage);
let copyMs: number | undefined;
if (COPY) {
  t = performance.now();
  const r = await new Deno.Command("cp", { args: ["-r", dir, `${fs.mnt}/model-cp`] }).output();
  if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
  copyMs = performance.now() - t;
}
const gib = (FILES * MIB / 1024).toFixed(2);
console.log(
  `${FILES} files, ${gib} GiB of random data (written in ${(writeMs / 1000).toFixed(1)} s)`,
);
console.log(`store before: ${before.count} objects, ${(before.bytes / 2 ** 30).toFixed(2)} GiB`);
console.log(`clone:    ${cloneMs.toFixed(0)} ms wall (${cloneOut.replace(/^.*: /, "")})`);
console.log(`          store after: ${afterClone.count} objects`);
console.log(`snapshot: ${snapMs.toFixed(0)} ms wall (${snapOut.replace(/^.*: /, "")})`);
console.log(`          store after: ${afterSnap.count} objects`);
if (copyMs !== undefined) console.log(`cp -r:    ${(copyMs / 1000).toFixed(1)} s`);
