/**
 * The metadata benchmark at the `Vfs` level, per engine, like JuiceFS's Go benchmark of its meta
 * engines (`pkg/meta/benchmarks_test.go`): µs per mkdir, create (create + release), rename,
 * unlink, lookup, getattr, and readdir of a 1,000-entry folder, and the engine's round trips per
 * operation (`KvEngine.roundTrips`; "-" for embedded engines, which have none).
 *
 * ```sh
 * ./dev deno run -A bench/meta_bench.ts                 # every engine of tests/_engines.ts
 * ./dev deno run -A bench/meta_bench.ts --n 2000 sqlite3:///tmp/m.db redis://127.0.0.1:6390/1
 * ```
 *
 * With no URL it starts each engine fixture of `tests/_engines.ts` privately (a fresh volume on
 * its own server) and stops it afterwards; a URL given must name a new, empty volume (it is
 * formatted, and left as the run leaves it). The blocks go to a memory store (no data is
 * written). Operations run one at a time, as one FUSE request each would (latency, not
 * throughput). Prints one table.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { MemoryBlockStore, openKvEngine } from "../backends/mod.ts";
import type { KvEngine } from "../core/kv.ts";
import { type Ino, ROOT_CTX, ROOT_INO, S_IFDIR } from "../core/types.ts";
import { formatVolume, Volume } from "../core/volume.ts";
import { engineFixtures } from "../tests/_engines.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { n: { type: "string", default: "1000" }, readdirs: { type: "string", default: "20" } },
  allowPositionals: true,
});
const N = Number(values.n);
const READDIRS = Number(values.readdirs);

/** One measured operation: µs per op and round trips per op (undefined: embedded engine). */
interface Figure {
  us: number;
  rt: number | undefined;
}

const OPS = ["mkdir", "create", "rename", "unlink", "lookup", "getattr", "readdir 1k"] as const;
type Op = typeof OPS[number];

/** Runs `fn(i)` for i in 0..n-1, one at a time; µs and round trips per call. */
async function measure(
  kv: KvEngine,
  n: number,
  fn: (i: number) => Promise<unknown>,
): Promise<Figure> {
  const rt0 = kv.roundTrips;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await fn(i);
  const us = (performance.now() - t0) * 1000 / n;
  const rt1 = kv.roundTrips;
  return { us, rt: rt0 === undefined || rt1 === undefined ? undefined : (rt1 - rt0) / n };
}

/** The figures of every operation on the volume at `url` (formatted here). */
async function benchUrl(url: string): Promise<Map<Op, Figure>> {
  const kv = await openKvEngine(url);
  await formatVolume(kv, { name: "bench", storage: "mem://" });
  const vol = await Volume.openWith(kv, new MemoryBlockStore(), { predict: false });
  const vfs = vol.vfs;
  const ctx = ROOT_CTX;
  const out = new Map<Op, Figure>();
  try {
    const dirs = await vfs.mkdir(ctx, ROOT_INO, "dirs", S_IFDIR | 0o755);
    out.set("mkdir", await measure(kv, N, (i) => vfs.mkdir(ctx, dirs.ino, `d${i}`, 0o755)));
    const files = await vfs.mkdir(ctx, ROOT_INO, "files", 0o755);
    const inos: Ino[] = [];
    out.set(
      "create",
      await measure(kv, N, async (i) => {
        const { attr, opened } = await vfs.create(ctx, files.ino, `f${i}`, 0o644, 0o101);
        inos.push(attr.ino);
        await vfs.release(ctx, attr.ino, opened.fh, 0n, false);
      }),
    );
    out.set("lookup", await measure(kv, N, (i) => vfs.lookup(ctx, files.ino, `f${i}`)));
    out.set("getattr", await measure(kv, N, (i) => vfs.getattr(ctx, inos[i]!)));
    // A 1,000-entry folder (the first 1,000 files), read whole with attributes, as `ls -l` does.
    const big = await vfs.mkdir(ctx, ROOT_INO, "big", 0o755);
    for (let i = 0; i < 1000; i++) await vfs.mknod(ctx, big.ino, `e${i}`, 0o100644, 0);
    out.set(
      "readdir 1k",
      await measure(kv, READDIRS, async () => {
        const { fh } = await vfs.opendir(ctx, big.ino, 0);
        let offset = 0;
        for (;;) {
          const page = await vfs.readdir(ctx, big.ino, fh, offset, 256, true);
          if (page.length === 0) break;
          offset = page.at(-1)!.next;
        }
        await vfs.releasedir(ctx, big.ino, fh);
      }),
    );
    out.set(
      "rename",
      await measure(kv, N, (i) => vfs.rename(ctx, files.ino, `f${i}`, files.ino, `r${i}`, 0)),
    );
    out.set("unlink", await measure(kv, N, (i) => vfs.unlink(ctx, files.ino, `r${i}`)));
  } finally {
    await vol.close();
  }
  return out;
}

/** The results, one row per operation and two columns (µs, round trips) per engine. */
function printTable(results: Array<[string, Map<Op, Figure>]>): void {
  const rows: string[][] = [["operation", ...results.flatMap(([name]) => [`${name} µs`, "rt/op"])]];
  for (const op of OPS) {
    rows.push([
      op,
      ...results.flatMap(([, r]) => {
        const f = r.get(op);
        if (!f) return ["-", "-"];
        return [f.us.toFixed(f.us < 100 ? 1 : 0), f.rt === undefined ? "-" : f.rt.toFixed(1)];
      }),
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join("  ");
  console.log(
    `SlayerFS metadata benchmark (Vfs level), ${N} ops each, readdir of 1,000 entries ` +
      `x${READDIRS}, ${new Date().toISOString()}, ${navigator.hardwareConcurrency} cores`,
  );
  console.log(line(rows[0]!));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows.slice(1)) console.log(line(r));
}

const results: Array<[string, Map<Op, Figure>]> = [];
if (positionals.length) {
  for (const url of positionals) {
    results.push([new URL(url).protocol.slice(0, -1), await benchUrl(url)]);
  }
} else {
  for (const fixture of engineFixtures) {
    await using server = await fixture.start();
    results.push([fixture.name, await benchUrl(server.newVolumeUrl())]);
  }
}
printTable(results);
