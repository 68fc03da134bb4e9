/**
 * Helpers of the tenant tests (quota, subdir, read-only): the quota CLI as JSON, the usage of a
 * tree by a walk through a mount, and a syscall prober that reports errno names.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runCli } from "./_mount.ts";

/** What `quota get --json` prints. */
export interface QuotaJson {
  path: string;
  capacity: number | null;
  inodes: number | null;
  usedSpace: number;
  usedInodes: number;
}

/** `slayerfs quota get --json META --path PATH`. */
export async function quotaGet(meta: string, path: string): Promise<QuotaJson> {
  const r = await runCli(["quota", "get", meta, "--path", path, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as QuotaJson;
}

/** `slayerfs quota set META --path PATH ARGS...`, which must succeed. */
export async function quotaSet(meta: string, path: string, ...args: string[]): Promise<void> {
  const r = await runCli(["quota", "set", meta, "--path", path, ...args]);
  assert.equal(r.code, 0, r.stderr);
}

/**
 * The usage of the tree below `dir` by a walk (lstat of every entry): regular files' lengths in
 * whole 4 KiB units, and the inodes (each counted once).
 */
export async function walkUsage(dir: string): Promise<{ space: number; inodes: number }> {
  const seen = new Set<number>();
  let space = 0;
  const walk = async (d: string): Promise<void> => {
    for await (const e of Deno.readDir(d)) {
      const st = await Deno.lstat(`${d}/${e.name}`);
      if (seen.has(st.ino!)) continue;
      seen.add(st.ino!);
      if (st.isFile) space += Math.ceil(st.size / 4096) * 4096;
      if (st.isDirectory) await walk(`${d}/${e.name}`);
    }
  };
  await walk(dir);
  return { space, inodes: seen.size };
}

/**
 * Runs a Python script of syscalls in a child process (a call on the mount never blocks this
 * one); each `op(name, fn)` prints `name OK` or `name ERRNO`. Returns the results by name.
 */
export async function probe(script: string, timeoutMs = 60_000): Promise<Map<string, string>> {
  const prelude = `import os, errno, sys
def op(name, fn):
    try:
        fn()
        print(name, "OK", flush=True)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, str(e.errno)), flush=True)
`;
  const out = await new Deno.Command("python3", {
    args: ["-c", prelude + script],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, `python failed: ${new TextDecoder().decode(out.stderr)}\n${text}`);
  return new Map(
    text.trim().split("\n").filter(Boolean).map((l) => {
      const [name, result] = l.split(" ") as [string, string];
      return [name, result];
    }),
  );
}

/** Runs `sh -c script`, with a timeout; returns its exit code and output. */
export async function sh(
  script: string,
  timeoutMs = 120_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command("sh", {
    args: ["-c", script],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
