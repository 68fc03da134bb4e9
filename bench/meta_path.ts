/**
 * Where the metadata path spends its requests: the small-file and tree phases of `peers.sh` on a
 * fresh SlayerFS mount (SQLite metadata, `file://` blocks), with the FUSE requests per operation
 * and the metadata transactions (read, write) each phase caused, per file, from the mount's
 * Prometheus counters, with the daemon's CPU time (`/proc/PID/stat`) and read-type system calls
 * (`syscr` of `/proc/PID/io`, mostly `read`s of `/dev/fuse`) per file, and the mean time of each
 * operation sent at least once per two files (from its arrival on the JS thread to its reply).
 * The cold `find` is timed after the caches are dropped, as in `peers.sh`.
 *
 * ```sh
 * ./dev deno run -A bench/meta_path.ts                 # 1000 small files, a 1000-file tree
 * ./dev deno run -A bench/meta_path.ts 2000 2000 -- -o attr_timeout=5   # extra mount arguments
 * ```
 *
 * Needs root (drop_caches before the cold `find`), `tar`, `find`.
 *
 * @module
 */

import { startSlayer } from "../tests/_mount.ts";

const dashes = Deno.args.indexOf("--");
const own = dashes < 0 ? Deno.args : Deno.args.slice(0, dashes);
const extra = dashes < 0 ? [] : Deno.args.slice(dashes + 1);
const files = Number(own[0] ?? 1000);
const treeFiles = Number(own[1] ?? 1000);
const port = 19000 + Math.floor(Math.random() * 1000);

/**
 * Sums of a scrape: `op` → requests, `us:op` → their summed time (µs, arrival to reply), and
 * `txn:read`/`txn:write` → transactions.
 */
async function scrape(): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    let m = line.match(
      /^slayerfs_fuse_op_duration_seconds_count\{[^}]*op="([a-z_]+)"[^}]*\} (\S+)/,
    );
    if (m) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]));
    m = line.match(/^slayerfs_fuse_op_duration_seconds_sum\{[^}]*op="([a-z_]+)"[^}]*\} (\S+)/);
    if (m) out.set(`us:${m[1]}`, (out.get(`us:${m[1]}`) ?? 0) + Number(m[2]) * 1e6);
    m = line.match(/^slayerfs_meta_txn_duration_seconds_count\{[^}]*kind="([a-z]+)"[^}]*\} (\S+)/);
    if (m) out.set(`txn:${m[1]}`, (out.get(`txn:${m[1]}`) ?? 0) + Number(m[2]));
  }
  return out;
}

function run(cmd: string, args: string[]): void {
  const r = new Deno.Command(cmd, { args, stdout: "null", stderr: "inherit" }).outputSync();
  if (!r.success) throw new Error(`${cmd} ${args.join(" ")} failed`);
}

/** The daemon's CPU time so far (user + system), in µs, from `/proc/PID/stat`. */
function daemonCpuUs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 1e6 / 100; // utime, stime in clock ticks
}

/** The daemon's read-type system calls so far (`syscr` of `/proc/PID/io`: `read`s of `/dev/fuse`). */
function daemonReads(pid: number): number {
  return Number(Deno.readTextFileSync(`/proc/${pid}/io`).match(/^syscr: (\d+)/m)?.[1] ?? NaN);
}

function dropCaches(): void {
  run("sync", []);
  Deno.writeTextFileSync("/proc/sys/vm/drop_caches", "3");
}

await using fs = await startSlayer({ extraArgs: ["--metrics", `127.0.0.1:${port}`, ...extra] });
const dir = `${fs.mnt}/small`;
await Deno.mkdir(dir);
const payload = new Uint8Array(1024).fill(0x61);
const work = await Deno.makeTempDir({ prefix: "slayerfs-metapath-" });
try {
  const src = `${work}/tree`;
  run(Deno.execPath(), [
    "run",
    "-A",
    new URL("./peers.ts", import.meta.url).pathname,
    "maketree",
    src,
    String(treeFiles),
  ]);
  run("tar", ["-cf", `${work}/tree.tar`, "-C", src, "."]);
  await Deno.mkdir(`${fs.mnt}/tree`);

  const phases: Array<[string, number, () => Promise<void> | void]> = [
    ["create", files, async () => {
      for (let i = 0; i < files; i++) await Deno.writeFile(`${dir}/f${i}`, payload);
    }],
    ["list+stat", files, async () => {
      for await (const e of Deno.readDir(dir)) await Deno.lstat(`${dir}/${e.name}`);
    }],
    ["read", files, async () => {
      for (let i = 0; i < files; i++) await Deno.readFile(`${dir}/f${i}`);
    }],
    ["delete", files, async () => {
      for (let i = 0; i < files; i++) await Deno.remove(`${dir}/f${i}`);
    }],
    ["tar -x", treeFiles, () => run("tar", ["-xf", `${work}/tree.tar`, "-C", `${fs.mnt}/tree`])],
    ["find (cold)", treeFiles, () => run("find", [`${fs.mnt}/tree`])],
  ];
  console.log(`load average ${Deno.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  for (const [name, n, fn] of phases) {
    if (name.endsWith("(cold)")) dropCaches();
    const before = await scrape();
    const cpu0 = daemonCpuUs(fs.pid);
    const reads0 = daemonReads(fs.pid);
    const t0 = performance.now();
    await fn();
    const ms = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 300)); // forgets and batched closes land
    const cpu = (daemonCpuUs(fs.pid) - cpu0) / n;
    const reads = (daemonReads(fs.pid) - reads0) / n;
    const after = await scrape();
    const per: string[] = [];
    const means: string[] = [];
    let total = 0;
    const delta = (k: string) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    for (const k of after.keys()) {
      const d = delta(k);
      if (d <= 0 || k.startsWith("us:")) continue;
      if (!k.startsWith("txn:")) {
        total += d;
        if (d / n >= 0.5) means.push(`${k} ${(delta(`us:${k}`) / d).toFixed(0)}`);
      }
      per.push(`${k} ${(d / n).toFixed(2)}`);
    }
    console.log(
      `${name.padEnd(12)} ${ms.toFixed(0).padStart(6)} ms ${
        cpu.toFixed(0).padStart(6)
      } µs cpu/file ${reads.toFixed(1).padStart(5)} reads/file  ${
        (total / n).toFixed(2)
      } req/file: ${per.join(", ")}\n${"".padEnd(13)}mean µs per request: ${means.join(", ")}`,
    );
  }
} finally {
  await Deno.remove(work, { recursive: true });
}
