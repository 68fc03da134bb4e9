/**
 * Where the time goes in SlayerFS's S3 streaming paths, from one run on one s3rver process: a
 * durable sequential write (dd with conv=fsync) and a cold sequential read (fresh daemon, empty
 * disk cache, dropped kernel caches) of SIZE_MB, each with the wall-clock rate and the CPU seconds
 * per GiB spent by the SlayerFS daemon and by the S3 server, and the daemon's peak RSS (since its
 * start: the cold read's own, as that phase starts a fresh daemon). On a 2-core machine the two
 * share the cores, so a daemon that needs less CPU leaves more to the server.
 *
 * Usage (root): deno run -A bench/s3_cpu.ts [SIZE_MB=1024]
 * Environment: S3_PARAMS="&http=node" (appended to the storage URL), PERF=write|read (perf record
 * -g the daemon during that phase into $TMPDIR/slayerfs-PHASE.perf; needs linux-perf),
 * MOUNT_ARGS="-o loop=mt" (extra mount arguments), DAEMON_GLIBC_TUNABLES (GLIBC_TUNABLES for the
 * daemon only).
 *
 * @module
 */

import { startS3Server } from "../tests/_s3server.ts";
import { startSlayer } from "../tests/_mount.ts";

const sizeMb = Number(Deno.args[0] ?? 1024);
if (!Number.isInteger(sizeMb) || sizeMb <= 0) {
  console.error("usage: deno run -A bench/s3_cpu.ts [SIZE_MB]");
  Deno.exit(2);
}

/** user+system CPU seconds of a process, or NaN once it has gone. */
function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** The pid of the node process serving `directory` (s3rver). */
function serverPid(directory: string): number {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
      if (cmd.includes("serve.cjs") && cmd.includes(directory)) return Number(e.name);
    } catch { /* gone */ }
  }
  throw new Error(`No s3rver process for ${directory}`);
}

async function sh(cmd: string): Promise<void> {
  const out = await new Deno.Command("sh", { args: ["-c", cmd], stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd}: ${new TextDecoder().decode(out.stderr)}`);
}

interface Row {
  what: string;
  mibps: number;
  daemon: number;
  server: number;
  /** The daemon's peak RSS so far (VmHWM, MiB): since its start, which was fresh for a cold read. */
  peakMib: number;
}

/** VmHWM of a process in MiB, or NaN once it has gone. */
function peakRssMib(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

await using server = await startS3Server();
await server.createBucket("cpu-bench");
Deno.env.set("AWS_ACCESS_KEY_ID", server.accessKeyId);
Deno.env.set("AWS_SECRET_ACCESS_KEY", server.secretAccessKey);
const spid = serverPid(server.directory);
// Only the daemon (started below) gets these, not the server.
const tunables = Deno.env.get("DAEMON_GLIBC_TUNABLES");
if (tunables) Deno.env.set("GLIBC_TUNABLES", tunables);
const extra = (Deno.env.get("MOUNT_ARGS") ?? "").split(" ").filter((s) => s !== "");
await using fs = await startSlayer({
  storage: server.storeUrl("cpu-bench", "vol") + (Deno.env.get("S3_PARAMS") ?? ""),
  extraArgs: extra,
});
const file = `${fs.mnt}/stream`;
const gib = sizeMb / 1024;
const rows: Row[] = [];

async function measure(what: string, cmd: string, phase = ""): Promise<void> {
  const perf = phase !== "" && Deno.env.get("PERF") === phase;
  const d0 = cpuSeconds(fs.pid), s0 = cpuSeconds(spid), t0 = performance.now();
  let rec: Deno.ChildProcess | undefined;
  if (perf) {
    const out = `${Deno.env.get("TMPDIR") ?? "/tmp"}/slayerfs-${phase}.perf`;
    rec = new Deno.Command("perf", {
      args: ["record", "-g", "-F", "499", "-o", out, "-p", String(fs.pid)],
      stdout: "null",
      stderr: "null",
    }).spawn();
  }
  await sh(cmd);
  const secs = (performance.now() - t0) / 1000;
  if (rec) {
    rec.kill("SIGINT");
    await rec.status;
  }
  rows.push({
    what,
    mibps: sizeMb / secs,
    daemon: (cpuSeconds(fs.pid) - d0) / gib,
    server: (cpuSeconds(spid) - s0) / gib,
    peakMib: peakRssMib(fs.pid),
  });
}

// 64 MiB of random data repeated: incompressible blocks without /dev/urandom's cost per byte.
const seed = `${fs.dir}/rand64`;
await sh(`dd if=/dev/urandom of=${seed} bs=1M count=64 status=none`);
const reps = Math.ceil(sizeMb / 64);
await measure(
  "seq write, durable (dd conv=fsync)",
  `for i in $(seq ${reps}); do cat ${seed}; done | head -c ${sizeMb}M | ` +
    `dd of=${file} bs=1M iflag=fullblock conv=fsync status=none`,
  "write",
);
// Empty the disk cache while no daemon runs (the data is durable: fsync returned).
await fs.kill9();
await Deno.remove(`${Deno.env.get("SLAYERFS_HOME")}/cache`, { recursive: true }).catch(() => {});
await fs.restart();
await sh("sync; echo 3 > /proc/sys/vm/drop_caches");
await measure(
  "seq read, cold (dd bs=1M)",
  `dd if=${file} of=/dev/null bs=1M status=none`,
  "read",
);
await measure("seq read, warm (dd bs=1M)", `dd if=${file} of=/dev/null bs=1M status=none`);

const pad = (s: string, n: number) => s.padEnd(n);
console.log(
  `${pad("phase", 36)} ${pad("MiB/s", 8)} ${pad("daemon CPU-s/GiB", 17)} ${
    pad("server CPU-s/GiB", 17)
  } daemon peak RSS MiB`,
);
for (const r of rows) {
  console.log(
    `${pad(r.what, 36)} ${pad(r.mibps.toFixed(0), 8)} ${pad(r.daemon.toFixed(2), 17)} ${
      pad(r.server.toFixed(2), 17)
    } ${r.peakMib.toFixed(0)}`,
  );
}
