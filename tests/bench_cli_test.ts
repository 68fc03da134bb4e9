/**
 * `slayerfs bench` (issue #12) against a real mount with small sizes: the JSON numbers add up
 * (bytes written and read back equal what the options ask for, the mount's own counters saw at
 * least those bytes), the text table has one row per stage, the benchmark's files are gone
 * afterwards, a plain folder works too (no mount counters), and a missing path is an error.
 *
 * @module
 */

import assert from "node:assert/strict";
import { errorLines } from "./_cli.ts";
import { runCli, startSlayer } from "./_mount.ts";

const KiB = 1024;
const MiB = 2 ** 20;

interface Stage {
  name: string;
  files: number;
  bytes: number;
  ops: number;
  seconds: number;
  mibPerSec: number;
  opsPerSec: number;
  msPerOp: number;
}

async function entries(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out;
}

function checkStages(stages: Stage[], threads: number, big: number, small: number, n: number) {
  const by = Object.fromEntries(stages.map((s) => [s.name, s]));
  assert.deepEqual(Object.keys(by), [
    "write big",
    "read big",
    "write small",
    "read small",
    "stat small",
  ]);
  assert.equal(by["write big"]!.bytes, big * threads);
  assert.equal(by["read big"]!.bytes, big * threads);
  assert.equal(by["write big"]!.ops, Math.ceil(big / MiB) * threads);
  assert.equal(by["write small"]!.bytes, small * n * threads);
  assert.equal(by["read small"]!.bytes, small * n * threads);
  assert.equal(by["stat small"]!.bytes, 0);
  for (const s of stages) {
    assert.ok(s.seconds > 0 && s.opsPerSec > 0 && s.msPerOp > 0, `${s.name}: ${JSON.stringify(s)}`);
    // ops/s and MiB/s agree with the counts and the time (rounded to 2 decimals).
    assert.ok(Math.abs(s.opsPerSec - s.ops / s.seconds) <= s.opsPerSec * 0.01 + 0.01, s.name);
    assert.ok(Math.abs(s.mibPerSec - s.bytes / MiB / s.seconds) <= s.mibPerSec * 0.01 + 0.01);
  }
}

Deno.test("bench on a mount: JSON adds up, table rows, mount counters, cleaned up", async () => {
  await using fs = await startSlayer();
  const before = await entries(fs.mnt);
  const args = ["--big-file-size", "3M", "--small-file-size", "24K", "--small-file-count", "12"];
  const r = await fs.guard(
    120_000,
    "bench --json",
    () => runCli(["bench", ...args, "-p", "2", "--json", fs.mnt]),
  );
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.path, fs.mnt);
  assert.equal(report.mountpoint, fs.mnt);
  assert.equal(report.threads, 2);
  assert.equal(report.cleanedUp, true);
  checkStages(report.stages, 2, 3 * MiB, 24 * KiB, 12);
  // The mount saw the bytes go through FUSE, and cached or fetched blocks for the reads.
  const m = report.mount as Record<string, number>;
  const written = 2 * 3 * MiB + 2 * 12 * 24 * KiB;
  assert.ok(m.fuseWrittenBytes! >= written, `FUSE writes ${m.fuseWrittenBytes} >= ${written}`);
  assert.ok(m.fuseRequests! > 24, `FUSE requests ${m.fuseRequests}`);
  assert.ok(m.objectPuts! > 0, `objects put ${m.objectPuts}`);
  if (Deno.uid() === 0) {
    assert.equal(report.droppedCaches, true);
    // With the page cache dropped, every byte read came through FUSE again.
    assert.ok(m.fuseReadBytes! >= written, `FUSE reads ${m.fuseReadBytes} >= ${written}`);
  }
  assert.deepEqual(await entries(fs.mnt), before, "the benchmark's folder is removed");

  const t = await fs.guard(120_000, "bench", () => runCli(["bench", ...args, fs.mnt]));
  assert.equal(t.code, 0, t.stderr);
  const lines = t.stdout.split("\n");
  assert.match(lines[0]!, new RegExp(`^Benchmark of ${fs.mnt} \\(SlayerFS mount ${fs.mnt}\\)`));
  assert.match(lines[1]!, /^\s+stage\s+files\s+size\s+MiB\/s\s+ops\/s\s+ms\/op\s+seconds$/);
  const num = String.raw`\d+(\.\d+)?`;
  for (
    const [stage, files, size] of [
      ["write big", "1", "3.0 MiB"],
      ["read big", "1", "3.0 MiB"],
      ["write small", "12", "288.0 KiB"],
      ["read small", "12", "288.0 KiB"],
    ]
  ) {
    const row = new RegExp(`^\\s+${stage}\\s+${files}\\s+${size}\\s+${num}\\s+${num}\\s+${num}`);
    assert.ok(lines.some((l) => row.test(l)), `a row for ${stage}:\n${t.stdout}`);
  }
  assert.ok(lines.some((l) => new RegExp(`^\\s+stat small\\s+12\\s+-\\s+-\\s+${num}`).test(l)));
  assert.ok(lines.includes("Mount during the run:"), t.stdout);
  assert.ok(lines.some((l) => /^\s+cacheMisses\s+\d+$/.test(l)), t.stdout);
  // Not a terminal: the progress bars print one plain final line per stage on stderr.
  assert.match(t.stderr, /^\[#+\] 100% write big: 3\/3$/m);
  assert.doesNotMatch(t.stderr, /\r/);
  assert.deepEqual(await entries(fs.mnt), before);
});

Deno.test("bench on a plain folder, and on a missing one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-bench-" });
  try {
    const r = await runCli([
      "bench",
      "--big-file-size",
      "0",
      "--small-file-size",
      "1K",
      "--small-file-count",
      "5",
      "--json",
      dir,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.mountpoint, null);
    assert.equal(report.mount, undefined);
    assert.deepEqual(report.stages.map((s: Stage) => s.name), [
      "write small",
      "read small",
      "stat small",
    ]);
    assert.equal(report.stages[0].bytes, 5 * 1024);
    assert.deepEqual(await entries(dir), []);
    const missing = await runCli(["bench", `${dir}/nope`]);
    assert.equal(missing.code, 1);
    assert.match(errorLines(missing.stderr).join("\n"), /^slayerfs: Cannot benchmark ".*\/nope"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
