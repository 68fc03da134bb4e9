/**
 * The metrics of a real mount (issue #12, "Metrics" and `slayerfs stats`): the endpoint moves to
 * the next free port when its port is taken, `status` shows it, a scrape after real I/O passes
 * `promtool check metrics` and holds every documented name with the volume and mountpoint labels,
 * the Grafana dashboard uses only names that exist, a real Prometheus server scrapes the mount and
 * answers a query for a counter that moved, and `slayerfs stats` prints lines of rates.
 *
 * @module
 */

import assert from "node:assert/strict";
import { METRIC_NAMES, OPTIONAL_METRIC_NAMES } from "../core/metrics/metrics.ts";
import { type MetricSample, parseMetrics, sum } from "../core/metrics/parse.ts";
import { REPO_ROOT, runCli, startSlayer } from "./_mount.ts";
import { run } from "./_run.ts";

const MiB = 2 ** 20;

/** Installs Debian's `prometheus` (with `promtool`) when missing. */
async function ensurePrometheus(): Promise<void> {
  const have = await run("sh", ["-c", "command -v prometheus && command -v promtool"]);
  if (have.code === 0) return;
  const r = await run("sh", [
    "-c",
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus",
  ]);
  assert.equal(r.code, 0, `installing prometheus failed:\n${r.stderr}`);
}

/** A port nobody listens on now. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function scrape(address: string): Promise<string> {
  const res = await fetch(`http://${address}/metrics`);
  assert.equal(res.status, 200);
  return await res.text();
}

/** Writes `mib` MiB to `path` and reads it back. */
async function writeAndRead(path: string, mib: number): Promise<void> {
  const data = new Uint8Array(MiB).map((_, i) => (i * 7 + mib) & 0xff);
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let i = 0; i < mib; i++) await f.write(data);
  await f.sync();
  f.close();
  assert.equal((await Deno.readFile(path)).byteLength, mib * MiB);
}

async function waitFor<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${ms} ms${last ? ` (${last})` : ""}`);
}

Deno.test("a mount's metrics: promtool, dashboard, a real Prometheus, slayerfs stats", async (t) => {
  await ensurePrometheus();
  // The port asked for is taken: the mount must take the next free one.
  const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const taken = (blocker.addr as Deno.NetAddr).port;
  await using fs = await startSlayer({
    extraArgs: ["--writeback", "--metrics", `127.0.0.1:${taken}`],
  }).finally(() => blocker.close());
  const status = await runCli(["status", "--json", fs.mnt]);
  assert.equal(status.code, 0, status.stderr);
  const address = JSON.parse(status.stdout).metrics as string;
  const port = Number(address.split(":").at(-1));
  assert.ok(port > taken && port < taken + 100, `next free port after ${taken}: ${address}`);
  assert.match(fs.log(), new RegExp(`Metrics at http://${address}/metrics`));
  const human = await runCli(["status", fs.mnt]);
  assert.match(human.stdout, new RegExp(`Metrics: +http://${address}/metrics`));

  await writeAndRead(`${fs.mnt}/a.bin`, 6);
  const text = await scrape(address);
  let samples: MetricSample[] = parseMetrics(text);

  await t.step("the scrape passes promtool check metrics", async () => {
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-promtool-" });
    try {
      await Deno.writeTextFile(`${dir}/scrape.txt`, text);
      const r = await run("sh", ["-c", `promtool check metrics < '${dir}/scrape.txt'`]);
      assert.equal(r.code, 0, `promtool: ${r.stdout}${r.stderr}`);
      assert.equal((r.stdout + r.stderr).trim(), "", "no lint findings");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("every documented name is there, labelled, and the I/O is counted", async () => {
    const names = new Set(samples.map((s) => s.name));
    for (const name of [...METRIC_NAMES, ...OPTIONAL_METRIC_NAMES]) {
      if (name.endsWith("round_trips_total")) continue; // SQLite does not count round trips
      const present = names.has(name) || names.has(`${name}_count`);
      assert.ok(present, `${name} in the scrape`);
    }
    for (const s of samples) {
      assert.ok(s.name.startsWith("slayerfs_"), s.name);
      assert.equal(s.labels.volume, "test", `${s.name} volume label`);
      assert.equal(s.labels.mountpoint, fs.mnt, `${s.name} mountpoint label`);
    }
    assert.ok(sum(samples, "slayerfs_fuse_written_bytes_total") >= 6 * MiB);
    assert.ok(sum(samples, "slayerfs_fuse_read_bytes_total") >= 6 * MiB);
    const writes = sum(samples, "slayerfs_fuse_op_duration_seconds_count", { op: "write" });
    assert.ok(writes >= 6, `write requests: ${writes}`);
    assert.ok(sum(samples, "slayerfs_used_space_bytes") >= 6 * MiB);
    assert.ok(sum(samples, "slayerfs_meta_txn_duration_seconds_count", { kind: "write" }) > 0);
    assert.ok(sum(samples, "slayerfs_process_resident_memory_bytes") > 0);
    // Staged blocks reach the store: the uploads show as object puts with their bytes.
    samples = await waitFor("uploads counted", 20_000, async () => {
      const s = parseMetrics(await scrape(address));
      return sum(s, "slayerfs_staging_uploaded_total") > 0 &&
          sum(s, "slayerfs_object_request_duration_seconds_count", { method: "put" }) > 0 &&
          sum(s, "slayerfs_object_request_bytes_total", { method: "put" }) > 0
        ? s
        : undefined;
    });
    // The README's Operations section names every metric.
    const readme = await Deno.readTextFile(`${REPO_ROOT}/README.md`);
    const ops = readme.slice(readme.indexOf("## Operations"));
    for (const name of [...METRIC_NAMES, ...OPTIONAL_METRIC_NAMES]) {
      assert.ok(ops.includes(`\`${name.replace(/^slayerfs_/, "")}`), `README names ${name}`);
    }
  });

  await t.step("the Grafana dashboard uses only metrics the mount exports", async () => {
    const dashboard = JSON.parse(
      await Deno.readTextFile(`${REPO_ROOT}/ops/grafana-dashboard.json`),
    ) as { panels: Array<{ targets?: Array<{ expr: string }> }> };
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    assert.ok(exprs.length >= 20, `dashboard queries: ${exprs.length}`);
    const names = new Set(samples.map((s) => s.name));
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\bslayerfs_\w+/g)].map((m) => m[0])));
    for (const name of used) assert.ok(names.has(name), `${name} (dashboard) in the scrape`);
    // ... and it covers every family of the issue.
    for (const family of ["fuse_", "blockcache_", "object_", "staging_", "meta_txn", "used_"]) {
      assert.ok([...used].some((n) => n.startsWith(`slayerfs_${family}`)), family);
    }
  });

  await t.step("a real Prometheus scrapes the mount and sees a counter move", async () => {
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-prometheus-" });
    const web = `127.0.0.1:${freePort()}`;
    await Deno.writeTextFile(
      `${dir}/prometheus.yml`,
      [
        "global:",
        "  scrape_interval: 1s",
        "scrape_configs:",
        "  - job_name: slayerfs",
        "    static_configs:",
        `      - targets: ["${address}"]`,
        "",
      ].join("\n"),
    );
    const child = new Deno.Command("prometheus", {
      args: [
        `--config.file=${dir}/prometheus.yml`,
        `--storage.tsdb.path=${dir}/data`,
        `--web.listen-address=${web}`,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    try {
      const query = async (q: string): Promise<number | undefined> => {
        const res = await fetch(`http://${web}/api/v1/query?query=${encodeURIComponent(q)}`);
        const body = await res.json() as {
          status: string;
          data: { result: Array<{ value: [number, string] }> };
        };
        assert.equal(body.status, "success");
        const v = body.data.result[0]?.value[1];
        return v === undefined ? undefined : Number(v);
      };
      const sel = `{job="slayerfs",mountpoint="${fs.mnt}",volume="test"}`;
      const before = await waitFor(
        "Prometheus has scraped the mount",
        30_000,
        () => query(`slayerfs_fuse_written_bytes_total${sel}`),
      );
      assert.ok(before >= 6 * MiB, `written before: ${before}`);
      await writeAndRead(`${fs.mnt}/b.bin`, 3);
      const after = await waitFor("the counter moved in Prometheus", 30_000, async () => {
        const v = await query(`slayerfs_fuse_written_bytes_total${sel}`);
        return v !== undefined && v >= before + 3 * MiB ? v : undefined;
      });
      assert.ok(after >= before + 3 * MiB);
      const up = await query(`up{job="slayerfs"}`);
      assert.equal(up, 1);
    } finally {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await stderr;
      await Deno.remove(dir, { recursive: true });
    }
  });

  await t.step("slayerfs stats prints a header and a line of rates per interval", async () => {
    let writing = true;
    const load = (async () => {
      for (let i = 0; writing; i++) await writeAndRead(`${fs.mnt}/load-${i % 4}.bin`, 2);
    })();
    let out;
    try {
      out = await runCli(["stats", "--interval", "0.5", "--count", "4", fs.mnt]);
    } finally {
      writing = false;
      await load;
    }
    assert.equal(out.code, 0, out.stderr);
    const lines = out.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 6, out.stdout);
    assert.match(lines[0]!, /fuse.*cache.*object.*meta.*staged.*daemon/);
    assert.match(lines[1]!, /ops\/s.*wr MiB\/s.*hit%.*put\/s.*txn\/s.*blocks.*cpu%/);
    assert.ok(!out.stdout.includes("\x1b["), "no escape codes when not a terminal");
    const rows = lines.slice(2).map((l) => l.split("|")[0]!.trim().split(/\s+/).map(Number));
    assert.ok(
      rows.some((r) => r[0]! > 0 && r[3]! > 0),
      `ops/s and write MiB/s moved:\n${out.stdout}`,
    );
  });
});

Deno.test("slayerfs stats on a mount without metrics says so", async () => {
  await using fs = await startSlayer({ extraArgs: ["--no-metrics"] });
  const status = await runCli(["status", "--json", fs.mnt]);
  assert.equal(JSON.parse(status.stdout).metrics, undefined);
  const r = await runCli(["stats", "--count", "1", fs.mnt]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /^slayerfs: The mount at ".*" serves no metrics \(mounted with --no-metrics/,
  );
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
});
