/**
 * Mount tests of the FFI layer: real mounts through /dev/fuse, real syscalls (from this process
 * through Deno's off-thread fs ops, and from python3/ls subprocesses), against the RAM fixture.
 */

import assert from "node:assert/strict";
import type { FsOps } from "../core/fs_ops.ts";
import { forceUnmount, isMounted, mountFs, type MountOptions } from "./mod.ts";
import { RamFs } from "./testdata/ram_fs.ts";

/** Mounts `ops` in a fresh temp dir, runs `fn`, and always unmounts and removes the dir. */
async function withMount(
  fn: (mp: string, fs: RamFs) => Promise<void>,
  options: MountOptions = {},
  wrap: (fs: RamFs) => FsOps = (fs) => fs,
): Promise<void> {
  const mp = await Deno.makeTempDir({ prefix: "slayerfs-ffi-test-" });
  const fs = new RamFs();
  try {
    const session = await mountFs(wrap(fs), mp, options);
    try {
      assert.ok(isMounted(mp), "mounted");
      await fn(mp, fs);
    } finally {
      await session.unmount();
    }
    assert.ok(!isMounted(mp), "unmounted");
    assert.ok(fs.destroyed, "destroy called");
  } finally {
    if (isMounted(mp)) await forceUnmount(mp);
    await Deno.remove(mp, { recursive: true }).catch(() => {});
  }
}

/** Runs a python3 snippet and returns its stdout (throws with stderr on failure). */
async function py(code: string): Promise<string> {
  const out = await new Deno.Command("python3", { args: ["-c", code] }).output();
  const text = new TextDecoder();
  if (!out.success) throw new Error(`python3 failed: ${text.decode(out.stderr)}`);
  return text.decode(out.stdout).trim();
}

async function basicRoundTrip(mp: string): Promise<void> {
  const data = crypto.getRandomValues(new Uint8Array(65536));
  const big = new Uint8Array(3 * 1024 * 1024 + 123);
  for (let i = 0; i < big.length; i += 65536) big.set(data.subarray(0, big.length - i), i);
  await Deno.writeFile(`${mp}/a.bin`, big);
  const st = await Deno.stat(`${mp}/a.bin`);
  assert.equal(st.size, big.length);
  assert.ok(st.isFile);
  assert.equal(st.mode! & 0o777, 0o644);
  assert.deepEqual(await Deno.readFile(`${mp}/a.bin`), big);

  // Partial read at an offset, from another process: closing a file of our own mount from the
  // JS thread (FsFile.close() is synchronous and sends FLUSH) would deadlock the daemon.
  const part = await py(
    `f = open("${mp}/a.bin", "rb")\nf.seek(1000000)\nprint(list(f.read(10)))\nf.close()`,
  );
  assert.equal(part, JSON.stringify([...big.subarray(1_000_000, 1_000_010)]).replaceAll(",", ", "));

  await Deno.rename(`${mp}/a.bin`, `${mp}/b.bin`);
  await assert.rejects(Deno.stat(`${mp}/a.bin`), Deno.errors.NotFound);
  assert.equal((await Deno.stat(`${mp}/b.bin`)).size, big.length);

  await Deno.truncate(`${mp}/b.bin`, 5);
  assert.deepEqual(await Deno.readFile(`${mp}/b.bin`), big.subarray(0, 5));

  await Deno.symlink("b.bin", `${mp}/link`);
  assert.equal(await Deno.readLink(`${mp}/link`), "b.bin");
  assert.ok((await Deno.lstat(`${mp}/link`)).isSymlink);
  assert.equal((await Deno.stat(`${mp}/link`)).size, 5);

  await Deno.link(`${mp}/b.bin`, `${mp}/hard`);
  assert.equal((await Deno.stat(`${mp}/b.bin`)).nlink, 2);

  await Deno.mkdir(`${mp}/dir/sub`, { recursive: true });
  assert.ok((await Deno.stat(`${mp}/dir/sub`)).isDirectory);
  await assert.rejects(Deno.remove(`${mp}/dir`), (e: Error) => /not empty/i.test(e.message));
  await Deno.remove(`${mp}/dir`, { recursive: true });

  await Deno.chmod(`${mp}/hard`, 0o600);
  assert.equal((await Deno.stat(`${mp}/b.bin`)).mode! & 0o777, 0o600);
  const when = new Date("2001-02-03T04:05:06Z");
  await Deno.utime(`${mp}/hard`, when, when);
  assert.equal((await Deno.stat(`${mp}/hard`)).mtime?.getTime(), when.getTime());

  await Deno.remove(`${mp}/hard`);
  await Deno.remove(`${mp}/b.bin`);
  await Deno.remove(`${mp}/link`);
  const left = [];
  for await (const e of Deno.readDir(mp)) left.push(e.name);
  assert.deepEqual(left, []);
}

Deno.test("mountFs() serves stat, write, read, rename, truncate, symlink, link, unlink", async () => {
  await withMount(basicRoundTrip);
});

Deno.test("mountFs() with the JS-driven loop serves the same operations", async () => {
  await withMount(basicRoundTrip, { loop: "js" });
});

Deno.test("mountFs() with the JS loop and no spinning serves the same operations", async () => {
  await withMount(basicRoundTrip, { loop: "js", spinUs: 0 });
});

Deno.test("readdir lists a directory of 3000 entries", async () => {
  await withMount(async (mp) => {
    await py(
      `import os\nos.mkdir("${mp}/d")\nfor i in range(3000): open("${mp}/d/entry-%04d" % i, "w").close()`,
    );
    const names: string[] = [];
    for await (const e of Deno.readDir(`${mp}/d`)) {
      assert.ok(e.isFile);
      names.push(e.name);
    }
    names.sort();
    assert.equal(names.length, 3000);
    assert.equal(names[0], "entry-0000");
    assert.equal(names[2999], "entry-2999");
    assert.equal(new Set(names).size, 3000);
    const ls = await new Deno.Command("ls", { args: ["-f", `${mp}/d`] }).output();
    const lines = new TextDecoder().decode(ls.stdout).split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 3002); // with . and ..
  });
});

Deno.test("xattrs round-trip, including sizes above the first buffer guess", async () => {
  await withMount(async (mp) => {
    await Deno.writeTextFile(`${mp}/x`, "x");
    const out = await py(
      `import os\np = "${mp}/x"\nos.setxattr(p, "user.small", b"v1")\n` +
        `os.setxattr(p, "user.big", b"y" * 5000)\n` +
        `print(os.getxattr(p, "user.small").decode(), len(os.getxattr(p, "user.big")),` +
        ` ",".join(sorted(os.listxattr(p))))\n` +
        `os.removexattr(p, "user.small")\n` +
        `try:\n  os.getxattr(p, "user.small")\nexcept OSError as e:\n  print(e.errno)\n` +
        `try:\n  os.setxattr(p, "user.big", b"z", os.XATTR_CREATE)\nexcept OSError as e:\n  print(e.errno)`,
    );
    assert.equal(out, "v1 5000 user.big,user.small\n61\n17");
    const getfattr = await new Deno.Command("getfattr", { args: ["-d", `${mp}/x`] }).output()
      .catch(() => undefined);
    if (getfattr?.success) {
      assert.match(new TextDecoder().decode(getfattr.stdout), /user\.big="y{5000}"/);
    }
  });
});

Deno.test("statfs reports the filesystem's numbers", async () => {
  await withMount(async (mp) => {
    const out = await py(
      `import os\ns = os.statvfs("${mp}")\nprint(s.f_bsize, s.f_blocks, s.f_bavail, s.f_namemax)`,
    );
    assert.equal(out, `4096 ${1 << 20} ${1 << 19} 255`);
  });
});

Deno.test("flock and POSIX locks reach the filesystem", async () => {
  await withMount(async (mp) => {
    await Deno.writeTextFile(`${mp}/lock`, "");
    const out = await py(
      `import fcntl, os\na = os.open("${mp}/lock", os.O_RDWR)\nb = os.open("${mp}/lock", os.O_RDWR)\n` +
        `fcntl.flock(a, fcntl.LOCK_EX)\n` +
        `try:\n  fcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)\n  print("taken")\n` +
        `except BlockingIOError as e:\n  print("busy", e.errno)\n` +
        `fcntl.flock(a, fcntl.LOCK_UN)\nfcntl.flock(b, fcntl.LOCK_EX | fcntl.LOCK_NB)\nprint("ok")\n` +
        `fcntl.lockf(a, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0)\nprint("posix")\n` +
        `os.close(a)\nos.close(b)`,
    );
    assert.equal(out, "busy 11\nok\nposix");
  }, { flockLocks: true }); // flock through the filesystem, not the kernel
});

Deno.test("errors: ENOENT, negative entries, EIO from a throwing op, ENOSYS from a missing op", async () => {
  await withMount(
    async (mp) => {
      await assert.rejects(Deno.stat(`${mp}/missing`), Deno.errors.NotFound);
      await assert.rejects(Deno.stat(`${mp}/missing`), Deno.errors.NotFound); // cached miss
      await Deno.writeTextFile(`${mp}/missing`, "now here"); // the create replaces the miss
      assert.equal(await Deno.readTextFile(`${mp}/missing`), "now here");

      await Deno.symlink("target", `${mp}/boom`);
      await assert.rejects(
        Deno.readLink(`${mp}/boom`),
        (e: Error) => /os error 5\b/.test(e.message),
      );

      const out = await py(
        `import os\ntry:\n  os.mkfifo("${mp}/fifo")\n  print("made")\nexcept OSError as e:\n  print(e.errno)`,
      );
      assert.equal(out, "38");
      // The mount still works after the failures.
      assert.equal(await Deno.readTextFile(`${mp}/missing`), "now here");
    },
    { negativeTimeout: 10 },
    (fs) =>
      new Proxy(fs, {
        get(target, key, receiver) {
          if (key === "mknod") return undefined;
          if (key === "readlink") {
            return () => {
              throw new Error("Simulated failure of readlink (expected in this test)");
            };
          }
          return Reflect.get(target, key, receiver);
        },
      }),
  );
});

Deno.test("concurrent requests are served concurrently", async () => {
  await withMount(async (mp) => {
    await Promise.all(
      Array.from({ length: 64 }, (_, i) => Deno.writeTextFile(`${mp}/c${i}`, `${i}`)),
    );
    const texts = await Promise.all(
      Array.from({ length: 64 }, (_, i) => Deno.readTextFile(`${mp}/c${i}`)),
    );
    assert.deepEqual(texts, Array.from({ length: 64 }, (_, i) => `${i}`));
  });
});

for (const loop of ["mt", "js"] as const) {
  Deno.test(`an external unmount ends the ${loop} session and resolves closed`, async () => {
    const mp = await Deno.makeTempDir({ prefix: "slayerfs-ffi-test-" });
    const fs = new RamFs();
    try {
      const session = await mountFs(fs, mp, { loop });
      await Deno.writeTextFile(`${mp}/f`, "x");
      const um = await new Deno.Command("fusermount3", { args: ["-u", mp] }).output();
      assert.ok(um.success, new TextDecoder().decode(um.stderr));
      await session.closed;
      assert.ok(!isMounted(mp));
      assert.ok(fs.destroyed);
      await session.unmount(); // idempotent
    } finally {
      if (isMounted(mp)) await forceUnmount(mp);
      await Deno.remove(mp, { recursive: true }).catch(() => {});
    }
  });
}

Deno.test("unmount() with a file still open does not hang", async () => {
  const mp = await Deno.makeTempDir({ prefix: "slayerfs-ffi-test-" });
  try {
    const session = await mountFs(new RamFs(), mp, { unmountTimeoutMs: 2000 });
    const holder = new Deno.Command("sh", {
      args: ["-c", `exec 3<>"${mp}/held"; echo ready; sleep 30`],
      stdout: "piped",
    }).spawn();
    const reader = holder.stdout.getReader();
    await reader.read();
    const t0 = performance.now();
    await session.unmount();
    assert.ok(performance.now() - t0 < 8000);
    assert.ok(!isMounted(mp));
    holder.kill();
    reader.releaseLock();
    await holder.stdout.cancel();
    await holder.status;
  } finally {
    if (isMounted(mp)) await forceUnmount(mp);
    await Deno.remove(mp, { recursive: true }).catch(() => {});
  }
});

Deno.test("handOver() stops serving at a request boundary; resume() serves what waited", async () => {
  const mp = await Deno.makeTempDir({ prefix: "slayerfs-ffi-test-" });
  const mt = await Deno.makeTempDir({ prefix: "slayerfs-ffi-test-" });
  try {
    const session = await mountFs(new RamFs(), mp, { loop: "js" });
    try {
      await Deno.writeTextFile(`${mp}/f`, "served");
      const fd = await session.handOver(5000);
      assert.equal(fd, session.fd);
      // A request made now waits in the kernel: nothing reads /dev/fuse.
      const cat = new Deno.Command("cat", { args: [`${mp}/g`], stderr: "piped" }).spawn();
      let done = false;
      const out = cat.output().finally(() => done = true);
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(!done, "the request waits while the session is handed over");
      session.resume();
      const r = await Promise.race([
        out,
        new Promise<never>((_, rej) => setTimeout(() => rej(new Error("not served")), 10_000)),
      ]);
      assert.equal(r.code, 1); // served: ENOENT
      assert.match(new TextDecoder().decode(r.stderr), /No such file/);
      assert.equal(await Deno.readTextFile(`${mp}/f`), "served");
    } finally {
      await session.unmount();
    }
    // libfuse's own loop cannot stop at a request boundary: a handover is refused.
    const threaded = await mountFs(new RamFs(), mt, { loop: "mt" });
    try {
      await assert.rejects(threaded.handOver(1000), /"js" request loop/);
    } finally {
      await threaded.unmount();
    }
  } finally {
    for (const dir of [mp, mt]) {
      if (isMounted(dir)) await forceUnmount(dir);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
});
