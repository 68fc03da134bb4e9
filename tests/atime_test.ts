/**
 * `mount --atime-mode`: reads leave atime alone (`noatime`, the default), set it when it is older
 * than mtime/ctime or a day (`relatime`), or set it on every read (`strictatime`), through a real
 * mount.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "./_libc.ts";
import { startSlayer } from "./_mount.ts";

const enc = new TextEncoder();

/** Reads `path` through a new handle, with the kernel's page cache dropped first. */
async function readFresh(path: string): Promise<void> {
  await Deno.writeTextFile("/proc/sys/vm/drop_caches", "3");
  const f = await Deno.open(path);
  try {
    const buf = new Uint8Array(16);
    await f.read(buf);
    await f.read(buf); // a second read through the same handle
  } finally {
    f.close();
  }
}

/** atime in seconds (from a fresh stat: the kernel drops its cached atime after a read). */
function atime(path: string): number {
  return Number(L.stat(path).atimeNs / 1_000_000_000n);
}

/** mtime in seconds. */
function mtimeOf(path: string): number {
  return Number(L.stat(path).mtimeNs / 1_000_000_000n);
}

const DAY = 24 * 3600;

for (const mode of ["noatime", "relatime", "strictatime"] as const) {
  Deno.test({
    name: `--atime-mode ${mode}`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const args = mode === "noatime" ? [] : ["--atime-mode", mode]; // noatime is the default
      await using fs = await startSlayer({ extraArgs: args });
      const f = `${fs.mnt}/f`;
      await Deno.writeFile(f, enc.encode("some data to read back"));
      const mtime = mtimeOf(f);
      // atime two days in the past, mtime as it was.
      const old = { sec: mtime - 2 * DAY, nsec: 0 };
      L.utimensat(f, old, { sec: mtime, nsec: 0 });
      assert.equal(atime(f), old.sec);

      await readFresh(f);
      const first = atime(f);
      if (mode === "noatime") {
        assert.equal(first, old.sec, "noatime: a read leaves atime");
        return;
      }
      assert.ok(first >= mtime, `${mode}: a read of a file with an old atime sets it (${first})`);

      // atime now newer than mtime and ctime, and less than a day old.
      L.utimensat(f, { sec: first + 1000, nsec: 0 }, { sec: mtime, nsec: 0 });
      const set = atime(f);
      await readFresh(f);
      if (mode === "relatime") {
        assert.equal(atime(f), set, "relatime: a fresh atime newer than mtime/ctime is kept");
        // A change makes the next read set it again.
        await Deno.writeFile(f, enc.encode("changed"), { append: true });
        L.utimensat(f, { sec: mtime - 10, nsec: 0 }, { sec: mtime, nsec: 0 });
        await readFresh(f);
        assert.ok(atime(f) >= mtime, "relatime: an atime older than mtime is set again");
      } else {
        assert.notEqual(atime(f), set, "strictatime: every read sets atime");
        assert.ok(atime(f) <= Math.ceil(Date.now() / 1000) + 1);
      }

      // Directories: a listing from the start counts as a read.
      const d = `${fs.mnt}/d`;
      await Deno.mkdir(d);
      const dm = mtimeOf(d);
      L.utimensat(d, { sec: dm - 2 * DAY, nsec: 0 }, { sec: dm, nsec: 0 });
      for await (const _ of Deno.readDir(d)) { /* list it */ }
      assert.ok(atime(d) >= dm, `${mode}: a listing sets the directory's atime`);
    },
  });
}
