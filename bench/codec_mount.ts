/**
 * The block codec's share of the daemon's CPU through a mount, on a local (`file://`) volume so
 * no S3 server competes for the cores: a durable sequential write (dd conv=fsync) and a cold
 * sequential read (fresh daemon, no disk cache, dropped kernel caches) of SIZE_MB of one kind of
 * data (`wasm/_test_util.ts`: zeros, repetitive, logs, json, prose, random; a 64 MiB sample
 * repeated), with the daemon's CPU seconds per GiB (utime+stime of all its threads, the codec
 * workers included).
 *
 * Usage (root): deno run -A bench/codec_mount.ts [KIND=logs] [SIZE_MB=1024]
 *
 * @module
 */

import { startSlayer } from "../tests/_mount.ts";
import { DATA_KINDS, type DataKind, dataOfKind } from "../wasm/_test_util.ts";

const kind = (Deno.args[0] ?? "logs") as DataKind;
const sizeMb = Number(Deno.args[1] ?? 1024);
if (!DATA_KINDS.includes(kind) || !Number.isInteger(sizeMb) || sizeMb <= 0) {
  console.error(`usage: deno run -A bench/codec_mount.ts [${DATA_KINDS.join("|")}] [SIZE_MB]`);
  Deno.exit(2);
}

/** user+system CPU seconds of a process. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function sh(cmd: string): Promise<void> {
  const out = await new Deno.Command("sh", { args: ["-c", cmd], stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd}: ${new TextDecoder().decode(out.stderr)}`);
}

await using fs = await startSlayer({ storage: "file" });
const file = `${fs.mnt}/stream`;
const seed = `${fs.dir}/seed64`;
await Deno.writeFile(seed, dataOfKind(kind, 64 << 20));
const gib = sizeMb / 1024;
const out: string[] = [];

async function measure(what: string, cmd: string): Promise<void> {
  const d0 = cpuSeconds(fs.pid), t0 = performance.now();
  await sh(cmd);
  const secs = (performance.now() - t0) / 1000;
  const cpu = (cpuSeconds(fs.pid) - d0) / gib;
  out.push(`${what}: ${(sizeMb / secs).toFixed(0)} MiB/s, daemon ${cpu.toFixed(2)} CPU-s/GiB`);
}

const reps = Math.ceil(sizeMb / 64);
await measure(
  "write",
  `for i in $(seq ${reps}); do cat ${seed}; done | head -c ${sizeMb}M | ` +
    `dd of=${file} bs=1M iflag=fullblock conv=fsync status=none`,
);
await fs.kill9();
await Deno.remove(`${Deno.env.get("SLAYERFS_HOME")}/cache`, { recursive: true }).catch(() => {});
await fs.restart();
await sh("sync; echo 3 > /proc/sys/vm/drop_caches");
await measure("cold read", `dd if=${file} of=/dev/null bs=1M status=none`);
const load = Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
console.log(`${kind} ${sizeMb} MiB, load ${load}: ${out.join("; ")}`);
