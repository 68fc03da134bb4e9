/**
 * A reusable POSIX conformance suite: named cases that run against any directory.
 *
 * Each case creates a fresh subdirectory of the directory it is given, works only inside it,
 * asserts with `node:assert/strict` (expecting the real Linux errno where an error is expected),
 * and removes its subdirectory when it passes. tmpfs is the reference: every case passes there
 * (see `posix_tmpfs_test.ts`); the same cases run on a SlayerFS mount in `posix_mount_test.ts`.
 *
 * Requirements on the caller: run as root; the directory and all its parents must be searchable
 * by uid 65534 (the non-root cases run shell commands as that user); a FUSE filesystem under test
 * must be served by another process and mounted with `allow_other` and `default_permissions`.
 *
 * @example
 * ```ts ignore
 * import { posixCases } from "./suite.ts";
 * for (const [name, run] of Object.entries(posixCases)) await run("/mnt/test");
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "../_libc.ts";

/** A suite case: works inside a fresh subdirectory of `dir`. */
export type PosixCase = (dir: string) => Promise<void>;

/** The uid (and gid) used for the non-root cases. */
export const NOBODY = 65534;

const MiB = 1024 * 1024;
const BLOCK = 4 * MiB;
const enc = new TextEncoder();
const dec = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// Helpers

/** Asserts that `fn` throws an error whose `.code` is `code` (e.g. `"ENOENT"`). */
export function throwsErrno(fn: () => unknown, code: string, what = ""): void {
  try {
    fn();
  } catch (e) {
    const got = (e as { code?: string }).code;
    assert.equal(got, code, `${what ? what + ": " : ""}expected ${code}, got ${String(e)}`);
    return;
  }
  assert.fail(`${what ? what + ": " : ""}expected ${code}, but the call succeeded`);
}

/** Asserts that the promise rejects with an error whose `.code` is `code`. */
export async function rejectsErrno(p: Promise<unknown>, code: string, what = ""): Promise<void> {
  try {
    await p;
  } catch (e) {
    const got = (e as { code?: string }).code;
    assert.equal(got, code, `${what ? what + ": " : ""}expected ${code}, got ${String(e)}`);
    return;
  }
  assert.fail(`${what ? what + ": " : ""}expected ${code}, but the call succeeded`);
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

function bytesEqual(a: Uint8Array, b: Uint8Array, what: string): void {
  assert.equal(a.byteLength, b.byteLength, `${what}: length`);
  for (let i = 0; i < a.byteLength; i++) {
    if (a[i] !== b[i]) {
      assert.fail(`${what}: first difference at byte ${i}: got ${a[i]}, expected ${b[i]}`);
    }
  }
}

function isZero(a: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== 0) return false;
  return true;
}

/** The result of a command run as another user. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `sh -c script` as uid/gid {@link NOBODY} with no supplementary groups. */
export async function runAsNobody(script: string, ...args: string[]): Promise<RunResult> {
  const out = await new Deno.Command("setpriv", {
    args: [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      "--clear-groups",
      "--",
      "sh",
      "-c",
      script,
      "sh",
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

function modeBits(path: string): number {
  return L.lstat(path).mode & 0o7777;
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** A waiter for one line of a child's stdout. */
function lineReader(stream: ReadableStream<Uint8Array>): () => Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return async () => {
    while (!buf.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) {
        const rest = buf;
        buf = "";
        return rest;
      }
      buf += value;
    }
    const i = buf.indexOf("\n");
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    return line;
  };
}

/** A child process holding an fcntl lock (see `_lock_holder.ts`). */
async function holdLock(
  path: string,
  type: "r" | "w",
  start: number,
  len: number,
): Promise<{ pid: number; release(): Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./_lock_holder.ts", import.meta.url).pathname,
      path,
      type,
      String(start),
      String(len),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const line = await lineReader(child.stdout)();
  if (!line.startsWith("locked ")) {
    await child.stdin.close().catch(() => {});
    await child.status;
    throw new Error(`Lock holder failed: "${line}"`);
  }
  return {
    pid: child.pid,
    async release() {
      await child.stdin.close().catch(() => {});
      await child.status;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Cases

const cases: Record<string, (dir: string) => Promise<void> | void> = {};

/** Files: create, read, write and sizes. */
cases.create_read_write = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, enc.encode("hello world"));
  assert.equal(dec.decode(await Deno.readFile(f)), "hello world");
  assert.equal((await Deno.stat(f)).size, 11);
  assert.ok((await Deno.stat(f)).isFile);
  const fd = L.open(f, L.O.RDWR);
  try {
    L.pwriteFull(fd, enc.encode("WORLD"), 6);
    assert.equal(dec.decode(L.preadFull(fd, 100, 0)), "hello WORLD");
    assert.equal(L.preadFull(fd, 10, 11).length, 0, "read at EOF returns 0 bytes");
  } finally {
    L.close(fd);
  }
  const empty = `${d}/empty`;
  L.close(L.open(empty, L.O.WRONLY | L.O.CREAT, 0o600));
  assert.equal(L.lstat(empty).size, 0);
  assert.equal(modeBits(empty), 0o600);
  throwsErrno(() => L.open(`${d}/missing`, L.O.RDONLY), "ENOENT");
  throwsErrno(() => L.open(d, L.O.WRONLY), "EISDIR", "open a directory for writing");
  throwsErrno(() => L.open(f, L.O.RDONLY | L.O.DIRECTORY), "ENOTDIR");
  throwsErrno(() => L.open(`${f}/x`, L.O.RDONLY), "ENOTDIR", "a file as a path component");
  throwsErrno(() => L.open(`${d}/${"n".repeat(256)}`, L.O.CREAT | L.O.WRONLY), "ENAMETOOLONG");
  const longName = `${d}/${"n".repeat(255)}`;
  await Deno.writeFile(longName, enc.encode("x"));
  assert.equal(dec.decode(await Deno.readFile(longName)), "x");
};

/** O_APPEND writes always go to the end of the file. */
cases.append = async (d) => {
  const f = `${d}/log`;
  await Deno.writeFile(f, enc.encode("one\n"));
  const fd = L.open(f, L.O.WRONLY | L.O.APPEND);
  try {
    L.write(fd, enc.encode("two\n"));
    // pwrite on an O_APPEND fd appends on Linux, ignoring the offset.
    L.pwrite(fd, enc.encode("three\n"), 0);
  } finally {
    L.close(fd);
  }
  await Deno.writeFile(f, enc.encode("four\n"), { append: true });
  assert.equal(dec.decode(await Deno.readFile(f)), "one\ntwo\nthree\nfour\n");
};

/** O_CREAT|O_EXCL fails with EEXIST on an existing name, including a dangling symlink. */
cases.o_excl = (d) => {
  const f = `${d}/f`;
  L.close(L.open(f, L.O.WRONLY | L.O.CREAT | L.O.EXCL));
  throwsErrno(() => L.open(f, L.O.WRONLY | L.O.CREAT | L.O.EXCL), "EEXIST");
  L.mkdir(`${d}/dir`);
  throwsErrno(() => L.open(`${d}/dir`, L.O.WRONLY | L.O.CREAT | L.O.EXCL), "EEXIST");
  L.symlink("nowhere", `${d}/dangling`);
  throwsErrno(() => L.open(`${d}/dangling`, L.O.WRONLY | L.O.CREAT | L.O.EXCL), "EEXIST");
};

/** O_TRUNC empties an existing file. */
cases.o_trunc = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, pseudoRandom(3 * MiB, 1));
  const fd = L.open(f, L.O.RDWR | L.O.TRUNC);
  try {
    assert.equal(L.fstat(fd).size, 0);
    L.pwriteFull(fd, enc.encode("new"), 0);
  } finally {
    L.close(fd);
  }
  assert.equal(dec.decode(await Deno.readFile(f)), "new");
};

/** Sparse files: a write at 10 MiB leaves a hole that reads as zeros. */
cases.sparse_file = async (d) => {
  const f = `${d}/sparse`;
  const fd = L.open(f, L.O.RDWR | L.O.CREAT);
  const tail = pseudoRandom(4096, 2);
  try {
    L.pwriteFull(fd, tail, 10 * MiB);
    assert.equal(L.fstat(fd).size, 10 * MiB + 4096);
    assert.ok(isZero(L.preadFull(fd, MiB, 0)), "hole start reads zeros");
    assert.ok(isZero(L.preadFull(fd, MiB, 5 * MiB - 100)), "hole middle reads zeros");
    const last = L.preadFull(fd, 8192, 10 * MiB - 4096);
    assert.ok(isZero(last.subarray(0, 4096)), "hole end reads zeros");
    bytesEqual(last.subarray(4096), tail, "data after the hole");
  } finally {
    L.close(fd);
  }
  const all = await Deno.readFile(f);
  assert.equal(all.length, 10 * MiB + 4096);
  assert.ok(isZero(all.subarray(0, 10 * MiB)));
};

/** Overwriting the middle of a file changes only that range. */
cases.overwrite_middle = async (d) => {
  const f = `${d}/f`;
  const data = pseudoRandom(6 * MiB, 3);
  await Deno.writeFile(f, data);
  const patch = pseudoRandom(300_000, 4);
  const off = BLOCK - 150_000;
  const fd = L.open(f, L.O.RDWR);
  try {
    L.pwriteFull(fd, patch, off);
  } finally {
    L.close(fd);
  }
  data.set(patch, off);
  bytesEqual(await Deno.readFile(f), data, "file after the overwrite");
  assert.equal(L.lstat(f).size, 6 * MiB);
};

/** Truncate shrinks and extends; the extended range reads as zeros even after a shrink. */
cases.truncate = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, new Uint8Array(100).fill(0x61));
  L.truncate(f, 10);
  assert.equal(L.lstat(f).size, 10);
  L.truncate(f, 50);
  const small = await Deno.readFile(f);
  assert.equal(small.length, 50);
  assert.ok(small.subarray(0, 10).every((b) => b === 0x61));
  assert.ok(isZero(small.subarray(10)), "extended range is zero-filled");

  const big = `${d}/big`;
  await Deno.writeFile(big, pseudoRandom(5 * MiB, 5));
  const cut = BLOCK + 7;
  L.truncate(big, cut);
  L.truncate(big, 9 * MiB);
  const fd = L.open(big, L.O.RDWR);
  try {
    assert.equal(L.fstat(fd).size, 9 * MiB);
    const around = L.preadFull(fd, 2 * MiB, BLOCK - MiB);
    bytesEqual(
      around.subarray(0, MiB + 7),
      pseudoRandom(5 * MiB, 5).subarray(BLOCK - MiB, cut),
      "kept",
    );
    assert.ok(isZero(around.subarray(MiB + 7)), "zeros after shrink and extend");
    L.ftruncate(fd, 0);
    assert.equal(L.fstat(fd).size, 0);
  } finally {
    L.close(fd);
  }
  throwsErrno(() => L.truncate(`${d}/missing`, 0), "ENOENT");
  throwsErrno(() => L.truncate(d, 0), "EISDIR");
};

/** mkdir/rmdir, link counts, and the errors for the wrong kind of node. */
cases.mkdir_rmdir = async (d) => {
  const a = `${d}/a`;
  L.mkdir(a, 0o750);
  assert.equal(modeBits(a), 0o750);
  assert.equal(L.lstat(a).nlink, 2);
  const parentLinks = L.lstat(d).nlink;
  L.mkdir(`${a}/s`);
  assert.equal(L.lstat(a).nlink, 3, "a subdirectory adds a link to its parent");
  throwsErrno(() => L.mkdir(a), "EEXIST");
  throwsErrno(() => L.rmdir(a), "ENOTEMPTY");
  await Deno.writeFile(`${a}/s/f`, enc.encode("x"));
  throwsErrno(() => L.rmdir(`${a}/s/f`), "ENOTDIR", "rmdir of a file");
  throwsErrno(() => L.unlink(`${a}/s`), "EISDIR", "unlink of a directory");
  throwsErrno(() => L.mkdir(`${a}/s/f/x`), "ENOTDIR");
  throwsErrno(() => L.mkdir(`${a}/missing/x`), "ENOENT");
  throwsErrno(() => L.rmdir(`${a}/missing`), "ENOENT");
  throwsErrno(() => L.rmdir(`${a}/s/.`), "EINVAL");
  L.unlink(`${a}/s/f`);
  L.rmdir(`${a}/s`);
  assert.equal(L.lstat(a).nlink, 2);
  assert.deepEqual(await names(a), []);
  L.rmdir(a);
  throwsErrno(() => L.lstat(a), "ENOENT");
  assert.equal(L.lstat(d).nlink, parentLinks - 1);
};

/** unlink removes a name; a second unlink fails with ENOENT. */
cases.unlink = async (d) => {
  await Deno.writeFile(`${d}/f`, enc.encode("x"));
  await Deno.writeFile(`${d}/g`, enc.encode("y"));
  L.unlink(`${d}/f`);
  throwsErrno(() => L.lstat(`${d}/f`), "ENOENT");
  throwsErrno(() => L.unlink(`${d}/f`), "ENOENT");
  assert.deepEqual(await names(d), ["g"]);
  L.symlink("g", `${d}/link`);
  L.unlink(`${d}/link`);
  assert.equal(
    dec.decode(await Deno.readFile(`${d}/g`)),
    "y",
    "unlinking a symlink keeps its target",
  );
};

/** rename of a file over a file, in one directory and across directories. */
cases.rename_file_over_file = async (d) => {
  await Deno.writeFile(`${d}/a`, enc.encode("A"));
  await Deno.writeFile(`${d}/b`, enc.encode("B"));
  const ino = L.lstat(`${d}/a`).ino;
  L.rename(`${d}/a`, `${d}/b`);
  throwsErrno(() => L.lstat(`${d}/a`), "ENOENT");
  assert.equal(dec.decode(await Deno.readFile(`${d}/b`)), "A");
  assert.equal(L.lstat(`${d}/b`).ino, ino, "the renamed inode keeps its number");
  L.mkdir(`${d}/sub`);
  await Deno.writeFile(`${d}/sub/c`, enc.encode("C"));
  L.rename(`${d}/b`, `${d}/sub/c`);
  assert.equal(dec.decode(await Deno.readFile(`${d}/sub/c`)), "A");
  assert.deepEqual(await names(d), ["sub"]);
  L.rename(`${d}/sub/c`, `${d}/sub/c`);
  assert.equal(dec.decode(await Deno.readFile(`${d}/sub/c`)), "A", "rename onto itself is a no-op");
  L.link(`${d}/sub/c`, `${d}/hard`);
  L.rename(`${d}/sub/c`, `${d}/hard`);
  assert.ok(L.lstat(`${d}/sub/c`).nlink === 2, "rename between hard links of one inode is a no-op");
  throwsErrno(() => L.rename(`${d}/missing`, `${d}/x`), "ENOENT");
};

/** rename of a directory over an empty directory, with parent link counts. */
cases.rename_dir_over_empty_dir = async (d) => {
  L.mkdir(`${d}/p`);
  L.mkdir(`${d}/q`);
  L.mkdir(`${d}/p/src`);
  await Deno.writeFile(`${d}/p/src/f`, enc.encode("f"));
  L.mkdir(`${d}/q/dst`);
  assert.equal(L.lstat(`${d}/p`).nlink, 3);
  assert.equal(L.lstat(`${d}/q`).nlink, 3);
  L.rename(`${d}/p/src`, `${d}/q/dst`);
  assert.equal(dec.decode(await Deno.readFile(`${d}/q/dst/f`)), "f");
  throwsErrno(() => L.lstat(`${d}/p/src`), "ENOENT");
  assert.equal(L.lstat(`${d}/p`).nlink, 2, "old parent loses the moved subdirectory");
  assert.equal(L.lstat(`${d}/q`).nlink, 3, "new parent: replaced one subdirectory by another");
  L.rename(`${d}/q/dst`, `${d}/p/moved`);
  assert.equal(L.lstat(`${d}/p`).nlink, 3);
  assert.equal(L.lstat(`${d}/q`).nlink, 2);
};

/** The errors of rename(2) and renameat2 RENAME_NOREPLACE. */
cases.rename_errors = async (d) => {
  L.mkdir(`${d}/dir`);
  L.mkdir(`${d}/full`);
  await Deno.writeFile(`${d}/full/x`, enc.encode("x"));
  L.mkdir(`${d}/dir/sub`);
  await Deno.writeFile(`${d}/file`, enc.encode("file"));
  await Deno.writeFile(`${d}/file2`, enc.encode("file2"));
  throwsErrno(() => L.rename(`${d}/dir`, `${d}/full`), "ENOTEMPTY", "dir over non-empty dir");
  throwsErrno(() => L.rename(`${d}/dir`, `${d}/dir/sub/inside`), "EINVAL", "dir into itself");
  throwsErrno(() => L.rename(`${d}/dir`, `${d}/dir/sub`), "EINVAL", "dir onto its child");
  throwsErrno(() => L.rename(`${d}/dir/sub`, `${d}/dir`), "ENOTEMPTY", "dir onto its parent");
  throwsErrno(() => L.rename(`${d}/file`, `${d}/dir`), "EISDIR", "file over dir");
  throwsErrno(() => L.rename(`${d}/dir`, `${d}/file`), "ENOTDIR", "dir over file");
  throwsErrno(() => L.rename(`${d}/file`, `${d}/nodir/file`), "ENOENT", "missing target parent");
  throwsErrno(() => L.rename(`${d}/file`, `${d}/file2/x`), "ENOTDIR", "file as target parent");
  throwsErrno(
    () => L.renameat2(`${d}/file`, `${d}/file2`, L.RENAME_NOREPLACE),
    "EEXIST",
    "RENAME_NOREPLACE",
  );
  L.renameat2(`${d}/file`, `${d}/file3`, L.RENAME_NOREPLACE);
  assert.equal(dec.decode(await Deno.readFile(`${d}/file3`)), "file");
  assert.equal(dec.decode(await Deno.readFile(`${d}/file2`)), "file2");
  assert.deepEqual(await names(`${d}/full`), ["x"], "the failed rename kept the target");
  throwsErrno(
    () => L.renameat2(`${d}/file3`, `${d}/absent`, L.RENAME_EXCHANGE),
    "ENOENT",
    "RENAME_EXCHANGE with a missing target",
  );
};

/** RENAME_EXCHANGE swaps a file and a directory, and two directories across parents. */
cases.rename_exchange = async (d) => {
  L.mkdir(`${d}/p1`);
  L.mkdir(`${d}/p2`);
  await Deno.writeFile(`${d}/p1/f`, enc.encode("file"));
  L.mkdir(`${d}/p2/d`);
  await Deno.writeFile(`${d}/p2/d/child`, enc.encode("child"));
  const fileIno = L.lstat(`${d}/p1/f`).ino;
  const dirIno = L.lstat(`${d}/p2/d`).ino;
  L.renameat2(`${d}/p1/f`, `${d}/p2/d`, L.RENAME_EXCHANGE);
  assert.equal(L.lstat(`${d}/p1/f`).ino, dirIno);
  assert.equal(L.lstat(`${d}/p2/d`).ino, fileIno);
  assert.equal(dec.decode(await Deno.readFile(`${d}/p1/f/child`)), "child");
  assert.equal(dec.decode(await Deno.readFile(`${d}/p2/d`)), "file");
  assert.equal(L.lstat(`${d}/p1`).nlink, 3, "p1 gained a subdirectory");
  assert.equal(L.lstat(`${d}/p2`).nlink, 2, "p2 lost a subdirectory");
  assert.equal(L.stat(`${d}/p1/f/..`).ino, L.lstat(`${d}/p1`).ino, "`..` follows the exchange");

  L.mkdir(`${d}/p2/e`);
  await Deno.writeFile(`${d}/p2/e/m2`, enc.encode("m2"));
  L.renameat2(`${d}/p1/f`, `${d}/p2/e`, L.RENAME_EXCHANGE);
  assert.deepEqual(await names(`${d}/p1/f`), ["m2"]);
  assert.deepEqual(await names(`${d}/p2/e`), ["child"]);
  assert.equal(L.stat(`${d}/p1/f/..`).ino, L.lstat(`${d}/p1`).ino);
  assert.equal(L.stat(`${d}/p2/e/..`).ino, L.lstat(`${d}/p2`).ino);
  assert.equal(L.lstat(`${d}/p1`).nlink, 3);
  assert.equal(L.lstat(`${d}/p2`).nlink, 3);
  throwsErrno(
    () => L.renameat2(`${d}/p2`, `${d}/p2/e`, L.RENAME_EXCHANGE),
    "EINVAL",
    "exchange with a descendant",
  );
};

/** After moving a directory, its `..` is the new parent. */
cases.rename_updates_dotdot = async (d) => {
  L.mkdir(`${d}/a`);
  L.mkdir(`${d}/a/x`);
  L.mkdir(`${d}/b`);
  L.rename(`${d}/a/x`, `${d}/b/x`);
  assert.equal(L.stat(`${d}/b/x/..`).ino, L.lstat(`${d}/b`).ino);
  await Deno.writeFile(`${d}/b/x/../via-dotdot`, enc.encode("y"));
  assert.deepEqual(await names(`${d}/b`), ["via-dotdot", "x"]);
  assert.deepEqual(await names(`${d}/a`), []);
  Deno.chdir(`${d}/b/x`);
  try {
    assert.equal(L.stat("..").ino, L.lstat(`${d}/b`).ino);
  } finally {
    Deno.chdir("/");
  }
};

/** Hard links share data and count links; unlinking one name keeps the other. */
cases.hard_links = async (d) => {
  const f = `${d}/f`, g = `${d}/g`;
  await Deno.writeFile(f, enc.encode("shared"));
  assert.equal(L.lstat(f).nlink, 1);
  L.mkdir(`${d}/sub`);
  L.link(f, g);
  L.link(f, `${d}/sub/h`);
  assert.equal(L.lstat(f).nlink, 3);
  assert.equal(L.lstat(g).ino, L.lstat(f).ino);
  await Deno.writeFile(g, enc.encode(" data"), { append: true });
  assert.equal(dec.decode(await Deno.readFile(f)), "shared data");
  L.chmod(g, 0o600);
  assert.equal(modeBits(f), 0o600, "attributes are shared");
  throwsErrno(() => L.link(f, g), "EEXIST");
  throwsErrno(() => L.link(`${d}/missing`, `${d}/x`), "ENOENT");
  throwsErrno(() => L.link(`${d}/sub`, `${d}/dirlink`), "EPERM", "hard link to a directory");
  L.unlink(f);
  assert.equal(L.lstat(g).nlink, 2);
  assert.equal(dec.decode(await Deno.readFile(`${d}/sub/h`)), "shared data");
  L.unlink(`${d}/sub/h`);
  assert.equal(L.lstat(g).nlink, 1);
  assert.equal(dec.decode(await Deno.readFile(g)), "shared data");
};

/** Symlinks: readlink, long and dangling targets, following for reads and creates. */
cases.symlinks = async (d) => {
  await Deno.writeFile(`${d}/target`, enc.encode("target data"));
  L.symlink("target", `${d}/link`);
  assert.equal(L.readlink(`${d}/link`), "target");
  const st = L.lstat(`${d}/link`);
  assert.equal(st.mode & 0o170000, 0o120000, "lstat sees a symlink");
  assert.equal(st.size, "target".length, "a symlink's size is its target's length");
  assert.equal(dec.decode(await Deno.readFile(`${d}/link`)), "target data");
  assert.equal(L.stat(`${d}/link`).ino, L.lstat(`${d}/target`).ino);
  const long = "x/".repeat(1999) + "end";
  L.symlink(long, `${d}/long`);
  assert.equal(L.readlink(`${d}/long`), long);
  L.symlink("does/not/exist", `${d}/dangling`);
  throwsErrno(() => L.stat(`${d}/dangling`), "ENOENT");
  assert.equal(L.readlink(`${d}/dangling`), "does/not/exist");
  L.symlink("created", `${d}/creator`);
  await Deno.writeFile(`${d}/creator`, enc.encode("via link"));
  assert.equal(dec.decode(await Deno.readFile(`${d}/created`)), "via link");
  L.mkdir(`${d}/dir`);
  L.symlink("dir", `${d}/dirlink`);
  await Deno.writeFile(`${d}/dirlink/inside`, enc.encode("i"));
  assert.deepEqual(await names(`${d}/dir`), ["inside"]);
  throwsErrno(() => L.symlink("x", `${d}/link`), "EEXIST");
  throwsErrno(() => L.readlink(`${d}/target`), "EINVAL", "readlink of a regular file");
  L.symlink("loop", `${d}/loop`);
  throwsErrno(() => L.stat(`${d}/loop`), "ELOOP");
};

/** mknod creates FIFOs, sockets and character devices (as root). */
cases.mknod = async (d) => {
  L.mkfifo(`${d}/fifo`, 0o640);
  const fifo = L.lstat(`${d}/fifo`);
  assert.equal(fifo.mode & 0o170000, L.S_IFIFO);
  assert.equal(fifo.mode & 0o777, 0o640);
  assert.ok((await Deno.lstat(`${d}/fifo`)).isFifo);
  L.mknod(`${d}/sock`, L.S_IFSOCK | 0o600);
  assert.equal(L.lstat(`${d}/sock`).mode & 0o170000, L.S_IFSOCK);
  const dev = L.makedev(1, 3);
  L.mknod(`${d}/null`, L.S_IFCHR | 0o666, dev);
  const chr = L.lstat(`${d}/null`);
  assert.equal(chr.mode & 0o170000, L.S_IFCHR);
  assert.equal(chr.rdev, dev);
  const big = L.makedev(300, 70000);
  L.mknod(`${d}/bigdev`, L.S_IFCHR | 0o600, big);
  assert.equal(L.lstat(`${d}/bigdev`).rdev, big, "large major/minor numbers survive");
  L.mknod(`${d}/regular`, L.S_IFREG | 0o644);
  assert.equal(L.lstat(`${d}/regular`).size, 0);
  throwsErrno(() => L.mkfifo(`${d}/fifo`), "EEXIST");
  assert.deepEqual(await names(d), ["bigdev", "fifo", "null", "regular", "sock"]);
  L.unlink(`${d}/fifo`);
  L.unlink(`${d}/null`);
};

/** chmod, chown, utimensat (incl. UTIME_NOW / UTIME_OMIT) and ctime updates. */
cases.attributes = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, enc.encode("x"));
  let before = L.lstat(f);
  await sleep(20);
  L.chmod(f, 0o640);
  let after = L.lstat(f);
  assert.equal(after.mode & 0o7777, 0o640);
  assert.ok(after.ctimeNs > before.ctimeNs, "chmod updates ctime");
  assert.equal(after.mtimeNs, before.mtimeNs, "chmod keeps mtime");

  before = after;
  await sleep(20);
  L.chown(f, NOBODY, NOBODY);
  after = L.lstat(f);
  assert.equal(after.uid, NOBODY);
  assert.equal(after.gid, NOBODY);
  assert.ok(after.ctimeNs > before.ctimeNs, "chown updates ctime");
  L.chown(f, -1, 0);
  assert.equal(L.lstat(f).uid, NOBODY, "uid -1 keeps the owner");
  assert.equal(L.lstat(f).gid, 0);

  L.utimensat(f, { sec: 1_000_000_000, nsec: 123_456_789 }, { sec: 1_100_000_000, nsec: 987 });
  after = L.lstat(f);
  assert.equal(after.atimeNs, 1_000_000_000_123_456_789n, "atime set exactly");
  assert.equal(after.mtimeNs, 1_100_000_000_000_000_987n, "mtime set exactly");

  before = after;
  await sleep(20);
  const wallBefore = BigInt(Date.now() - 2000) * 1_000_000n;
  L.utimensat(f, "omit", "now");
  const wallAfter = BigInt(Date.now() + 2000) * 1_000_000n;
  after = L.lstat(f);
  assert.equal(after.atimeNs, before.atimeNs, "UTIME_OMIT keeps atime");
  assert.ok(after.mtimeNs >= wallBefore && after.mtimeNs <= wallAfter, "UTIME_NOW sets mtime");
  assert.ok(after.ctimeNs > before.ctimeNs, "utimensat updates ctime");
  L.utimensat(f, "now", "omit");
  const again = L.lstat(f);
  assert.ok(again.atimeNs >= wallBefore, "UTIME_NOW sets atime");
  assert.equal(again.mtimeNs, after.mtimeNs, "UTIME_OMIT keeps mtime");

  before = L.lstat(f);
  await sleep(20);
  await Deno.writeFile(f, enc.encode("more"), { append: true });
  after = L.lstat(f);
  assert.ok(after.mtimeNs > before.mtimeNs, "write updates mtime");
  assert.ok(after.ctimeNs > before.ctimeNs, "write updates ctime");

  L.mkdir(`${d}/dir`);
  before = L.lstat(`${d}/dir`);
  await sleep(20);
  await Deno.writeFile(`${d}/dir/new`, enc.encode(""));
  after = L.lstat(`${d}/dir`);
  assert.ok(after.mtimeNs > before.mtimeNs, "creating an entry updates the directory's mtime");
  assert.ok(after.ctimeNs > before.ctimeNs, "creating an entry updates the directory's ctime");

  L.symlink("f", `${d}/link`);
  L.lchown(`${d}/link`, NOBODY, NOBODY);
  assert.equal(L.lstat(`${d}/link`).uid, NOBODY, "lchown changes the link");
  assert.equal(L.lstat(f).gid, 0, "lchown leaves the target alone");
  L.utimensat(`${d}/link`, { sec: 5, nsec: 0 }, { sec: 6, nsec: 0 }, L.AT_SYMLINK_NOFOLLOW);
  assert.equal(L.lstat(`${d}/link`).mtimeNs, 6_000_000_000n);
  assert.notEqual(L.lstat(f).mtimeNs, 6_000_000_000n);
};

/** setuid/setgid bits are cleared on a write by a non-root user and on chown. */
cases.setuid_cleared = async (d) => {
  const f = `${d}/suid`;
  await Deno.writeFile(f, enc.encode("x"));
  L.chmod(f, 0o6777);
  assert.equal(modeBits(f), 0o6777);
  const r = await runAsNobody('printf y >> "$1"', f);
  assert.equal(r.code, 0, `write as uid ${NOBODY} failed: ${r.stderr}`);
  assert.equal(dec.decode(await Deno.readFile(f)), "xy");
  assert.equal(modeBits(f), 0o0777, "a non-root write clears setuid and setgid");

  const g = `${d}/chowned`;
  await Deno.writeFile(g, enc.encode("x"));
  L.chmod(g, 0o6755);
  L.chown(g, NOBODY, NOBODY);
  assert.equal(modeBits(g), 0o0755, "chown clears setuid and setgid");

  const h = `${d}/root-write`;
  await Deno.writeFile(h, enc.encode("x"));
  L.chmod(h, 0o4755);
  await Deno.writeFile(h, enc.encode("y"), { append: true });
  assert.equal(modeBits(h), 0o4755, "a write by root keeps setuid");
};

/** A non-root user is denied access to a root-owned 0600 file and a root-owned directory. */
cases.permission_denied = async (d) => {
  const open = `${d}/public`;
  await Deno.writeFile(open, enc.encode("public"));
  L.chmod(open, 0o644);
  const ok = await runAsNobody('cat "$1"', open);
  assert.equal(
    ok.stdout,
    "public",
    `uid ${NOBODY} cannot read a 0644 file (mount without allow_other?): ${ok.stderr}`,
  );
  const secret = `${d}/secret`;
  await Deno.writeFile(secret, enc.encode("secret"));
  L.chmod(secret, 0o600);
  const r = await runAsNobody('cat "$1"', secret);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Permission denied/, "EACCES on reading a 0600 file of root");
  const w = await runAsNobody('printf x >> "$1"', open);
  assert.match(w.stderr, /Permission denied/, "EACCES on writing a 0644 file of root");
  const c = await runAsNobody('touch "$1/new"', d);
  assert.match(c.stderr, /Permission denied/, "EACCES on creating in a 0755 dir of root");
  const m = await runAsNobody('chmod 777 "$1"', open);
  assert.match(m.stderr, /Operation not permitted/, "EPERM on chmod by a non-owner");
  L.mkdir(`${d}/closed`, 0o700);
  await Deno.writeFile(`${d}/closed/f`, enc.encode("f"));
  L.chmod(`${d}/closed/f`, 0o666);
  const t = await runAsNobody('cat "$1"', `${d}/closed/f`);
  assert.match(t.stderr, /Permission denied/, "EACCES on traversing a 0700 dir");
  L.access(secret, L.R_OK | L.W_OK);
};

/** Extended attributes: set, get, list, remove, flags and large values. */
cases.xattrs = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, enc.encode("x"));
  L.setxattr(f, "user.a", enc.encode("1"));
  L.setxattr(f, "user.b", enc.encode("22"));
  L.setxattr(f, "user.empty", new Uint8Array(0));
  assert.equal(dec.decode(L.getxattr(f, "user.a")), "1");
  assert.equal(dec.decode(L.getxattr(f, "user.b")), "22");
  assert.equal(L.getxattr(f, "user.empty").length, 0);
  const listed = L.listxattr(f).filter((n) => n.startsWith("user.")).sort();
  assert.deepEqual(listed, ["user.a", "user.b", "user.empty"]);
  throwsErrno(() => L.setxattr(f, "user.a", enc.encode("x"), L.XATTR_CREATE), "EEXIST");
  throwsErrno(() => L.setxattr(f, "user.zz", enc.encode("x"), L.XATTR_REPLACE), "ENODATA");
  L.setxattr(f, "user.a", enc.encode("replaced"), L.XATTR_REPLACE);
  assert.equal(dec.decode(L.getxattr(f, "user.a")), "replaced");
  L.setxattr(f, "user.a", enc.encode("s"));
  assert.equal(dec.decode(L.getxattr(f, "user.a")), "s", "a shorter value replaces a longer one");
  throwsErrno(() => L.getxattr(f, "user.missing"), "ENODATA");
  L.removexattr(f, "user.a");
  throwsErrno(() => L.getxattr(f, "user.a"), "ENODATA");
  throwsErrno(() => L.removexattr(f, "user.a"), "ENODATA");
  const large = pseudoRandom(60 * 1024, 6);
  L.setxattr(f, "user.large", large);
  bytesEqual(L.getxattr(f, "user.large"), large, "60 KiB xattr value");
  L.mkdir(`${d}/dir`);
  L.setxattr(`${d}/dir`, "user.dir", enc.encode("on a dir"));
  assert.equal(dec.decode(L.getxattr(`${d}/dir`, "user.dir")), "on a dir");
  throwsErrno(() => L.getxattr(`${d}/missing`, "user.a"), "ENOENT");
  L.link(f, `${d}/hard`);
  assert.equal(dec.decode(L.getxattr(`${d}/hard`, "user.b")), "22", "xattrs belong to the inode");
};

/** An unlinked file stays readable and writable through open descriptors until closed. */
cases.unlinked_open_file = async (d) => {
  const f = `${d}/f`;
  const data = pseudoRandom(5 * MiB + 3, 7);
  await Deno.writeFile(f, data);
  const file = await Deno.open(f, { read: true, write: true });
  const fd = L.open(f, L.O.RDONLY);
  try {
    L.unlink(f);
    throwsErrno(() => L.lstat(f), "ENOENT");
    assert.deepEqual(await names(d), []);
    await file.seek(0, Deno.SeekMode.End);
    const extra = enc.encode("appended after unlink");
    assert.equal(await file.write(extra), extra.length);
    const expected = new Uint8Array(data.length + extra.length);
    expected.set(data);
    expected.set(extra, data.length);
    bytesEqual(L.preadFull(fd, expected.length + 10, 0), expected, "read after unlink");
    assert.equal(L.fstat(fd).nlink, 0);
    assert.equal(L.fstat(fd).size, expected.length);
    await Deno.writeFile(f, enc.encode("a new file"));
    bytesEqual(L.preadFull(fd, 10, 0), expected.subarray(0, 10), "the old inode is separate");
  } finally {
    file.close();
    L.close(fd);
  }
  assert.equal(dec.decode(await Deno.readFile(f)), "a new file");
};

/** readdir during concurrent unlinks: no entry twice, every surviving entry seen. */
cases.readdir_concurrent_unlink = async (d) => {
  const n = 600;
  const all: string[] = [];
  for (let i = 0; i < n; i++) all.push(`entry-${i.toString().padStart(4, "0")}`);
  await Promise.all(all.map((name) => Deno.writeFile(`${d}/${name}`, new Uint8Array(0))));
  const shuffled = [...all].sort(() => Math.random() - 0.5);
  const doomed = new Set(shuffled.slice(0, n / 2));
  const toDelete = [...doomed];
  const seen = new Map<string, number>();
  for await (const e of Deno.readDir(d)) {
    seen.set(e.name, (seen.get(e.name) ?? 0) + 1);
    for (let k = 0; k < 3 && toDelete.length > 0; k++) L.unlink(`${d}/${toDelete.pop()}`);
  }
  for (const [name, count] of seen) assert.equal(count, 1, `"${name}" listed ${count} times`);
  for (const name of all) {
    if (!doomed.has(name)) assert.ok(seen.has(name), `surviving "${name}" not listed`);
  }
  for (const name of seen.keys()) assert.ok(all.includes(name), `unknown entry "${name}"`);
  while (toDelete.length > 0) L.unlink(`${d}/${toDelete.pop()}`);
  assert.equal((await names(d)).length, n / 2);
};

/** A directory of 10,000 entries: create, list, stat all, delete. */
cases.large_directory = async (d) => {
  const n = 10_000;
  const name = (i: number) => `file-with-a-longer-name-${i}`;
  const batch = 64;
  for (let i = 0; i < n; i += batch) {
    const jobs = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      jobs.push(Deno.writeFile(`${d}/${name(j)}`, enc.encode(String(j))));
    }
    await Promise.all(jobs);
  }
  const listed = await names(d);
  assert.equal(listed.length, n);
  assert.equal(new Set(listed).size, n);
  const listedSet = new Set(listed);
  for (let i = 0; i < n; i++) assert.ok(listedSet.has(name(i)), `"${name(i)}" not listed`);
  for (let i = 0; i < n; i += batch) {
    const jobs = [];
    for (let j = i; j < Math.min(n, i + batch); j++) {
      jobs.push(
        Deno.lstat(`${d}/${name(j)}`).then((s) => {
          assert.equal(s.size, String(j).length);
        }),
      );
    }
    await Promise.all(jobs);
  }
  for (let i = 0; i < n; i += batch) {
    const jobs = [];
    for (let j = i; j < Math.min(n, i + batch); j++) jobs.push(Deno.remove(`${d}/${name(j)}`));
    await Promise.all(jobs);
  }
  assert.deepEqual(await names(d), []);
};

/** statfs/statvfs report sane numbers. */
cases.statfs = async (d) => {
  await Deno.writeFile(`${d}/f`, pseudoRandom(MiB, 8));
  const v = L.statvfs(d);
  assert.ok(v.bsize > 0, "bsize");
  assert.ok(v.frsize > 0, "frsize");
  assert.ok(v.blocks > 0, "blocks");
  assert.ok(v.bfree <= v.blocks, "bfree <= blocks");
  assert.ok(v.bavail <= v.bfree, "bavail <= bfree");
  assert.ok(v.files === 0 || v.ffree <= v.files, "ffree <= files");
  assert.ok(v.namemax >= 255, "namemax >= 255");
  const s = L.statfs(d);
  assert.equal(s.blocks, v.blocks);
  assert.ok(s.namelen >= 255);
};

/** flock: conflicts between open file descriptions, LOCK_NB, release on close. */
cases.flock = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, enc.encode("x"));
  const a = L.open(f, L.O.RDWR);
  const b = L.open(f, L.O.RDWR);
  let c = -1;
  try {
    L.flock(a, L.LOCK_SH);
    L.flock(b, L.LOCK_SH | L.LOCK_NB);
    c = L.open(f, L.O.RDONLY);
    throwsErrno(() => L.flock(c, L.LOCK_EX | L.LOCK_NB), "EAGAIN", "EX against two SH locks");
    L.flock(a, L.LOCK_UN);
    L.flock(b, L.LOCK_UN);
    L.flock(c, L.LOCK_EX | L.LOCK_NB);
    throwsErrno(() => L.flock(a, L.LOCK_EX | L.LOCK_NB), "EAGAIN", "EWOULDBLOCK");
    throwsErrno(() => L.flock(b, L.LOCK_SH | L.LOCK_NB), "EAGAIN");
    const waiter = L.flockAsync(a, L.LOCK_EX);
    let granted = false;
    waiter.then(() => granted = true, () => {});
    await sleep(200);
    assert.equal(granted, false, "a blocking flock waits while the lock is held");
    L.close(c);
    c = -1;
    await waiter;
    throwsErrno(() => L.flock(b, L.LOCK_EX | L.LOCK_NB), "EAGAIN");
  } finally {
    L.close(a);
    if (c >= 0) L.close(c);
  }
  // Closing the last descriptor of `a` drops its lock. Under heavy load the final reference of
  // `a` (taken by the thread that waited in flock) can be dropped a moment after close returns,
  // so allow up to 2 s before calling it a leak.
  for (let tries = 0;; tries++) {
    try {
      L.flock(b, L.LOCK_EX | L.LOCK_NB);
      break;
    } catch (err) {
      if (tries >= 40 || !(err instanceof L.LibcError) || !/EAGAIN/.test(err.message)) throw err;
      await sleep(50);
    }
  }
  L.close(b);
};

/** fcntl record locks against another process: F_GETLK, F_SETLK, F_SETLKW. */
cases.fcntl_locks = async (d) => {
  const f = `${d}/f`;
  await Deno.writeFile(f, new Uint8Array(1000));
  const holder = await holdLock(f, "w", 0, 100);
  const fd = L.open(f, L.O.RDWR);
  try {
    const conflict = L.getlk(fd, { type: L.F_WRLCK, start: 10, len: 5 });
    assert.equal(conflict.type, L.F_WRLCK);
    assert.equal(conflict.start, 0);
    assert.equal(conflict.len, 100);
    assert.equal(conflict.pid, holder.pid, "F_GETLK reports the holder's pid");
    const free = L.getlk(fd, { type: L.F_WRLCK, start: 100, len: 50 });
    assert.equal(free.type, L.F_UNLCK, "no conflict past the held range");
    throwsErrno(() => L.setlk(fd, { type: L.F_WRLCK, start: 50, len: 1 }), "EAGAIN");
    throwsErrno(() => L.setlk(fd, { type: L.F_RDLCK, start: 0, len: 0 }), "EAGAIN");
    L.setlk(fd, { type: L.F_WRLCK, start: 100, len: 100 });
    const waiter = L.setlkwAsync(fd, { type: L.F_WRLCK, start: 0, len: 10 });
    let granted = false;
    waiter.then(() => granted = true, () => {});
    await sleep(300);
    assert.equal(granted, false, "F_SETLKW waits while the range is locked");
    await holder.release();
    await waiter;
    assert.equal(granted, true);
    const mine = L.getlk(fd, { type: L.F_WRLCK, start: 0, len: 0 });
    assert.equal(mine.type, L.F_UNLCK, "a process does not conflict with its own locks");
  } finally {
    await holder.release();
    L.close(fd);
  }
  const reader = await holdLock(f, "r", 0, 0);
  const fd2 = L.open(f, L.O.RDWR);
  try {
    L.setlk(fd2, { type: L.F_RDLCK, start: 0, len: 10 });
    throwsErrno(() => L.setlk(fd2, { type: L.F_WRLCK, start: 0, len: 10 }), "EAGAIN");
  } finally {
    await reader.release();
    L.close(fd2);
  }
};

/** fallocate: mode 0 extends, KEEP_SIZE does not, PUNCH_HOLE zeroes and keeps the size. */
cases.fallocate = (d) => {
  const f = `${d}/f`;
  const fd = L.open(f, L.O.RDWR | L.O.CREAT);
  try {
    L.fallocate(fd, 0, 0, MiB);
    assert.equal(L.fstat(fd).size, MiB);
    assert.ok(isZero(L.preadFull(fd, MiB, 0)));
    L.fallocate(fd, L.FALLOC_FL_KEEP_SIZE, MiB, MiB);
    assert.equal(L.fstat(fd).size, MiB, "KEEP_SIZE keeps the size");
    L.fallocate(fd, 0, 0, 1000);
    assert.equal(L.fstat(fd).size, MiB, "allocating inside the file keeps the size");
    const data = pseudoRandom(6 * MiB, 9);
    L.pwriteFull(fd, data, 0);
    const holeStart = BLOCK - 8192, holeLen = 3 * 8192;
    L.fallocate(fd, L.FALLOC_FL_PUNCH_HOLE | L.FALLOC_FL_KEEP_SIZE, holeStart, holeLen);
    assert.equal(L.fstat(fd).size, 6 * MiB, "PUNCH_HOLE keeps the size");
    data.fill(0, holeStart, holeStart + holeLen);
    bytesEqual(L.preadFull(fd, 6 * MiB, 0), data, "file after PUNCH_HOLE");
    L.fallocate(fd, L.FALLOC_FL_PUNCH_HOLE | L.FALLOC_FL_KEEP_SIZE, 6 * MiB - 100, 10_000);
    assert.equal(L.fstat(fd).size, 6 * MiB, "punching past EOF keeps the size");
    data.fill(0, 6 * MiB - 100);
    bytesEqual(L.preadFull(fd, 200, 6 * MiB - 200), data.subarray(6 * MiB - 200), "tail");
    L.fallocate(fd, 0, 6 * MiB, 12345);
    assert.equal(L.fstat(fd).size, 6 * MiB + 12345, "mode 0 extends past EOF");
    throwsErrno(
      () => L.fallocate(fd, L.FALLOC_FL_PUNCH_HOLE, 0, 10),
      "EOPNOTSUPP",
      "PUNCH_HOLE without KEEP_SIZE",
    );
  } finally {
    L.close(fd);
  }
};

/** copy_file_range: whole files, across directories, partial ranges at offsets. */
cases.copy_file_range = async (d) => {
  const data = pseudoRandom(3 * MiB + 123, 10);
  await Deno.writeFile(`${d}/src`, data);
  L.mkdir(`${d}/other`);
  const src = L.open(`${d}/src`, L.O.RDONLY);
  const dst = L.open(`${d}/other/dst`, L.O.WRONLY | L.O.CREAT);
  const part = L.open(`${d}/part`, L.O.WRONLY | L.O.CREAT);
  try {
    let done = 0;
    while (done < data.length) {
      const n = L.copyFileRange(src, done, dst, done, data.length - done);
      assert.ok(n > 0, "copy_file_range made progress");
      done += n;
    }
    let copied = 0;
    const len = 100_000;
    while (copied < len) {
      copied += L.copyFileRange(src, 1000 + copied, part, 5000 + copied, len - copied);
    }
    assert.equal(L.copyFileRange(src, data.length, part, 0, 100), 0, "copy at EOF copies nothing");
  } finally {
    L.close(src);
    L.close(dst);
    L.close(part);
  }
  bytesEqual(await Deno.readFile(`${d}/other/dst`), data, "full copy");
  const p = await Deno.readFile(`${d}/part`);
  assert.equal(p.length, 105_000);
  assert.ok(isZero(p.subarray(0, 5000)));
  bytesEqual(p.subarray(5000), data.subarray(1000, 101_000), "partial copy");
};

/** lseek SEEK_DATA / SEEK_HOLE on dense and sparse files. */
cases.lseek_data_hole = async (d) => {
  const dense = `${d}/dense`;
  await Deno.writeFile(dense, pseudoRandom(100_000, 11));
  let fd = L.open(dense, L.O.RDONLY);
  try {
    assert.equal(L.lseek(fd, 0, L.SEEK_DATA), 0);
    assert.equal(L.lseek(fd, 0, L.SEEK_HOLE), 100_000, "a dense file's only hole is at EOF");
    assert.equal(L.lseek(fd, 5000, L.SEEK_DATA), 5000);
    throwsErrno(() => L.lseek(fd, 100_000, L.SEEK_DATA), "ENXIO");
    throwsErrno(() => L.lseek(fd, 100_000, L.SEEK_HOLE), "ENXIO");
    throwsErrno(() => L.lseek(fd, 200_000, L.SEEK_DATA), "ENXIO");
    assert.equal(L.lseek(fd, 0, L.SEEK_END), 100_000);
  } finally {
    L.close(fd);
  }
  const sparse = `${d}/sparse`;
  const dataStart = 8 * MiB, dataLen = 64 * 1024, size = 16 * MiB;
  fd = L.open(sparse, L.O.RDWR | L.O.CREAT);
  try {
    L.pwriteFull(fd, pseudoRandom(dataLen, 12), dataStart);
    L.ftruncate(fd, size);
    for (const off of [0, 12345, dataStart - 1]) {
      const at = L.lseek(fd, off, L.SEEK_DATA);
      assert.ok(at >= off && at <= dataStart, `SEEK_DATA(${off}) = ${at}`);
    }
    assert.equal(L.lseek(fd, dataStart, L.SEEK_DATA), dataStart);
    const hole = L.lseek(fd, dataStart, L.SEEK_HOLE);
    assert.ok(hole >= dataStart + dataLen && hole <= size, `SEEK_HOLE(data) = ${hole}`);
    const h0 = L.lseek(fd, 0, L.SEEK_HOLE);
    assert.ok(h0 === 0 || h0 === size, `SEEK_HOLE(0) = ${h0}`);
    try {
      const t = L.lseek(fd, size - 10, L.SEEK_DATA);
      assert.ok(t >= size - 10 && t < size, `SEEK_DATA in the trailing hole = ${t}`);
    } catch (e) {
      assert.equal((e as L.LibcError).code, "ENXIO");
    }
    throwsErrno(() => L.lseek(fd, size, L.SEEK_DATA), "ENXIO");
    throwsErrno(() => L.lseek(fd, size + 1, L.SEEK_HOLE), "ENXIO");
  } finally {
    L.close(fd);
  }
};

/** fsync and fdatasync on files and directories. */
cases.fsync = async (d) => {
  const f = `${d}/f`;
  const fd = L.open(f, L.O.RDWR | L.O.CREAT);
  try {
    L.pwriteFull(fd, pseudoRandom(MiB, 13), 0);
    L.fsync(fd);
    L.pwriteFull(fd, enc.encode("tail"), MiB);
    L.fdatasync(fd);
    assert.equal(L.fstat(fd).size, MiB + 4);
  } finally {
    L.close(fd);
  }
  const dfd = L.open(d, L.O.RDONLY | L.O.DIRECTORY);
  try {
    L.fsync(dfd);
    L.fdatasync(dfd);
  } finally {
    L.close(dfd);
  }
  const file = await Deno.open(f, { write: true });
  try {
    await file.write(enc.encode("head"));
    await file.sync();
    await file.syncData();
  } finally {
    file.close();
  }
  const back = await Deno.readFile(f);
  assert.equal(dec.decode(back.subarray(0, 4)), "head");
  assert.equal(dec.decode(back.subarray(MiB)), "tail");
};

/** A file larger than 64 MiB is written in 1 MiB pieces and read back with the same checksum. */
cases.large_file = async (d) => {
  const size = 65 * MiB + 12_345;
  const data = pseudoRandom(size, 14);
  const want = await sha256(data);
  const f = `${d}/large`;
  const file = await Deno.open(f, { write: true, create: true });
  try {
    for (let off = 0; off < size; off += MiB) {
      const piece = data.subarray(off, Math.min(size, off + MiB));
      let w = 0;
      while (w < piece.length) w += await file.write(piece.subarray(w));
    }
  } finally {
    file.close();
  }
  assert.equal((await Deno.stat(f)).size, size);
  const back = await Deno.readFile(f);
  assert.equal(back.length, size);
  assert.equal(await sha256(back), want, "checksum of the data read back");
};

/** Writes at odd offsets across 4 MiB block boundaries, checked against an in-memory copy. */
cases.block_boundaries = async (d) => {
  const f = `${d}/f`;
  const model = new Uint8Array(13 * MiB);
  let size = 0;
  const writes: [number, number][] = [
    [BLOCK - 3, 7],
    [2 * BLOCK - 1001, 5000],
    [1, BLOCK + 10],
    [3 * BLOCK - 1, 2],
    [BLOCK, 1],
    [BLOCK - 1, 1],
    [2 * BLOCK + 4095, 4097],
    [12 * MiB + 77, MiB - 77],
  ];
  const fd = L.open(f, L.O.RDWR | L.O.CREAT);
  try {
    let seed = 100;
    for (const [off, len] of writes) {
      const piece = pseudoRandom(len, seed++);
      L.pwriteFull(fd, piece, off);
      model.set(piece, off);
      size = Math.max(size, off + len);
      assert.equal(L.fstat(fd).size, size);
    }
    for (const [off, len] of [[BLOCK - 10, 20], [2 * BLOCK - 5000, 10_000], [0, size]]) {
      bytesEqual(
        L.preadFull(fd, len!, off!),
        model.subarray(off!, off! + len!),
        `read ${off}+${len}`,
      );
    }
  } finally {
    L.close(fd);
  }
  bytesEqual(await Deno.readFile(f), model.subarray(0, size), "whole file");
};

/** The named POSIX cases; each runs inside a fresh subdirectory of the directory it is given. */
export const posixCases: Record<string, PosixCase> = Object.fromEntries(
  Object.entries(cases).map(([name, body]) => [name, async (dir: string) => {
    const sub = `${dir}/${name}-${crypto.randomUUID().slice(0, 8)}`;
    await Deno.mkdir(sub);
    await Deno.chmod(sub, 0o755);
    await body(sub);
    await Deno.remove(sub, { recursive: true });
  }]),
);
