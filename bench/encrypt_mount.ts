/**
 * Encryption at rest through a mount: two volumes on local `file://` storage, one formatted with
 * `--encrypt-key`, each mounted in turn; a file of incompressible data is written (`fsync` at the
 * end) and, after a remount (a cold page cache and block cache), read back. Rounds alternate
 * between the volumes so that both see the same load; the best round of each counts. Prints one
 * table with the ratio encrypted / plain from this one run.
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

async function cli(args: string[], env: Record<string, string>): Promise<void> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO}/cli.ts`, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) {
    throw new Error(`cli ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
  }
}

const work = await Deno.makeTempDir({ prefix: "slayerfs-encbench-" });
const env = { SLAYERFS_HOME: `${work}/home` };
const key = `${work}/vol.key`;
await Deno.writeFile(key, crypto.getRandomValues(new Uint8Array(32)), { mode: 0o600 });
const volumes = {
  plain: { meta: `sqlite3://${work}/plain/meta.db`, args: [] as string[] },
  encrypted: { meta: `sqlite3://${work}/enc/meta.db`, args: ["--encrypt-key", key] },
};
const mnt = `${work}/mnt`;
await Deno.mkdir(mnt);
// 16 MiB of random bytes repeated: LZ4 finds no match within its 64 KiB window.
const chunk = new Uint8Array(16 << 20);
for (let o = 0; o < chunk.byteLength; o += 65536) {
  crypto.getRandomValues(chunk.subarray(o, o + 65536));
}
const best: Record<string, { write: number; read: number }> = {};
let mounted = false;

async function mount(v: { meta: string; args: string[] }): Promise<void> {
  await cli(["mount", ...v.args, "--log", `${work}/log`, v.meta, mnt], env);
  mounted = true;
}

async function umount(): Promise<void> {
  await cli(["umount", mnt], env);
  mounted = false;
}

try {
  for (const [name, v] of Object.entries(volumes)) {
    await cli(["format", ...v.args, v.meta, name], env);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, v] of Object.entries(volumes)) {
      await mount(v);
      const path = `${mnt}/data-${round}`;
      let t = performance.now();
      {
        using f = await Deno.open(path, { write: true, create: true, truncate: true });
        for (let i = 0; i < MIB / 16; i++) {
          for (let o = 0; o < chunk.byteLength;) o += await f.write(chunk.subarray(o));
        }
        await f.sync();
      }
      const write = MIB / ((performance.now() - t) / 1000);
      await umount();
      await mount(v);
      t = performance.now();
      {
        using f = await Deno.open(path, { read: true });
        const buf = new Uint8Array(1 << 20);
        while (await f.read(buf) !== null) { /* read it all */ }
      }
      const read = MIB / ((performance.now() - t) / 1000);
      await Deno.remove(path);
      await umount();
      const b = best[name] ??= { write: 0, read: 0 };
      b.write = Math.max(b.write, write);
      b.read = Math.max(b.read, read);
      console.error(
        `round ${round + 1} ${name}: write ${write.toFixed(0)} read ${read.toFixed(0)}`,
      );
    }
  }
  const load = (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  const p = best.plain!, e = best.encrypted!;
  console.log(`${MIB} MiB of incompressible data, file:// storage, best of ${ROUNDS} rounds`);
  console.log(`load average at the end: ${load}`);
  console.log("| MiB/s      | plain | encrypted | encrypted / plain |");
  console.log("| ---------- | ----- | --------- | ----------------- |");
  for (const k of ["write", "read"] as const) {
    console.log(
      `| ${k.padEnd(10)} | ${p[k].toFixed(0).padStart(5)} | ${e[k].toFixed(0).padStart(9)} | ${
        (e[k] / p[k]).toFixed(2).padStart(16)
      }x |`,
    );
  }
} finally {
  if (mounted) await cli(["umount", "--lazy", mnt], env).catch(() => {});
  await Deno.remove(work, { recursive: true }).catch(() => {});
}
