/**
 * Namespace and attribute calls through libc: renameat2 and rename, unlink, rmdir, mkdir, mknod,
 * mkfifo, link, symlink, readlink, chown, lchown, chmod, access, utimensat.
 *
 * @module
 */

import { AT_FDCWD, UTIME_NOW, UTIME_OMIT } from "./_libc_consts.ts";
import { check, cstr, libc } from "./_libc_ffi.ts";

const dec = new TextDecoder();

/** `renameat2(2)` relative to the current directory. */
export function renameat2(from: string, to: string, flags = 0): void {
  check(
    "renameat2",
    libc().renameat2(AT_FDCWD, cstr(from), AT_FDCWD, cstr(to), flags),
    `"${from}" -> "${to}"`,
  );
}

/** `rename(2)`. */
export function rename(from: string, to: string): void {
  renameat2(from, to, 0);
}

/** `unlink(2)`. */
export function unlink(path: string): void {
  check("unlink", libc().unlink(cstr(path)), `"${path}"`);
}

/** `rmdir(2)`. */
export function rmdir(path: string): void {
  check("rmdir", libc().rmdir(cstr(path)), `"${path}"`);
}

/** `mkdir(2)`. */
export function mkdir(path: string, mode = 0o755): void {
  check("mkdir", libc().mkdir(cstr(path), mode), `"${path}"`);
}

/** `mknod(2)`; `mode` includes the file type bits. */
export function mknod(path: string, mode: number, dev: bigint = 0n): void {
  check("mknod", libc().mknod(cstr(path), mode, dev), `"${path}"`);
}

/** `mkfifo(3)`. */
export function mkfifo(path: string, mode = 0o644): void {
  check("mkfifo", libc().mkfifo(cstr(path), mode), `"${path}"`);
}

/** `link(2)`. */
export function link(from: string, to: string): void {
  check("link", libc().link(cstr(from), cstr(to)), `"${from}" -> "${to}"`);
}

/** `symlink(2)`: creates `path` pointing at `target`. */
export function symlink(target: string, path: string): void {
  check("symlink", libc().symlink(cstr(target), cstr(path)), `"${path}"`);
}

/** `readlink(2)`. */
export function readlink(path: string): string {
  const buf = new Uint8Array(8192);
  const n = Number(check("readlink", libc().readlink(cstr(path), buf, BigInt(buf.length))));
  return dec.decode(buf.subarray(0, n));
}

/** `chown(2)`. */
export function chown(path: string, uid: number, gid: number): void {
  check("chown", libc().chown(cstr(path), uid >>> 0, gid >>> 0), `"${path}"`);
}

/** `lchown(2)`. */
export function lchown(path: string, uid: number, gid: number): void {
  check("lchown", libc().lchown(cstr(path), uid >>> 0, gid >>> 0), `"${path}"`);
}

/** `chmod(2)`. */
export function chmod(path: string, mode: number): void {
  check("chmod", libc().chmod(cstr(path), mode), `"${path}"`);
}

/** `access(2)`. */
export function access(path: string, mode: number): void {
  check("access", libc().access(cstr(path), mode), `"${path}"`);
}

/** A timestamp for {@link utimensat}: seconds and nanoseconds, or UTIME_NOW / UTIME_OMIT. */
export type Timespec = { sec: number; nsec: number } | "now" | "omit";

/** `utimensat(2)` relative to the current directory. */
export function utimensat(path: string, atime: Timespec, mtime: Timespec, flags = 0): void {
  const t = new BigInt64Array(4);
  const put = (i: number, v: Timespec) => {
    if (v === "now") t[i * 2 + 1] = BigInt(UTIME_NOW);
    else if (v === "omit") t[i * 2 + 1] = BigInt(UTIME_OMIT);
    else {
      t[i * 2] = BigInt(v.sec);
      t[i * 2 + 1] = BigInt(v.nsec);
    }
  };
  put(0, atime);
  put(1, mtime);
  check("utimensat", libc().utimensat(AT_FDCWD, cstr(path), t, flags), `"${path}"`);
}
