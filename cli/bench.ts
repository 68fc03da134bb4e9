/**
 * `slayerfs bench PATH`: a quick benchmark of any folder, like `juicefs bench`. Each of
 * `--threads N` writes one big file (`--big-file-size`, 1 GiB by default) in 1 MiB writes and
 * reads it back, then creates `--small-file-count` small files (`--small-file-size`), reads them
 * and stats them. The page cache is dropped before each read stage when running as root
 * (`/proc/sys/vm/drop_caches`); otherwise the report says it was not. Everything happens in a
 * fresh folder under PATH that is removed at the end, whatever happens.
 *
 * When PATH is inside a SlayerFS mount, the report adds what the mount did meanwhile: FUSE
 * requests, block cache hits and misses, object store requests and bytes (from its metrics
 * endpoint, or from its state file when it serves none).
 *
 * @module
 */

import { resolve } from "node:path";
import pLimit from "p-limit";
import { CliError, describe } from "./_errors.ts";
import { humanBytes, Progress, table } from "./_human.ts";
import { mountDeltas, type MountProbe, probeMount } from "./_bench_mount.ts";
import type { ParsedArgs } from "./_spec.ts";

const MiB = 2 ** 20;
/** The size of each read and write of a big file. */
const IO_SIZE = MiB;

/** One measured stage. */
export interface BenchStage {
  /** `write big`, `read big`, `write small`, `read small`, `stat small`. */
  name: string;
  /** Files touched. */
  files: number;
  /** Bytes written or read (0 for stat). */
  bytes: number;
  /** Operations: 1 MiB writes or reads for big files, files for small ones. */
  ops: number;
  /** Wall-clock seconds of the stage. */
  seconds: number;
  /** Throughput (0 for stat). */
  mibPerSec: number;
  /** Operations per second, all threads together. */
  opsPerSec: number;
  /** Mean time of one operation as one thread sees it (milliseconds). */
  msPerOp: number;
}

/** What `bench --json` prints. */
export interface BenchReport {
  /** The folder benchmarked (the absolute PATH). */
  path: string;
  /** The SlayerFS mountpoint holding it, or null for another filesystem. */
  mountpoint: string | null;
  /** Threads (files written or read at once). */
  threads: number;
  /** Bytes of each big file. */
  bigFileSize: number;
  /** Bytes of each small file. */
  smallFileSize: number;
  /** Small files per thread. */
  smallFileCount: number;
  /** Whether the page cache was dropped before the read stages (root only). */
  droppedCaches: boolean;
  /** The stages, in order. */
  stages: BenchStage[];
  /** What the mount did during the run (counter increases), for a SlayerFS mount. */
  mount?: Record<string, number>;
  /** Whether the benchmark's folder was removed. */
  cleanedUp: boolean;
}

/** Random bytes (getRandomValues fills at most 64 KiB per call). */
function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

/** Drops the page cache when root; whether it did. */
async function dropCaches(): Promise<boolean> {
  if (Deno.uid() !== 0) return false;
  try {
    await Deno.writeTextFile("/proc/sys/vm/drop_caches", "3");
    return true;
  } catch {
    return false;
  }
}

function stage(
  name: string,
  files: number,
  bytes: number,
  ops: number,
  seconds: number,
  n: number,
) {
  const s = Math.max(seconds, 1e-6);
  return {
    name,
    files,
    bytes,
    ops,
    seconds: Number(s.toFixed(6)),
    mibPerSec: Number((bytes / MiB / s).toFixed(2)),
    opsPerSec: Number((ops / s).toFixed(2)),
    msPerOp: Number((ops ? s * 1000 * n / ops : 0).toFixed(3)),
  };
}

/** Runs `fn` for each index under a progress bar; returns the seconds it took. */
async function timed(
  label: string,
  total: number,
  quiet: boolean,
  run: (tick: (n: number) => void) => Promise<void>,
): Promise<number> {
  let done = 0;
  const t0 = performance.now();
  const progress = new Progress(() => ({
    fraction: total ? done / total : 1,
    text: `${label}: ${done}/${total}`,
  }), { quiet });
  try {
    await run((n) => done += n);
  } finally {
    progress.done();
  }
  return (performance.now() - t0) / 1000;
}

/** The benchmark itself, in `dir` (which exists and is empty). */
async function runStages(
  dir: string,
  o: { threads: number; big: number; small: number; count: number; quiet: boolean },
  notes: string[],
): Promise<{ stages: BenchStage[]; dropped: boolean }> {
  const stages: BenchStage[] = [];
  const limit = pLimit(o.threads);
  const threads = Array.from({ length: o.threads }, (_, i) => i);
  const data = randomBytes(Math.max(IO_SIZE, o.small));
  let dropped = true;
  const drop = async () => {
    if (!(await dropCaches())) dropped = false;
  };
  if (o.big > 0) {
    const ioPerFile = Math.ceil(o.big / IO_SIZE);
    const total = ioPerFile * o.threads;
    const wrote = await timed(
      "write big",
      total,
      o.quiet,
      (tick) =>
        Promise.all(threads.map((t) =>
          limit(async () => {
            using f = await Deno.open(`${dir}/big.${t}`, { write: true, createNew: true });
            for (let off = 0; off < o.big; off += IO_SIZE) {
              const chunk = data.subarray(0, Math.min(IO_SIZE, o.big - off));
              for (let w = 0; w < chunk.byteLength;) w += await f.write(chunk.subarray(w));
              tick(1);
            }
          })
        )).then(() => {}),
    );
    stages.push(stage("write big", o.threads, o.big * o.threads, total, wrote, o.threads));
    await drop();
    let bytes = 0;
    const buf = threads.map(() => new Uint8Array(IO_SIZE));
    const read = await timed(
      "read big",
      total,
      o.quiet,
      (tick) =>
        Promise.all(threads.map((t) =>
          limit(async () => {
            using f = await Deno.open(`${dir}/big.${t}`, { read: true });
            for (;;) {
              const n = await f.read(buf[t]!);
              if (n === null) break;
              bytes += n;
              tick(n / IO_SIZE);
            }
          })
        )).then(() => {}),
    );
    if (bytes !== o.big * o.threads) {
      throw new CliError(`Read ${bytes} bytes of the big files back, wrote ${o.big * o.threads}`);
    }
    stages.push(stage("read big", o.threads, bytes, total, read, o.threads));
  }
  if (o.count > 0) {
    const total = o.count * o.threads;
    const names = threads.flatMap((t) =>
      Array.from({ length: o.count }, (_, i) => `${dir}/small.${t}.${i}`)
    );
    const perThread = (fn: (name: string) => Promise<void>) =>
      Promise.all(threads.map((t) =>
        limit(async () => {
          for (let i = 0; i < o.count; i++) await fn(names[t * o.count + i]!);
        })
      )).then(() => {});
    const body = data.subarray(0, o.small);
    const wrote = await timed("write small", total, o.quiet, (tick) =>
      perThread(async (name) => {
        await Deno.writeFile(name, body, { createNew: true });
        tick(1);
      }));
    stages.push(stage("write small", total, o.small * total, total, wrote, o.threads));
    await drop();
    let bytes = 0;
    const read = await timed("read small", total, o.quiet, (tick) =>
      perThread(async (name) => {
        const n = (await Deno.readFile(name)).byteLength; // not `bytes += await`: a race
        bytes += n;
        tick(1);
      }));
    if (bytes !== o.small * total) {
      throw new CliError(`Read ${bytes} bytes of the small files back, wrote ${o.small * total}`);
    }
    stages.push(stage("read small", total, bytes, total, read, o.threads));
    const statted = await timed("stat small", total, o.quiet, (tick) =>
      perThread(async (name) => {
        const st = await Deno.stat(name);
        if (st.size !== o.small) throw new CliError(`"${name}" has ${st.size} bytes`);
        tick(1);
      }));
    stages.push(stage("stat small", total, 0, total, statted, o.threads));
  }
  if (!dropped) {
    notes.push(
      Deno.uid() === 0
        ? "the page cache could not be dropped (/proc/sys/vm/drop_caches): reads may be cached"
        : "not root: the page cache was not dropped before reading (reads may come from it)",
    );
  }
  return { stages, dropped };
}

/** The report as a table for people. */
export function benchText(r: BenchReport, notes: string[]): string {
  const rows = [["stage", "files", "size", "MiB/s", "ops/s", "ms/op", "seconds"]];
  for (const s of r.stages) {
    rows.push([
      s.name,
      String(s.files),
      s.bytes ? humanBytes(s.bytes) : "-",
      s.bytes ? s.mibPerSec.toFixed(1) : "-",
      s.opsPerSec.toFixed(1),
      s.msPerOp.toFixed(2),
      s.seconds.toFixed(2),
    ]);
  }
  const lines = [
    `Benchmark of ${r.path}${r.mountpoint ? ` (SlayerFS mount ${r.mountpoint})` : ""}: ` +
    `${r.threads} threads, big files ${humanBytes(r.bigFileSize)}, ` +
    `${r.smallFileCount} small files of ${humanBytes(r.smallFileSize)} per thread`,
    ...table(rows),
  ];
  if (r.mount) {
    lines.push("Mount during the run:");
    lines.push(...table(Object.entries(r.mount).map(([k, v]) => [k, String(v)]), "  "));
  }
  for (const n of notes) lines.push(`Note: ${n}`);
  return lines.join("\n");
}

/** Runs `slayerfs bench` with its checked arguments. */
export async function cmdBench(args: ParsedArgs): Promise<void> {
  const path = resolve(args.positionals[0]!);
  const json = args.flag("json");
  const o = {
    threads: args.number("threads"),
    big: args.number("big-file-size"),
    small: args.number("small-file-size"),
    count: args.number("small-file-count"),
    quiet: args.flag("quiet") || json,
  };
  try {
    if (!(await Deno.stat(path)).isDirectory) throw new Error("not a folder");
  } catch (err) {
    throw new CliError(`Cannot benchmark "${path}": ${describe(err)}`);
  }
  const probe: MountProbe | undefined = await probeMount(path);
  const dir = `${path}/.slayerfs-bench-${Deno.pid}-${Date.now().toString(36)}`;
  try {
    await Deno.mkdir(dir);
  } catch (err) {
    throw new CliError(`Cannot create "${dir}": ${describe(err)}`);
  }
  const notes: string[] = [];
  let result: { stages: BenchStage[]; dropped: boolean } | undefined;
  let failure: unknown;
  try {
    result = await runStages(dir, o, notes);
  } catch (err) {
    failure = err;
  }
  let cleanedUp = true;
  try {
    await Deno.remove(dir, { recursive: true });
  } catch (err) {
    cleanedUp = false;
    notes.push(`could not remove "${dir}": ${describe(err)}`);
  }
  if (failure !== undefined) {
    throw new CliError(
      `Benchmark failed: ${describe(failure)}${cleanedUp ? "" : `; ${notes.at(-1)}`}`,
    );
  }
  const report: BenchReport = {
    path,
    mountpoint: probe?.mountpoint ?? null,
    threads: o.threads,
    bigFileSize: o.big,
    smallFileSize: o.small,
    smallFileCount: o.count,
    droppedCaches: result!.dropped,
    stages: result!.stages,
    cleanedUp,
  };
  if (probe) report.mount = await mountDeltas(probe);
  console.log(json ? JSON.stringify({ ...report, notes }, null, 2) : benchText(report, notes));
  if (!cleanedUp) throw new CliError(notes.at(-1)!);
}
