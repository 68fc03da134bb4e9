/**
 * Persistence across unmount/remount and across a SIGKILL of the daemon.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "./_libc.ts";
import { isMounted, startSlayer } from "./_mount.ts";
import { pseudoRandom, sha256 } from "./posix/suite.ts";

const MiB = 1024 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** A recursive description of a tree: type, mode, size, content hash, link target, xattrs. */
async function describe(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  async function walk(rel: string): Promise<void> {
    const path = rel === "" ? root : `${root}/${rel}`;
    const names: string[] = [];
    for await (const e of Deno.readDir(path)) names.push(e.name);
    for (const name of names.sort()) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const p = `${root}/${r}`;
      const st = L.lstat(p);
      const type = st.mode & 0o170000;
      const common = `mode=${(st.mode & 0o7777).toString(8)} uid=${st.uid} gid=${st.gid} ` +
        `mtime=${st.mtimeNs} nlink=${st.nlink}`;
      if (type === 0o040000) {
        out[r] = `dir ${common} xattrs=${xattrs(p)}`;
        await walk(r);
      } else if (type === 0o120000) {
        out[r] = `symlink -> ${L.readlink(p)}`;
      } else if (type === 0o100000) {
        const data = await Deno.readFile(p);
        out[r] = `file ${common} size=${st.size} sha=${await sha256(data)} xattrs=${xattrs(p)}`;
      } else {
        out[r] = `special type=${type.toString(8)} rdev=${st.rdev} ${common}`;
      }
    }
  }
  function xattrs(p: string): string {
    return L.listxattr(p).filter((n) => n.startsWith("user.")).sort()
      .map((n) => `${n}=${dec.decode(L.getxattr(p, n))}`).join(",");
  }
  await walk("");
  return out;
}

async function populate(root: string): Promise<void> {
  await Deno.mkdir(`${root}/a/b/c`, { recursive: true });
  await Deno.writeFile(`${root}/small`, enc.encode("small file"));
  await Deno.writeFile(`${root}/a/b/c/big`, pseudoRandom(9 * MiB + 17, 1));
  await Deno.writeFile(`${root}/empty`, new Uint8Array(0));
  const fd = L.open(`${root}/sparse`, L.O.RDWR | L.O.CREAT);
  L.pwriteFull(fd, enc.encode("tail"), 20 * MiB);
  L.close(fd);
  L.symlink("a/b/c/big", `${root}/link`);
  L.symlink("dangling/target", `${root}/dangling`);
  L.link(`${root}/small`, `${root}/a/hard`);
  L.setxattr(`${root}/small`, "user.color", enc.encode("blue"));
  L.setxattr(`${root}/a`, "user.dir", enc.encode("yes"));
  L.chmod(`${root}/a/b`, 0o711);
  L.chown(`${root}/empty`, 65534, 65534);
  L.utimensat(`${root}/empty`, { sec: 1_234_567_890, nsec: 5 }, { sec: 1_234_567_891, nsec: 6 });
  L.mkfifo(`${root}/fifo`);
  for (let i = 0; i < 200; i++) await Deno.writeTextFile(`${root}/a/many-${i}`, `#${i}`);
  await Deno.rename(`${root}/a/many-0`, `${root}/renamed`);
  await Deno.remove(`${root}/a/many-1`);
}

Deno.test({
  name: "SlayerFS keeps files, dirs, links and xattrs across unmount and remount",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using fs = await startSlayer();
    await fs.guard(120_000, "populate", () => populate(fs.mnt));
    const before = await fs.guard(60_000, "describe", () => describe(fs.mnt));
    await fs.restart();
    assert.ok(isMounted(fs.mnt));
    const after = await fs.guard(60_000, "describe after remount", () => describe(fs.mnt));
    assert.deepEqual(after, before);
    assert.equal(dec.decode(await Deno.readFile(`${fs.mnt}/a/hard`)), "small file");
    assert.equal(L.lstat(`${fs.mnt}/a/hard`).ino, L.lstat(`${fs.mnt}/small`).ino);
  },
});

Deno.test({
  name: "SlayerFS keeps data fsync'ed or closed before a kill -9",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using fs = await startSlayer();
    const synced = pseudoRandom(6 * MiB + 5, 2);
    const closed = pseudoRandom(3 * MiB + 1, 3);
    await fs.guard(60_000, "write", async () => {
      const fd = L.open(`${fs.mnt}/synced`, L.O.RDWR | L.O.CREAT);
      try {
        L.pwriteFull(fd, synced, 0);
        L.fsync(fd);
      } finally {
        L.close(fd);
      }
      await Deno.mkdir(`${fs.mnt}/dir`);
      await Deno.writeFile(`${fs.mnt}/dir/closed`, closed);
      const dfd = L.open(`${fs.mnt}/dir`, L.O.RDONLY | L.O.DIRECTORY);
      L.fsync(dfd);
      L.close(dfd);
      // Data still being written (not synced, not closed) when the daemon dies may be lost.
      const open = await Deno.open(`${fs.mnt}/in-flight`, { write: true, create: true });
      await open.write(pseudoRandom(MiB, 4));
      await fs.kill9();
      try {
        open.close();
      } catch { /* the mount is dead */ }
    });
    await fs.restart();
    await fs.guard(60_000, "verify", async () => {
      assert.equal(await sha256(await Deno.readFile(`${fs.mnt}/synced`)), await sha256(synced));
      assert.equal(
        await sha256(await Deno.readFile(`${fs.mnt}/dir/closed`)),
        await sha256(closed),
      );
      // The filesystem stays usable after recovery.
      await Deno.writeTextFile(`${fs.mnt}/after`, "after");
      assert.equal(await Deno.readTextFile(`${fs.mnt}/after`), "after");
    });
  },
});
