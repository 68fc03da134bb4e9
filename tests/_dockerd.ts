/**
 * A private dockerd for the container tests (Debian's docker.io): its data root where the test
 * says, its exec root, pid file and API socket in a private temp dir, no bridge and no
 * iptables, so it never meets another dockerd on the machine. Stopped by pid, with whatever
 * mounts it left under its folders.
 *
 * @module
 */

import { run } from "./_run.ts";
import { ensureApt } from "./_containers.ts";

/** A private dockerd. */
export interface Dockerd extends AsyncDisposable {
  /** Runs the docker CLI against it. */
  docker(...args: string[]): Promise<string>;
  /** Runs the docker CLI; returns the whole result. */
  tryDocker(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

async function processAlive(pid: number): Promise<boolean> {
  return await Deno.stat(`/proc/${pid}`).then(() => true, () => false);
}

/** Unmounts (lazily) every mount under `dir`, deepest first. */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await Deno.readTextFile("/proc/mounts")).split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run("umount", ["-l", m]);
}

/** Starts dockerd with its data root at `dataRoot` and its state in a private temp dir. */
export async function startDockerd(dataRoot: string): Promise<Dockerd> {
  await ensureApt({ dockerd: "docker.io", containerd: "containerd", runc: "runc" });
  const exec = await Deno.makeTempDir({ prefix: "slayerfs-dockerd-" });
  const sock = `${exec}/docker.sock`;
  const args = [
    "dockerd",
    "--data-root",
    dataRoot,
    "--exec-root",
    `${exec}/exec`,
    "--pidfile",
    `${exec}/docker.pid`,
    "-H",
    `unix://${sock}`,
    "--storage-driver",
    "overlay2",
    "--bridge",
    "none",
    "--iptables=false",
    "--ip6tables=false",
  ];
  const quoted = args.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ");
  const child = new Deno.Command("sh", {
    args: ["-c", `exec setsid ${quoted} >>'${exec}/dockerd.log' 2>&1`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const logText = () =>
    (() => {
      try {
        return Deno.readTextFileSync(`${exec}/dockerd.log`);
      } catch {
        return "";
      }
    })().split("\n").slice(-30).join("\n");
  const tryDocker = (...args: string[]) => run("docker", ["-H", `unix://${sock}`, ...args]);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    const deadline = Date.now() + 30_000;
    while (await processAlive(child.pid) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (await processAlive(child.pid)) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await child.status;
    // dockerd's containerd and shims, if any outlived it.
    await run("pkill", ["-KILL", "-f", exec]);
    await unmountUnder(dataRoot);
    await unmountUnder(exec);
    await Deno.remove(exec, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await tryDocker("version", "--format", "{{.Server.Version}}");
    if (r.code === 0) break;
    if (!await processAlive(child.pid) || Date.now() > deadline) {
      const text = logText();
      await stop();
      throw new Error(`dockerd did not start:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    async docker(...args: string[]) {
      const r = await tryDocker(...args);
      if (r.code !== 0) {
        throw new Error(`docker ${args.join(" ")} exited ${r.code}:\n${r.stderr}\n${logText()}`);
      }
      return r.stdout;
    },
    tryDocker,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
