import assert from "node:assert/strict";
import { memVolume } from "./_test_util.ts";
import {
  type Ctx,
  F_RDLCK,
  F_UNLCK,
  F_WRLCK,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  type Ino,
  LOCK_EX,
  LOCK_NB,
  LOCK_SH,
  nameFromText,
  O_APPEND,
  O_CREAT,
  O_RDWR,
  O_WRONLY,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  ROOT_CTX,
  ROOT_INO,
  S_IFIFO,
  S_ISGID,
  S_ISUID,
  SEEK_DATA,
  SEEK_HOLE,
  XATTR_CREATE,
  XATTR_REPLACE,
} from "./types.ts";
import type { Volume } from "./volume.ts";

const te = new TextEncoder();
const small = { blockSize: 64 << 10, chunkSize: 256 << 10 };

function rand(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function withVol(fn: (vol: Volume) => Promise<void>, opts = small): Promise<void> {
  const { vol } = await memVolume(opts);
  try {
    await fn(vol);
  } finally {
    await vol.close();
  }
}

Deno.test("Vfs reads back random writes at any offset, across blocks and chunks", async () => {
  await withVol(async (vol) => {
    const model = new Uint8Array(1 << 20);
    let size = 0;
    await using f = await vol.open("/f", O_RDWR | O_CREAT);
    for (let i = 0; i < 200; i++) {
      const off = Math.floor(Math.random() * 900_000);
      const len = 1 + Math.floor(Math.random() * 100_000);
      const data = rand(len, i + 1);
      await f.write(off, data);
      model.set(data, off);
      size = Math.max(size, off + len);
      if (i % 17 === 0) await f.sync();
      if (i % 5 === 0) {
        const ro = Math.floor(Math.random() * size);
        const got = await f.read(ro, 70_000);
        assert.deepEqual(got, model.subarray(ro, Math.min(size, ro + 70_000)));
      }
    }
    await f.close();
    assert.deepEqual(await vol.readFile("/f"), model.subarray(0, size));
  });
});

Deno.test("Vfs truncate shrinks, then growing reads zeros", async () => {
  await withVol(async (vol) => {
    const data = rand(600_000);
    await vol.writeFile("/t", data);
    await vol.truncate("/t", 300_001);
    await vol.truncate("/t", 700_000);
    const got = await vol.readFile("/t");
    assert.equal(got.length, 700_000);
    assert.deepEqual(got.subarray(0, 300_001), data.subarray(0, 300_001));
    assert.ok(got.subarray(300_001).every((b) => b === 0));
  });
});

Deno.test("Vfs frees blocks of deleted files, but not of slices shared by copy_file_range", async () => {
  const { vol, store } = await memVolume(small);
  try {
    const data = rand(500_000);
    await vol.writeFile("/a", data);
    const blocks = store.size;
    assert.ok(blocks >= 8);
    const a = await vol.resolve("/a");
    await using src = await vol.open("/a");
    await using dst = await vol.open("/b", O_RDWR | O_CREAT);
    const n = await vol.vfs.copyFileRange(
      ROOT_CTX,
      a.ino,
      src.fh,
      1000,
      dst.ino,
      dst.fh,
      0,
      400_000,
      0,
    );
    assert.equal(n, 400_000);
    assert.equal(store.size, blocks, "copy shares slices: no new blocks");
    await src.close();
    await dst.close();
    await vol.unlink("/a");
    await vol.vfs.close().catch(() => {});
    assert.deepEqual(await vol.readFile("/b"), data.subarray(1000, 401_000));
    await vol.unlink("/b");
    // Deletion is in the background; wait for it.
    for (let i = 0; i < 100 && store.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(store.size, 0);
  } finally {
    await vol.close();
  }
});

Deno.test("Vfs keeps an unlinked file readable and writable until the last close", async () => {
  const { vol, store } = await memVolume(small);
  try {
    await vol.writeFile("/u", rand(100_000));
    const f = await vol.open("/u", O_RDWR);
    await vol.unlink("/u");
    await assert.rejects(vol.stat("/u"), { code: "ENOENT" });
    await f.write(100_000, te.encode("more"));
    assert.equal((await f.read(100_000, 10)).length, 4);
    assert.equal((await f.stat()).nlink, 0);
    await f.close();
    for (let i = 0; i < 100 && store.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(store.size, 0);
  } finally {
    await vol.close();
  }
});

Deno.test("Vfs rename follows Linux: NOREPLACE, EXCHANGE, subtree, ENOTEMPTY, types", async () => {
  await withVol(async (vol) => {
    await vol.mkdir("/d1/sub", { recursive: true });
    await vol.mkdir("/d2");
    await vol.writeFile("/d1/f", te.encode("f"));
    await vol.writeFile("/d2/g", te.encode("g"));
    await assert.rejects(vol.rename("/d1", "/d1/sub/x"), { code: "EINVAL" });
    await assert.rejects(vol.rename("/d1/f", "/d2/g", RENAME_NOREPLACE), { code: "EEXIST" });
    await assert.rejects(vol.rename("/d1", "/d2"), { code: "ENOTEMPTY" });
    await assert.rejects(vol.rename("/d1/f", "/d1/sub"), { code: "EISDIR" });
    await assert.rejects(vol.rename("/d1/sub", "/d2/g"), { code: "ENOTDIR" });
    await vol.rename("/d1/sub", "/d2/g", RENAME_EXCHANGE);
    assert.equal((await vol.lstat("/d1/sub")).mode & 0o170000, 0o100000);
    assert.equal((await vol.stat("/d2/g")).nlink, 2);
    assert.equal((await vol.stat("/d1")).nlink, 2, "d1 lost a subdirectory");
    assert.equal((await vol.stat("/d2")).nlink, 3, "d2 gained one");
    const g = await vol.stat("/d2/g");
    const dotdot = await vol.vfs.lookup(ROOT_CTX, g.ino, "..");
    assert.equal(dotdot.ino, (await vol.stat("/d2")).ino);
    await vol.rename("/d1/f", "/d1/sub"); // file over file replaces it
    assert.deepEqual(await vol.readFile("/d1/sub"), te.encode("f"));
    await vol.mkdir("/e");
    await vol.rename("/d2/g", "/e2");
    assert.equal((await vol.stat("/")).nlink, 6); // ., d1, d2, e, e2 (+ parent link)
  });
});

Deno.test("Vfs hard links share data and count links", async () => {
  await withVol(async (vol) => {
    await vol.writeFile("/x", te.encode("hello"));
    await vol.link("/x", "/y");
    assert.equal((await vol.stat("/x")).nlink, 2);
    await vol.unlink("/x");
    assert.deepEqual(await vol.readFile("/y"), te.encode("hello"));
    await vol.mkdir("/dir");
    await assert.rejects(vol.link("/dir", "/dir2"), { code: "EPERM" });
  });
});

Deno.test("Vfs xattrs honour XATTR_CREATE and XATTR_REPLACE", async () => {
  await withVol(async (vol) => {
    await vol.writeFile("/x", te.encode("x"));
    const ino = (await vol.stat("/x")).ino;
    const v = vol.vfs;
    const n = nameFromText("user.k");
    await assert.rejects(v.getxattr(ROOT_CTX, ino, n), { code: "ENODATA" });
    await assert.rejects(v.setxattr(ROOT_CTX, ino, n, te.encode("a"), XATTR_REPLACE), {
      code: "ENODATA",
    });
    await v.setxattr(ROOT_CTX, ino, n, te.encode("a"), XATTR_CREATE);
    await assert.rejects(v.setxattr(ROOT_CTX, ino, n, te.encode("b"), XATTR_CREATE), {
      code: "EEXIST",
    });
    await v.setxattr(ROOT_CTX, ino, n, te.encode("b"), XATTR_REPLACE);
    assert.deepEqual(await v.getxattr(ROOT_CTX, ino, n), te.encode("b"));
    assert.deepEqual(await v.listxattr(ROOT_CTX, ino), [n]);
    await v.removexattr(ROOT_CTX, ino, n);
    await assert.rejects(v.removexattr(ROOT_CTX, ino, n), { code: "ENODATA" });
  });
});

Deno.test("Vfs remembers missing xattrs for a second, never past its own setxattr", async () => {
  await withVol(async (vol) => {
    const v = vol.vfs;
    const { attr } = await v.create(ROOT_CTX, 1 as Ino, nameFromText("new"), 0o644, O_RDWR);
    const cap = nameFromText("security.capability");
    // A file created here has no xattrs: answered without the metadata engine.
    await assert.rejects(v.getxattr(ROOT_CTX, attr.ino, cap), { code: "ENODATA" });
    await v.setxattr(ROOT_CTX, attr.ino, cap, te.encode("c"), 0);
    assert.deepEqual(await v.getxattr(ROOT_CTX, attr.ino, cap), te.encode("c"));
    // Another writer of the same metadata (another host, later) is seen once the miss expires.
    const other = nameFromText("user.other");
    await assert.rejects(v.getxattr(ROOT_CTX, attr.ino, other), { code: "ENODATA" });
    await v.meta.setxattr(attr.ino, other, te.encode("o"), 0);
    await assert.rejects(v.getxattr(ROOT_CTX, attr.ino, other), { code: "ENODATA" });
    await new Promise((r) => setTimeout(r, 1100));
    assert.deepEqual(await v.getxattr(ROOT_CTX, attr.ino, other), te.encode("o"));
  });
});

Deno.test("Vfs fallocate punches holes and lseek finds data and holes", async () => {
  await withVol(async (vol) => {
    await vol.writeFile("/s", rand(300_000));
    await using f = await vol.open("/s", O_RDWR);
    const v = vol.vfs;
    await v.fallocate(
      ROOT_CTX,
      f.ino,
      f.fh,
      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
      0,
      100_000,
    );
    const got = await f.read(0, 300_000);
    assert.ok(got.subarray(0, 100_000).every((b) => b === 0));
    assert.equal(got.length, 300_000);
    assert.equal(await v.lseek(ROOT_CTX, f.ino, f.fh, 0, SEEK_DATA), 100_000);
    assert.equal(await v.lseek(ROOT_CTX, f.ino, f.fh, 0, SEEK_HOLE), 0);
    assert.equal(await v.lseek(ROOT_CTX, f.ino, f.fh, 150_000, SEEK_HOLE), 300_000);
    await assert.rejects(v.lseek(ROOT_CTX, f.ino, f.fh, 300_000, SEEK_DATA), { code: "ENXIO" });
    await v.fallocate(ROOT_CTX, f.ino, f.fh, FALLOC_FL_KEEP_SIZE, 0, 1_000_000);
    assert.equal((await f.stat()).size, 300_000);
    await v.fallocate(ROOT_CTX, f.ino, f.fh, 0, 0, 1_000_000);
    assert.equal((await f.stat()).size, 1_000_000);
    await assert.rejects(v.fallocate(ROOT_CTX, f.ino, f.fh, FALLOC_FL_PUNCH_HOLE, 0, 1), {
      code: "ENOTSUP",
    });
  });
});

Deno.test("Vfs O_APPEND writes at the end", async () => {
  await withVol(async (vol) => {
    await vol.writeFile("/a", te.encode("abc"));
    await using f = await vol.open("/a", O_WRONLY | O_APPEND);
    await f.write(0, te.encode("def"));
    await f.close();
    assert.equal(new TextDecoder().decode(await vol.readFile("/a")), "abcdef");
  });
});

Deno.test("Vfs setattr and access apply the permission rules (permissions_test.ts)", async () => {
  await withVol(async (vol) => {
    await vol.writeFile("/p", te.encode("x"));
    const ino = (await vol.stat("/p")).ino;
    const v = vol.vfs;
    const user: Ctx = { uid: 1000, gid: 1000, pid: 1, umask: 0o022, groups: () => [1000] };
    await assert.rejects(v.setattr(user, ino, { mode: 0o777 }), { code: "EPERM" });
    await v.setattr(ROOT_CTX, ino, { mode: 0o6755 });
    await v.setattr(ROOT_CTX, ino, { uid: 1000, gid: 1000 });
    assert.equal((await v.getattr(ROOT_CTX, ino)).mode & (S_ISUID | S_ISGID), 0);
    await v.setattr(user, ino, { mtime: { sec: 5, nsec: 6 } });
    assert.deepEqual((await v.getattr(ROOT_CTX, ino)).mtime, { sec: 5, nsec: 6 });
    const other: Ctx = { uid: 2000, gid: 2000, pid: 1, umask: 0, groups: () => [] };
    await assert.rejects(v.access(other, ino, 2), { code: "EACCES" });
    await v.access(other, ino, 4);
  });
});

Deno.test("Vfs mknod makes FIFOs and readdir is stable across unlinks", async () => {
  await withVol(async (vol) => {
    const v = vol.vfs;
    const fifo = await v.mknod(ROOT_CTX, ROOT_INO, "fifo", S_IFIFO | 0o644, 0);
    assert.equal(fifo.mode & 0o170000, S_IFIFO);
    for (let i = 0; i < 300; i++) await vol.writeFile(`/f${i}`, new Uint8Array(0));
    const { fh } = await v.opendir(ROOT_CTX, ROOT_INO, 0);
    const seen = new Set<string>();
    let off = 0;
    for (;;) {
      const page = await v.readdir(ROOT_CTX, ROOT_INO, fh, off, 50, true);
      if (!page.length) break;
      for (const e of page) {
        assert.ok(!seen.has(e.name), `seen twice: ${e.name}`);
        seen.add(e.name);
      }
      off = page.at(-1)!.next;
      // Delete some entries ahead of the cursor.
      for (let k = 0; k < 5; k++) await vol.unlink(`/f${(off * 7 + k) % 300}`).catch(() => {});
    }
    await v.releasedir(ROOT_CTX, ROOT_INO, fh);
    assert.ok(seen.has(".") && seen.has("..") && seen.has("fifo"));
  });
});

Deno.test("Vfs locks: flock conflicts and POSIX ranges with getlk", async () => {
  await withVol(async (vol) => {
    await vol.writeFile("/l", te.encode("x"));
    const ino = (await vol.stat("/l")).ino as Ino;
    const locks = vol.vfs.locks;
    await locks.flock(ino, 1n, LOCK_SH);
    await locks.flock(ino, 2n, LOCK_SH | LOCK_NB);
    await assert.rejects(locks.flock(ino, 3n, LOCK_EX | LOCK_NB), { code: "EAGAIN" });
    const waiting = locks.flock(ino, 3n, LOCK_EX);
    await locks.releaseFlock(ino, 1n);
    await locks.releaseFlock(ino, 2n);
    await waiting;
    await locks.setlk(ino, 10n, { type: F_WRLCK, start: 0, end: 99, pid: 10 }, false);
    await locks.setlk(ino, 11n, { type: F_RDLCK, start: 100, end: Infinity, pid: 11 }, false);
    const c = await locks.getlk(ino, 11n, { type: F_WRLCK, start: 50, end: 60, pid: 11 });
    assert.deepEqual(c, { type: F_WRLCK, start: 0, end: 99, pid: 10 });
    await assert.rejects(
      locks.setlk(ino, 11n, { type: F_RDLCK, start: 0, end: 0, pid: 11 }, false),
      { code: "EAGAIN" },
    );
    const w = locks.setlk(ino, 11n, { type: F_WRLCK, start: 10, end: 20, pid: 11 }, true);
    await locks.setlk(ino, 10n, { type: F_UNLCK, start: 0, end: 49, pid: 10 }, false);
    await w;
    assert.equal(
      (await locks.getlk(ino, 12n, { type: F_RDLCK, start: 60, end: 60, pid: 12 })).type,
      F_WRLCK,
    );
    await locks.releasePosix(ino, 10n);
    assert.equal(
      (await locks.getlk(ino, 12n, { type: F_RDLCK, start: 60, end: 60, pid: 12 })).type,
      F_UNLCK,
    );
  });
});

Deno.test("Vfs compacts long slice lists and still reads the newest data", async () => {
  const { vol, store } = await memVolume(small);
  try {
    const model = new Uint8Array(200_000);
    let size = 0;
    await using f = await vol.open("/c", O_RDWR | O_CREAT);
    for (let i = 0; i < 300; i++) {
      const off = (i % 13) * 3000 + (i % 3) * 60_000;
      const d = rand(5000, i + 7);
      await f.write(off, d);
      model.set(d, off);
      size = Math.max(size, off + d.length);
      await f.sync(); // one slice per write
    }
    const chunks = await vol.vfs.meta.listChunks(f.ino);
    assert.ok(chunks[0]!.records.length < 300, `${chunks[0]!.records.length} records`);
    assert.deepEqual(await f.read(0, 200_000), model.subarray(0, size));
    await f.close();
    await vol.unlink("/c");
    for (let i = 0; i < 100 && store.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(store.size, 0, "every slice freed");
  } finally {
    await vol.close();
  }
});

Deno.test("Vfs stores compressible blocks with LZ4, incompressible ones raw, and reads both", async () => {
  const { vol, store } = await memVolume(small);
  try {
    const text = te.encode("the quick brown fox jumps over the lazy dog\n".repeat(10_000));
    await vol.writeFile("/text", text);
    const noise = new Uint8Array(300_000);
    for (let i = 0; i < noise.length; i += 65536) {
      crypto.getRandomValues(noise.subarray(i, i + 65536));
    }
    await vol.writeFile("/random", noise);
    let stored = 0;
    for (let page = await store.list(""); page.objects.length;) {
      for (const o of page.objects) stored += o.size;
      if (!page.truncated) break;
      page = await store.list("", { startAfter: page.objects.at(-1)!.key });
    }
    assert.ok(stored < text.length / 5 + 300_000 + 1000, `stored ${stored} bytes`);
    assert.ok(stored >= 300_000, "random data is stored whole");
    const a = await vol.resolve("/text");
    assert.deepEqual(await vol.readFile("/text"), text);
    assert.deepEqual(await vol.readFile("/random"), noise);
    assert.equal(a.size, text.length);
  } finally {
    await vol.close();
  }
});

Deno.test("Vfs returns EIO, never wrong bytes, for a corrupt block", async () => {
  const { kv: kv0, store: store0, vol } = await memVolume(small);
  const kv = kv0.share();
  const store = store0.share();
  await vol.writeFile("/c", rand(200_000, 3));
  await vol.close();
  // Flip one byte of every stored block.
  const page = await store.list("chunks/");
  assert.ok(page.objects.length > 0);
  for (const o of page.objects) {
    const data = await store.get(o.key);
    data[data.length >> 1]! ^= 0x55;
    await store.put(o.key, data);
  }
  const { Volume } = await import("./volume.ts");
  const errors: unknown[] = [];
  const vol2 = await Volume.openWith(kv, store, { onError: (e) => errors.push(e) });
  try {
    await assert.rejects(vol2.readFile("/c"), { code: "EIO" });
    assert.match(String(errors[0]), /chunks\//, "the block key is logged");
  } finally {
    await vol2.close();
  }
});

async function storedBytes(store: { list: MemoryStoreList }): Promise<number> {
  let total = 0;
  let page = await store.list("");
  for (;;) {
    for (const o of page.objects) total += o.size;
    if (!page.truncated) return total;
    page = await store.list("", { startAfter: page.objects.at(-1)!.key });
  }
}
type MemoryStoreList = (
  prefix: string,
  o?: { startAfter?: string },
) => Promise<{ objects: { key: string; size: number }[]; truncated: boolean }>;

async function settle(cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !await cond(); i++) await new Promise((r) => setTimeout(r, 10));
}

Deno.test("Vfs dedup stores identical blocks once and frees them with the last reference", async () => {
  const { vol, store } = await memVolume({ ...small, dedup: true });
  try {
    const noise = new Uint8Array(1 << 20);
    for (let i = 0; i < noise.length; i += 65536) {
      crypto.getRandomValues(noise.subarray(i, i + 65536));
    }
    await vol.writeFile("/one", noise);
    const after1 = await storedBytes(store);
    await vol.writeFile("/two", noise);
    const after2 = await storedBytes(store);
    assert.ok(after1 >= noise.length, `first copy stored (${after1})`);
    assert.ok(after2 - after1 < 1024, `second copy adds ${after2 - after1} bytes`);
    await vol.unlink("/one");
    assert.deepEqual(await vol.readFile("/two"), noise);
    await vol.unlink("/two");
    await settle(async () => await storedBytes(store) === 0);
    assert.equal(await storedBytes(store), 0);
  } finally {
    await vol.close();
  }
});

Deno.test("Vfs dedup re-uploads a block whose shared copy vanished before the commit", async () => {
  const { vol, store } = await memVolume({ ...small, dedup: true });
  try {
    const noise = new Uint8Array(4 * small.blockSize);
    crypto.getRandomValues(noise.subarray(0, 65536));
    for (let i = 65536; i < noise.length; i += 65536) noise.set(noise.subarray(0, 65536), i);
    noise[noise.length - 1] = 1; // blocks differ from each other only at the end
    await vol.writeFile("/a", noise);
    await using b = await vol.open("/b", O_RDWR | O_CREAT);
    await b.write(0, noise); // full blocks upload now; all are found shared and skipped
    await vol.unlink("/a");
    await settle(async () => await storedBytes(store) === 0);
    await b.close(); // the commit finds the blobs gone and uploads them
    assert.deepEqual(await vol.readFile("/b"), noise);
    assert.ok(await storedBytes(store) > 0);
  } finally {
    await vol.close();
  }
});

Deno.test("Vfs keeps small files in the metadata engine, not the block store", async () => {
  const { vol, store } = await memVolume(small);
  try {
    const data = te.encode("a small file\n".repeat(100));
    await vol.writeFile("/small", data);
    assert.equal(store.size, 0, "no object for a small file");
    assert.deepEqual(await vol.readFile("/small"), data);
    const big = rand(100_000, 4);
    await vol.writeFile("/big", big); // one 64K block in the store, the 34,464-byte tail too
    assert.ok(store.size >= 1);
    await using f = await vol.open("/small", O_RDWR);
    await f.write(5, te.encode("MIDDLE"));
    await f.close();
    const expect = data.slice();
    expect.set(te.encode("MIDDLE"), 5);
    assert.deepEqual(await vol.readFile("/small"), expect);
    await vol.unlink("/small");
    await vol.unlink("/big");
    await settle(() => Promise.resolve(store.size === 0));
    assert.equal(store.size, 0);
  } finally {
    await vol.close();
  }
});

Deno.test("Vfs commits a utimensat, chown and chmod of a file being written with its writes", async () => {
  const { vol, kv } = await memVolume(small);
  const txn = kv.txn.bind(kv);
  let writes = 0;
  kv.txn = (fn, o) => (o?.readOnly || writes++, txn(fn, o));
  try {
    const v = vol.vfs;
    await using f = await vol.open("/t", O_WRONLY | O_CREAT, 0o600);
    await f.write(0, rand(5000));
    const t = { sec: 1_700_000_000, nsec: 5 };
    writes = 0;
    await v.setattr(ROOT_CTX, f.ino, { mtime: t }); // what tar -x sends before each close
    await v.setattr(ROOT_CTX, f.ino, { uid: 1234, gid: 5678 });
    const seen = await v.setattr(ROOT_CTX, f.ino, { mode: 0o4750 });
    assert.equal(writes, 0, "held until the writes commit");
    for (const a of [seen, await v.getattr(ROOT_CTX, f.ino)]) {
      assert.deepEqual([a.mode & 0o7777, a.uid, a.gid, a.mtime, a.size], [
        0o4750,
        1234,
        5678,
        t,
        5000,
      ]);
    }
    const user: Ctx = { ...ROOT_CTX, uid: 1000, gid: 1000, groups: () => [] };
    await assert.rejects(v.setattr(user, f.ino, { mode: 0o777 }), { code: "EPERM" });
    await f.close();
    assert.equal(writes, 1, "the data and the attributes in one transaction");
    const a = await v.meta.getattr(f.ino);
    assert.deepEqual([a.mode & 0o7777, a.uid, a.gid, a.mtime, a.size], [
      0o4750,
      1234,
      5678,
      t,
      5000,
    ]);
    // A write after an explicit mtime sets the time again.
    await using g = await vol.open("/t", O_WRONLY);
    await g.write(0, rand(10));
    await v.setattr(ROOT_CTX, g.ino, { mtime: t });
    await g.write(10, rand(10));
    await g.close();
    assert.ok((await v.meta.getattr(g.ino)).mtime.sec > t.sec);
  } finally {
    await vol.close();
  }
});
