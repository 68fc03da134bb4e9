/**
 * Helpers for the container tests: packages from apt, a busybox root filesystem, and runc
 * bundles. A test that cannot get its runtime fails (it never skips).
 *
 * @module
 */

import { run } from "./_run.ts";

/** Installs the Debian packages that provide `commands` (`command:package` pairs) if missing. */
export async function ensureApt(pairs: Record<string, string>): Promise<void> {
  const missing: string[] = [];
  for (const [command, pkg] of Object.entries(pairs)) {
    const r = await run("sh", ["-c", `command -v ${command}`]);
    if (r.code !== 0) missing.push(pkg);
  }
  if (missing.length === 0) return;
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  let r = await run("apt-get", ["install", "-y", "-qq", ...missing], { env });
  if (r.code !== 0) {
    await run("apt-get", ["update", "-qq"], { env });
    r = await run("apt-get", ["install", "-y", "-qq", ...missing], { env });
  }
  if (r.code !== 0) {
    throw new Error(`apt-get install ${missing.join(" ")} failed:\n${r.stderr}${r.stdout}`);
  }
}

/** Runs a command and throws with its output unless it exits 0; returns stdout. */
export async function must(cmd: string, args: string[], what = cmd): Promise<string> {
  const r = await run(cmd, args);
  if (r.code !== 0) {
    throw new Error(`${what} (${cmd} ${args.join(" ")}) exited ${r.code}:\n${r.stderr}${r.stdout}`);
  }
  return r.stdout;
}

/** Applets the busybox rootfs links in `/bin`. */
const APPLETS = [
  "sh",
  "cat",
  "echo",
  "ls",
  "id",
  "mkdir",
  "rm",
  "sleep",
  "touch",
  "wc",
  "sha256sum",
];

/**
 * Builds a minimal busybox root filesystem in `dir` (from Debian's busybox-static): `/bin` with
 * busybox and its applets, `/dev/null` and `/dev/zero` (character devices), `/etc/passwd`,
 * `/tmp` (1777) and `/proc`.
 */
export async function busyboxRootfs(dir: string): Promise<void> {
  await ensureApt({ busybox: "busybox-static" });
  const busybox = (await must("sh", ["-c", "command -v busybox"])).trim();
  for (const d of ["bin", "dev", "etc", "tmp", "proc", "sys", "root"]) {
    await Deno.mkdir(`${dir}/${d}`, { recursive: true });
  }
  await Deno.chmod(`${dir}/tmp`, 0o1777);
  await Deno.copyFile(busybox, `${dir}/bin/busybox`);
  await Deno.chmod(`${dir}/bin/busybox`, 0o755);
  for (const a of APPLETS) await Deno.symlink("busybox", `${dir}/bin/${a}`);
  await must("mknod", ["-m", "666", `${dir}/dev/null`, "c", "1", "3"]);
  await must("mknod", ["-m", "666", `${dir}/dev/zero`, "c", "1", "5"]);
  await Deno.writeTextFile(
    `${dir}/etc/passwd`,
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
  );
  await Deno.writeTextFile(`${dir}/etc/group`, "root:x:0:\nnogroup:x:65534:\n");
}

/**
 * Writes a runc bundle in `bundle` whose root is `rootfs` (a path relative to the bundle or
 * absolute) and whose process runs `args`, with no terminal and no network namespace change
 * beyond runc's defaults.
 */
export async function runcBundle(bundle: string, rootfs: string, args: string[]): Promise<void> {
  await ensureApt({ runc: "runc" });
  await Deno.mkdir(bundle, { recursive: true });
  await must("runc", ["spec", "--bundle", bundle], "runc spec");
  const path = `${bundle}/config.json`;
  const config = JSON.parse(await Deno.readTextFile(path));
  config.process.terminal = false;
  config.process.args = args;
  config.root = { path: rootfs, readonly: false };
  await Deno.writeTextFile(path, JSON.stringify(config, null, 2));
}
