/**
 * Encryption at rest through a mount: two volumes on local `file://` storage, one formatted with
 * `--encrypt-key`, mounted in turn (the encrypted one twice: sealing with libcrypto, the default,
 * and with WebCrypto, `SLAYERFS_CRYPTO=webcrypto`); a file of incompressible data is written (`fsync` at the
 * end) and, after a remount (a cold page cache and block cache), read back. Rounds alternate
 * between the configurations so that all see the same load; the best round of each counts. Prints
 * one table with the ratios encrypted / plain from this one run: throughput, and the daemon's CPU
 * seconds per GiB (from `/proc/PID/stat`), which a loaded machine disturbs much less.
 *
 * Usage: `deno run -A bench/encrypt_mount.ts [MiB] [rounds]` (defaults 256 and 2). Local storage
 * keeps the object store out of the way, so the table shows what sealing costs at most; on S3
 * the store is usually the slower part.
 *
 * @module
 */

const MIB = Number(Deno.args[0] ?? 256);
const ROUNDS = Number(Deno.args[1] ?? 2);
const REPO = new URL("../", import.meta.url).pathname;

async function cli(args: string[], env: Record<string, string>): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO}/cli.ts`, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) {
    throw new Error(`cli ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  }
  return new TextDecoder().decode(r.stdout);
}

/** CPU seconds (user + system) that process `pid` has used so far. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime: fields 14 and 15, in ticks
}

const work = await Deno.makeTempDir({ prefix: "slayerfs-encbench-" });
const env = { SLAYERFS_HOME: `${work}/home` };
const key = `${work}/vol.key`;
await Deno.writeFile(key, crypto.getRandomValues(new Uint8Array(32)), { mode: 0o600 });
type Config = { meta: string; args: string[]; env?: Record<string, string> };
const encMeta = `sqlite3://${work}/enc/meta.db`;
const configs: Record<string, Config> = {
  plain: { meta: `sqlite3://${work}/plain/meta.db`, args: [] },
  openssl: { meta: encMeta, args: ["--encrypt-key", key] },
  webcrypto: { meta: encMeta, args: ["--encrypt-key", key], env: { SLAYERFS_CRYPTO: "webcrypto" } },
};
const mnt = `${work}/mnt`;
await Deno.mkdir(mnt);
// 16 MiB of random bytes repeated: LZ4 finds no match within its 64 KiB window.
const chunk = new Uint8Array(16 << 20);
for (let o = 0; o < chunk.byteLength; o += 65536) {
  crypto.getRandomValues(chunk.subarray(o, o + 65536));
}
type Result = { write: number; read: number; writeCpu: number; readCpu: number };
const best: Record<string, Result> = {};
let mounted = false;

/** Mounts `v`; returns the daemon's pid. */
async function mount(v: Config): Promise<number> {
  const out = await cli(["mount", ...v.args, "--log", `${work}/log`, v.meta, mnt], {
    ...env,
    ...v.env,
  });
  mounted = true;
  return Number(/\(pid (\d+)/.exec(out)?.[1]);
}

async function umount(): Promise<void> {
  await cli(["umount", mnt], env);
  mounted = false;
}

try {
  await cli(["format", configs.plain!.meta, "plain"], env);
  await cli(["format", "--encrypt-key", key, encMeta, "enc"], env);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, v] of Object.entries(configs)) {
      let pid = await mount(v);
      const path = `${mnt}/data-${round}`;
      let cpu = cpuSeconds(pid);
      let t = performance.now();
      {
        using f = await Deno.open(path, { write: true, create: true, truncate: true });
        for (let i = 0; i < MIB / 16; i++) {
          for (let o = 0; o < chunk.byteLength;) o += await f.write(chunk.subarray(o));
        }
        await f.sync();
      }
      const write = MIB / ((performance.now() - t) / 1000);
      const writeCpu = (cpuSeconds(pid) - cpu) / (MIB / 1024);
      await umount();
      pid = await mount(v);
      cpu = cpuSeconds(pid);
      t = performance.now();
      {
        using f = await Deno.open(path, { read: true });
        const buf = new Uint8Array(1 << 20);
        while (await f.read(buf) !== null) { /* read it all */ }
      }
      const read = MIB / ((performance.now() - t) / 1000);
      const readCpu = (cpuSeconds(pid) - cpu) / (MIB / 1024);
      await Deno.remove(path);
      await umount();
      const b = best[name] ??= { write: 0, read: 0, writeCpu: Infinity, readCpu: Infinity };
      b.write = Math.max(b.write, write);
      b.read = Math.max(b.read, read);
      b.writeCpu = Math.min(b.writeCpu, writeCpu);
      b.readCpu = Math.min(b.readCpu, readCpu);
      console.error(
        `round ${round + 1} ${name}: write ${write.toFixed(0)} MiB/s (${
          writeCpu.toFixed(1)
        } CPU s/GiB), read ${read.toFixed(0)} MiB/s (${readCpu.toFixed(1)} CPU s/GiB)`,
      );
    }
  }
  const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  const p = best.plain!, o = best.openssl!, w = best.webcrypto!;
  console.log(`${MIB} MiB of incompressible data, file:// storage, best of ${ROUNDS} rounds`);
  console.log(`load average at the end: ${load}`);
  console.log("|                          | plain | encrypted, libcrypto | encrypted, WebCrypto |");
  console.log("| ------------------------ | ----- | -------------------- | -------------------- |");
  const cell = (v: number, base: number) =>
    `${v.toFixed(v < 10 ? 1 : 0)} (${(v / base).toFixed(2)}x)`;
  const rows = [
    ["write, MiB/s", "write"],
    ["read (cold), MiB/s", "read"],
    ["write, daemon CPU s/GiB", "writeCpu"],
    ["read, daemon CPU s/GiB", "readCpu"],
  ] as const;
  for (const [label, k] of rows) {
    console.log(
      `| ${label} | ${p[k].toFixed(p[k] < 10 ? 1 : 0)} | ${cell(o[k], p[k])} | ${
        cell(w[k], p[k])
      } |`,
    );
  }
} finally {
  if (mounted) await cli(["umount", "--lazy", mnt], env).catch(() => {});
  await Deno.remove(work, { recursive: true }).catch(() => {});
}
