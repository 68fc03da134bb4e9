/**
 * The suite runner behind `./dev test`: each test file runs in its own `deno test` process, a few
 * at a time, each under its own time limit, so one hung file fails alone (with the names of the
 * tests it was still running) instead of stalling the whole run. The files are type-checked
 * once first. Each file's output is printed whole when it ends; the run ends with Deno's summary
 * line over all files (`ok | N passed | M failed (T)` or `FAILED | ...`).
 *
 * Usage: `deno run -A tests/_suite.ts [DENO_TEST_FLAGS...] [FILES_OR_DIRS...]`
 * Environment: `SLAYERFS_TEST_JOBS` (files at once; default the number of CPUs, at least 2),
 * `SLAYERFS_TEST_FILE_TIMEOUT` (seconds per file; default 900).
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const SKIP_DIRS = new Set([".git", ".tools", ".deno", "node_modules", "_build"]);
// The slowest files start first so that they do not end the run alone (from CI timings).
const SLOW_FIRST = [
  "tests/posix_postgres_test.ts",
  "tests/posix_etcd_test.ts",
  "tests/posix_redis_test.ts",
  "tests/docker_test.ts",
  "tests/postgres_outage_test.ts",
  "tests/etcd_restart_test.ts",
];

interface FileResult {
  file: string;
  passed: number;
  failed: number;
  failures: string[];
  timedOut: boolean;
  seconds: number;
}

function isTestFile(name: string): boolean {
  return /(^|[._])test\.(ts|tsx|js|mjs)$/.test(name);
}

async function discover(path: string, out: string[]): Promise<void> {
  const info = await Deno.stat(path);
  if (info.isFile) {
    out.push(path);
    return;
  }
  for await (const e of Deno.readDir(path)) {
    if (e.isDirectory && !SKIP_DIRS.has(e.name)) await discover(`${path}/${e.name}`, out);
    else if (e.isFile && isTestFile(e.name)) out.push(`${path}/${e.name}`);
  }
}

function relative(path: string): string {
  return path.startsWith(ROOT + "/") ? path.slice(ROOT.length + 1) : path;
}

const dec = new TextDecoder();
const enc = new TextEncoder();
const children = new Set<number>();
const results: FileResult[] = [];

function killGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Top-level results in a file's output when Deno printed no summary (a killed run). */
function countLines(out: string): { passed: number; failures: string[] } {
  let passed = 0;
  const failures: string[] = [];
  for (const line of out.split("\n")) {
    if (/^\S.* \.\.\. ok \(/.test(line)) passed++;
    const f = /^(\S.*) \.\.\. FAILED/.exec(line);
    if (f) failures.push(f[1]!);
  }
  return { passed, failures };
}

async function runFile(
  file: string,
  flags: string[],
  timeoutSec: number,
  env: Record<string, string>,
): Promise<{ result: FileResult; output: string }> {
  const start = Date.now();
  // setsid: the file's processes get their own group, which a time-out kills whole.
  const child = new Deno.Command("setsid", {
    args: ["sh", "-c", 'exec "$@" 2>&1', "sh", Deno.execPath(), "test", ...flags, file],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  children.add(child.pid);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid, "SIGTERM");
    setTimeout(() => killGroup(child.pid, "SIGKILL"), 10_000);
  }, timeoutSec * 1000);
  const chunks: Uint8Array[] = [];
  for await (const c of child.stdout) chunks.push(c);
  const status = await child.status;
  clearTimeout(timer);
  children.delete(child.pid);
  killGroup(child.pid, "SIGKILL"); // anything the file left behind in its group
  let output = dec.decode(concat(chunks));
  const seconds = (Date.now() - start) / 1000;
  const summary = /^(ok|FAILED) \| (\d+) passed[^|]*\| (\d+) failed/m.exec(output);
  const lines = countLines(output);
  let passed: number, failed: number;
  const failures = lines.failures.map((n) => `${relative(file)} => ${n}`);
  if (summary && !timedOut) {
    passed = Number(summary[2]);
    failed = Number(summary[3]);
    // A result line can be split by a "has been running" notice: Deno's FAILURES list names them.
    if (failed > failures.length) {
      const list = output.slice(output.lastIndexOf(" FAILURES "));
      failures.length = 0;
      for (const m of list.matchAll(/^(\S.*) => \S+:\d+:\d+$/gm)) {
        failures.push(`${relative(file)} => ${m[1]}`);
      }
      if (failures.length === 0) failures.push(`${relative(file)} => ${failed} failed (see above)`);
    }
    if (status.code !== 0 && failed === 0) {
      failed = 1;
      failures.push(`${relative(file)} => exited with code ${status.code}`);
    }
  } else {
    passed = lines.passed;
    failed = lines.failures.length + 1;
    const running = [
      ...new Set(
        [
          ...[...output.matchAll(/^'(.*)' has been running for over/gm)].map((m) => m[1]!),
          ...[...output.matchAll(/^(\S.*) \.\.\. ?$/gm)].map((m) => m[1]!),
        ],
      ),
    ].filter((n) => !new RegExp(`^${escape(n)} \\.\\.\\. (ok|FAILED)`, "m").test(output));
    const why = timedOut
      ? `did not finish within ${timeoutSec}s` +
        (running.length ? `; still running: ${running.join("; ")}` : "")
      : `ended without a summary (exit code ${status.code})`;
    failures.push(`${relative(file)} => ${why}`);
    output += `\nsuite: ${relative(file)} ${why}\n`;
  }
  return {
    result: { file, passed, failed, failures, timedOut, seconds },
    output,
  };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function write(s: string): void {
  let b = enc.encode(s);
  while (b.length > 0) b = b.subarray(Deno.stdout.writeSync(b));
}

async function main(args: string[]): Promise<number> {
  const flags: string[] = [];
  const paths: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("-")) paths.push(a);
    else if (a === "--filter" && i + 1 < args.length) flags.push(`--filter=${args[++i]}`);
    else flags.push(a);
  }
  const files: string[] = [];
  for (const p of paths.length ? paths : [ROOT]) {
    await discover(p.startsWith("/") ? p : `${Deno.cwd()}/${p}`, files);
  }
  const rank = (f: string) => {
    const i = SLOW_FIRST.indexOf(relative(f));
    return i < 0 ? SLOW_FIRST.length : i;
  };
  files.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const jobs = Math.max(
    1,
    Number(Deno.env.get("SLAYERFS_TEST_JOBS") ?? Math.max(2, navigator.hardwareConcurrency)),
  );
  const timeoutSec = Number(Deno.env.get("SLAYERFS_TEST_FILE_TIMEOUT") ?? 900);
  const start = Date.now();

  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(sig, () => {
      for (const pid of children) killGroup(pid, "SIGKILL");
      const unfinished = files.length - results.length;
      write(`\nsuite: stopped by ${sig}; ${unfinished} file(s) did not finish\n`);
      summarize(start, unfinished);
      Deno.exit(130);
    });
  }

  // One type check of every file, then each file runs without checking again.
  const check = await new Deno.Command(Deno.execPath(), {
    args: ["check", ...files],
    cwd: ROOT,
    stdin: "null",
  }).output();
  if (check.code !== 0) {
    write(dec.decode(check.stdout) + dec.decode(check.stderr));
    write("FAILED | 0 passed | 1 failed (type check)\n");
    return 1;
  }

  const env = { ...Deno.env.toObject(), NO_COLOR: "1" };
  const testFlags = ["-A", "--no-check", ...flags.filter((f) => f !== "-A" && f !== "--parallel")];
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++]!;
      const { result, output } = await runFile(file, testFlags, timeoutSec, env);
      results.push(result);
      write(
        `\n=== ${relative(file)}: ${result.passed} passed, ${result.failed} failed ` +
          `(${result.seconds.toFixed(0)}s; ${results.length}/${files.length} files)\n` + output,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));

  return summarize(start, 0);
}

/** Prints the slowest files, the failures and Deno's summary line; returns the exit code. */
function summarize(start: number, unfinished: number): number {
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0) + unfinished;
  const slowest = [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 8);
  write(
    `\nslowest files: ${
      slowest.map((r) => `${relative(r.file)} ${r.seconds.toFixed(0)}s`).join(", ")
    }\n`,
  );
  const failures = results.flatMap((r) => r.failures);
  if (failures.length) write(`\nfailures:\n${failures.map((f) => `  ${f}\n`).join("")}`);
  const secs = Math.round((Date.now() - start) / 1000);
  write(`\n${failed ? "FAILED" : "ok"} | ${passed} passed | ${failed} failed (${secs}s)\n`);
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
