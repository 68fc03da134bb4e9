/**
 * `slayerfs doctor MOUNTPOINT [-o OUT.tar.gz]`: everything a bug report about a mount needs, in
 * one archive. It collects the versions, the daemon's command line and effective settings, its
 * `status --json`, the last lines of its log, the system (kernel, libfuse, the volume's mounts on
 * this host, memory and load), a metrics scrape when the mount serves metrics, and a CPU profile
 * of the running daemon (`--profile-seconds`, see `_profiler.ts`). Credentials are masked in every
 * file with the log's own {@linkcode Redactor}: URL passwords, secret query parameters, and the
 * values of the daemon's (and this process's) secret environment variables wherever they appear.
 * A part that cannot be collected is named in `manifest.json` with the reason; the others are
 * still written.
 *
 * @module
 */

import { resolve } from "node:path";
import { Redactor } from "../core/_log_output.ts";
import { CliError, describe } from "./_errors.ts";
import { humanBytes } from "./_human.ts";
import { liveMountOf } from "./_mount_of.ts";
import { PROFILE_SIGNAL, profileOutputFile, profileRequestFile } from "./_profiler.ts";
import type { ParsedArgs } from "./_spec.ts";
import type { MountState } from "./_state.ts";
import { mountStatus } from "./status.ts";
import { libfuseVersion, VERSION } from "./version.ts";

/** The environment variables worth showing (their secret values masked). */
const SHOWN_ENV = /^(SLAYERFS_|AWS_|OTEL_|DENO_|TMPDIR$|HOME$|PATH$)/;
/** The most of the log file read (its end). */
const LOG_TAIL_BYTES = 8 * 2 ** 20;

function readProc(pid: number, what: string): string {
  return Deno.readTextFileSync(`/proc/${pid}/${what}`);
}

/** The daemon's environment, from `/proc/PID/environ`. */
function environOf(pid: number): Record<string, string> {
  try {
    const env: Record<string, string> = {};
    for (const kv of readProc(pid, "environ").split("\0")) {
      const at = kv.indexOf("=");
      if (at > 0) env[kv.slice(0, at)] = kv.slice(at + 1);
    }
    return env;
  } catch {
    return {};
  }
}

/** The passwords of the URLs in `texts` (raw and decoded), to mask wherever they appear. */
function urlPasswords(texts: string[]): string[] {
  const out: string[] = [];
  for (const t of texts) {
    for (const m of t.matchAll(/\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@"']*:([^\s@/"']+)@/gi)) {
      out.push(m[1]!);
      try {
        out.push(decodeURIComponent(m[1]!));
      } catch { /* not encoded */ }
    }
  }
  return out;
}

/** The last `n` lines of the file `path` (at most its last {@linkcode LOG_TAIL_BYTES}). */
async function tail(path: string, n: number): Promise<string> {
  using f = await Deno.open(path, { read: true });
  const size = (await f.stat()).size;
  const start = Math.max(0, size - LOG_TAIL_BYTES);
  await f.seek(start, Deno.SeekMode.Start);
  const buf = new Uint8Array(size - start);
  for (let off = 0; off < buf.byteLength;) {
    const got = await f.read(buf.subarray(off));
    if (got === null) break;
    off += got;
  }
  const lines = new TextDecoder().decode(buf).split("\n");
  if (lines.at(-1) === "") lines.pop();
  return `# ${path}, last ${Math.min(n, lines.length)} lines\n${lines.slice(-n).join("\n")}\n`;
}

/** The daemon's log file: where its standard error goes, else the `--log` of its settings. */
function logFileOf(state: MountState): string {
  try {
    const target = Deno.readLinkSync(`/proc/${state.pid}/fd/2`);
    if (target.startsWith("/") && Deno.statSync(target).isFile) return target;
  } catch { /* not ours to read, or gone */ }
  const log = state.config?.log;
  if (typeof log === "string") return log;
  throw new Error("the daemon's standard error is no file and its settings name no log file");
}

async function command(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return (dec.decode(out.stdout) + dec.decode(out.stderr)).trimEnd();
  } catch (err) {
    return `(${cmd}: ${describe(err)})`;
  }
}

async function systemText(state: MountState): Promise<string> {
  const read = (p: string) => {
    try {
      return Deno.readTextFileSync(p).trimEnd();
    } catch (err) {
      return `(${describe(err)})`;
    }
  };
  const status = read(`/proc/${state.pid}/status`).split("\n")
    .filter((l) => /^(State|Threads|VmRSS|VmHWM|VmSize|voluntary|nonvoluntary)/.test(l));
  return [
    `hostname: ${Deno.hostname()}`,
    `kernel: ${read("/proc/version")}`,
    `uname: ${await command("uname", ["-a"])}`,
    `os: ${read("/etc/os-release").match(/^PRETTY_NAME="?([^"\n]*)/m)?.[1] ?? "?"}`,
    `libfuse: ${libfuseVersion() ?? "not found"}`,
    `fusermount3: ${await command("fusermount3", ["--version"])}`,
    `cpus: ${navigator.hardwareConcurrency}`,
    `loadavg: ${read("/proc/loadavg")}`,
    `uptime (s): ${read("/proc/uptime").split(" ")[0]}`,
    "",
    "# /proc/meminfo (head)",
    ...read("/proc/meminfo").split("\n").slice(0, 6),
    "",
    `# the daemon (pid ${state.pid}): /proc/${state.pid}/status`,
    ...status,
    `open file descriptors: ${[...Deno.readDirSync(`/proc/${state.pid}/fd`)].length}`,
  ].join("\n") + "\n";
}

/** The lines of `/proc/self/mountinfo` that mount this volume (or any SlayerFS volume). */
function mountsText(state: MountState): string {
  const lines = Deno.readTextFileSync("/proc/self/mountinfo").split("\n")
    .filter((l) => / - fuse\.slayerfs /.test(l));
  const mine = lines.filter((l) => l.includes(` slayerfs:${state.volume} `));
  return [
    `# mounts of volume "${state.volume}" on this host (/proc/self/mountinfo)`,
    ...mine,
    "",
    "# every SlayerFS mount on this host",
    ...lines,
  ].join("\n") + "\n";
}

/** Asks the daemon for a CPU profile of `seconds`; the `.cpuprofile` text. */
async function requestProfile(mnt: string, state: MountState, seconds: number): Promise<string> {
  if (state.profiler !== PROFILE_SIGNAL) {
    throw new Error(
      "the daemon answers no profile requests (an older version): mount it again to profile it",
    );
  }
  const out = profileOutputFile(mnt);
  await Deno.remove(out).catch(() => {});
  await Deno.writeTextFile(profileRequestFile(mnt), JSON.stringify({ seconds }), { mode: 0o600 });
  Deno.kill(state.pid, PROFILE_SIGNAL);
  const deadline = Date.now() + seconds * 1000 + 30_000;
  for (;;) {
    try {
      const text = await Deno.readTextFile(out);
      await Deno.remove(out).catch(() => {});
      const profile = JSON.parse(text);
      if (typeof profile.error === "string") throw new Error(profile.error);
      if (!Array.isArray(profile.nodes) || !Array.isArray(profile.samples)) {
        throw new Error("the daemon wrote no profile (no nodes and samples)");
      }
      return text;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (Date.now() > deadline) {
      await Deno.remove(profileRequestFile(mnt)).catch(() => {});
      throw new Error(`the daemon wrote no profile within ${seconds + 30} s`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs `slayerfs doctor` with its checked arguments. */
export async function cmdDoctor(args: ParsedArgs): Promise<void> {
  const { mountpoint, state } = await liveMountOf(args.positionals[0]!);
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "");
  const name = `slayerfs-doctor-${state.volume}-${stamp}`;
  const output = resolve(args.string("output") ?? `${name}.tar.gz`);
  const seconds = args.number("profile-seconds");
  const logLines = args.number("log-lines");
  const quiet = args.flag("quiet");
  const daemonEnv = environOf(state.pid);
  const cmdline = (() => {
    try {
      return readProc(state.pid, "cmdline").split("\0").filter((a) => a !== "");
    } catch {
      return [];
    }
  })();
  const redactor = new Redactor(
    urlPasswords([state.meta, state.storage, ...cmdline, ...Object.values(daemonEnv)]),
    { ...Deno.env.toObject(), ...daemonEnv },
  );
  const work = await Deno.makeTempDir({ prefix: "slayerfs-doctor-" });
  const dir = `${work}/${name}`;
  await Deno.mkdir(dir, { mode: 0o700 });
  const manifest: Record<string, string> = {};
  const put = async (file: string, collect: () => Promise<string> | string) => {
    try {
      const text = redactor.redact(await collect());
      await Deno.writeTextFile(`${dir}/${file}`, text, { mode: 0o600 });
      manifest[file] = `ok, ${humanBytes(new TextEncoder().encode(text).byteLength)}`;
    } catch (err) {
      manifest[file] = `not collected: ${describe(err)}`;
    }
  };
  try {
    // The profile takes its seconds: the rest is collected meanwhile.
    if (!quiet && seconds > 0) console.error(`Profiling the daemon's CPU for ${seconds} s ...`);
    const profile = seconds > 0
      ? requestProfile(mountpoint, state, seconds).then((t) => ({ t }), (e) => ({ e }))
      : undefined;
    await put(
      "version.txt",
      () =>
        `slayerfs ${VERSION}\ndeno ${Deno.version.deno} (v8 ${Deno.version.v8}, typescript ` +
        `${Deno.version.typescript})\nlibfuse ${libfuseVersion() ?? "not found"}\n`,
    );
    await put("cmdline.txt", () => {
      if (!cmdline.length) throw new Error(`cannot read /proc/${state.pid}/cmdline`);
      return cmdline.join("\n") + "\n";
    });
    await put("config.json", () =>
      JSON.stringify(
        {
          mountpoint,
          volume: state.volume,
          meta: state.meta,
          storage: state.storage,
          pid: state.pid,
          started: state.started,
          settings: state.config ?? "(not recorded by this daemon's version)",
          environment: Object.fromEntries(
            Object.entries(daemonEnv).filter(([k]) => SHOWN_ENV.test(k)).sort(),
          ),
        },
        null,
        2,
      ) + "\n");
    await put("status.json", async () => JSON.stringify((await mountStatus(state)).out, null, 2));
    await put("daemon.log", () => tail(logFileOf(state), logLines));
    await put("system.txt", () => systemText(state));
    await put("mounts.txt", () => mountsText(state));
    if (state.metrics !== undefined) {
      await put("metrics.txt", async () => {
        const res = await fetch(`http://${state.metrics}/metrics`, {
          signal: AbortSignal.timeout(10_000),
        });
        const text = await res.text();
        if (!res.ok) throw new Error(`http://${state.metrics}/metrics answered ${res.status}`);
        return text;
      });
    } else manifest["metrics.txt"] = "not collected: the mount serves no metrics (--no-metrics)";
    if (profile !== undefined) {
      const got = await profile;
      await put("cpu.cpuprofile", () => {
        if ("e" in got) throw got.e;
        return got.t;
      });
    } else manifest["cpu.cpuprofile"] = "not collected: --profile-seconds 0";
    await put(
      "manifest.json",
      () => JSON.stringify({ created: new Date(), parts: manifest }, null, 2),
    );
    const tar = await new Deno.Command("tar", {
      args: ["-czf", output, "-C", work, name],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!tar.success) {
      throw new CliError(
        `Cannot write "${output}": tar: ${new TextDecoder().decode(tar.stderr).trim()}`,
      );
    }
    await Deno.chmod(output, 0o600);
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  const missing = Object.entries(manifest).filter(([, v]) => v.startsWith("not collected"));
  console.log(`Wrote ${output} (${Object.keys(manifest).length - missing.length} parts)`);
  for (const [file, why] of missing) console.log(`  ${file}: ${why}`);
}
