/**
 * Shared helpers of the POSIX suite's case files: errno assertions, deterministic data, byte
 * comparisons, and running a shell command as the unprivileged user.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "../_libc.ts";
import { run, type RunResult } from "../_run.ts";

/** The body of a suite case: works inside the fresh subdirectory `dir` it is given. */
export type CaseBody = (dir: string) => Promise<void> | void;

/** Case bodies by name, in suite order. */
export type CaseBodies = Record<string, CaseBody>;

/** The uid (and gid) used for the non-root cases. */
export const NOBODY = 65534;

/** One mebibyte. */
export const MiB = 1024 * 1024;
/** SlayerFS's default block size: writes across its multiples cross blocks. */
export const BLOCK = 4 * MiB;
/** A shared UTF-8 encoder. */
export const enc: TextEncoder = new TextEncoder();
/** A shared UTF-8 decoder. */
export const dec: TextDecoder = new TextDecoder();

/** Asserts that `fn` throws an error whose `.code` is `code` (e.g. `"ENOENT"`). */
export function throwsErrno(fn: () => unknown, code: string, what = ""): void {
  try {
    fn();
  } catch (e) {
    return assertCode(e, code, what);
  }
  assert.fail(`${label(what)}expected ${code}, but the call succeeded`);
}

/** Asserts that the promise rejects with an error whose `.code` is `code`. */
export async function rejectsErrno(p: Promise<unknown>, code: string, what = ""): Promise<void> {
  try {
    await p;
  } catch (e) {
    return assertCode(e, code, what);
  }
  assert.fail(`${label(what)}expected ${code}, but the call succeeded`);
}

function label(what: string): string {
  return what ? `${what}: ` : "";
}

function assertCode(e: unknown, code: string, what: string): void {
  const got = (e as { code?: string }).code;
  assert.equal(got, code, `${label(what)}expected ${code}, got ${String(e)}`);
}

/** Deterministic pseudo-random bytes (xorshift32), fast enough for hundreds of MiB. */
export function pseudoRandom(length: number, seed: number): Uint8Array<ArrayBuffer> {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = (seed | 0) || 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  return new Uint8Array(words.buffer, 0, length);
}

/** SHA-256 of `data` as hex. */
export async function sha256(data: Uint8Array<ArrayBuffer>): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(h, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Asserts that `a` and `b` hold the same bytes, naming the first difference. */
export function bytesEqual(a: Uint8Array, b: Uint8Array, what: string): void {
  assert.equal(a.byteLength, b.byteLength, `${what}: length`);
  for (let i = 0; i < a.byteLength; i++) {
    if (a[i] !== b[i]) {
      assert.fail(`${what}: first difference at byte ${i}: got ${a[i]}, expected ${b[i]}`);
    }
  }
}

/** Whether every byte of `a` is zero. */
export function isZero(a: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/** Runs `sh -c script` as uid/gid {@link NOBODY} with no supplementary groups. */
export function runAsNobody(script: string, ...args: string[]): Promise<RunResult> {
  return run("setpriv", [
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    "--clear-groups",
    "--",
    "sh",
    "-c",
    script,
    "sh",
    ...args,
  ]);
}

/** Resolves after `ms` milliseconds. */
export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** The permission bits (with setuid, setgid and sticky) of `path`, not following a symlink. */
export function modeBits(path: string): number {
  return L.lstat(path).mode & 0o7777;
}

/** The sorted names in `dir`. */
export async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}
