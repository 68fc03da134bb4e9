/**
 * Encryption at rest through a mount: two volumes on local `file://` storage, one formatted with
 * `--encrypt-key`, mounted in turn (the encrypted one twice: sealing with libcrypto, the default,
 * and with WebCrypto, `SLAYERFS_CRYPTO=webcrypto`); a file of incompressible data is written (`fsync` at the
 * end) and, after a remount (a cold page cache and block cache), read back. Rounds alternate
 * between the configurations so that all see the same load; the best round of each counts. Prints
 * one table with the ratios encrypted / plain from this one run.
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
const best: Record<string, { write: number; read: number }> = {};
let mounted = false;

async function mount(v: Config): Promise<void> {
  await cli(["mount", ...v.args, "--log", `${work}/log`, v.meta, mnt], { ...env, ...v.env });
  mounted = true;
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
  const p = best.plain!, o = best.openssl!, w = best.webcrypto!;
  console.log(`${MIB} MiB of incompressible data, file:// storage, best of ${ROUNDS} rounds`);
  console.log(`load average at the end: ${load}`);
  console.log("| MiB/s | plain | encrypted, libcrypto | encrypted, WebCrypto |");
  console.log("| ----- | ----- | -------------------- | -------------------- |");
  const cell = (v: number, base: number) => `${v.toFixed(0)} (${(v / base).toFixed(2)}x)`;
  for (const k of ["write", "read"] as const) {
    console.log(
      `| ${k} | ${p[k].toFixed(0)} | ${cell(o[k], p[k])} | ${cell(w[k], p[k])} |`,
    );
  }
} finally {
  if (mounted) await cli(["umount", "--lazy", mnt], env).catch(() => {});
  await Deno.remove(work, { recursive: true }).catch(() => {});
}
