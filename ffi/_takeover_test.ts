import { deepEqual, equal, ok, rejects } from "node:assert/strict";
import {
  acceptUnix,
  closeFd,
  connectUnix,
  FRAME_BYTES,
  listenUnix,
  recvMessage,
  sendMessage,
} from "./_scm_rights.ts";
import { kernelFlags } from "./_takeover.ts";
import { HandleMap } from "./_handle_map.ts";
import { FUSE_CAP } from "./libfuse.ts";
import type { FsOps } from "../core/fs_ops.ts";
import type { Ctx, Fh, Ino, Opened } from "../core/types.ts";
import { loadLibc } from "../core/libc.ts";

Deno.test("sendMessage() passes JSON of many frames and a working descriptor", async () => {
  const dir = await Deno.makeTempDir();
  const libc = loadLibc();
  const listener = listenUnix(`${dir}/s.sock`);
  const client = connectUnix(`${dir}/s.sock`);
  const server = await acceptUnix(listener, 5000);
  ok(server !== undefined);
  const pipe = new Int32Array(2);
  equal(libc.pipe2(pipe, 0o2000000), 0);
  try {
    const big = "x".repeat(FRAME_BYTES * 2 + 17);
    sendMessage(client, { big, n: 1 }, pipe[1]);
    const got = await recvMessage<{ big: string; n: number }>(server, 5000);
    ok(got !== undefined && got.fd !== undefined);
    equal(got.value.big, big);
    equal(got.value.n, 1);
    ok(got.fd !== pipe[1], "a new descriptor in the receiver");
    // Bytes written to the received descriptor come out of the original pipe.
    equal(Number(libc.write(got.fd, new TextEncoder().encode("hi"), 2n)), 2);
    const buf = new Uint8Array(2);
    equal(Number(libc.read(pipe[0]!, buf, 2n)), 2);
    equal(new TextDecoder().decode(buf), "hi");
    closeFd(got.fd);
    // A message without a descriptor, then the peer's close.
    sendMessage(client, { n: 2 });
    deepEqual(await recvMessage(server, 5000), { value: { n: 2 } });
    closeFd(client);
    equal(await recvMessage(server, 5000), undefined);
  } finally {
    for (const fd of [server, listener, pipe[0]!, pipe[1]!]) closeFd(fd);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kernelFlags() gives back the capabilities libfuse's do_init derives", () => {
  const caps = FUSE_CAP.ASYNC_READ | FUSE_CAP.POSIX_LOCKS | FUSE_CAP.HANDLE_KILLPRIV |
    FUSE_CAP.POSIX_ACL | FUSE_CAP.READDIRPLUS;
  const flags = kernelFlags(caps);
  equal(flags & 1, 1); // FUSE_ASYNC_READ
  equal(flags & 2, 2); // FUSE_POSIX_LOCKS
  equal(flags & (1 << 19), 1 << 19); // FUSE_HANDLE_KILLPRIV (libfuse's bit 20)
  equal(flags & (1 << 20), 1 << 20); // FUSE_POSIX_ACL (libfuse's bit 19)
  equal(flags & (1 << 13), 1 << 13); // FUSE_DO_READDIRPLUS
  equal(flags & (1 << 22), 1 << 22); // FUSE_MAX_PAGES, always
  equal(flags & (1 << 16), 0); // no writeback cache offered
});

Deno.test("HandleMap maps kernel handles and restores them under their numbers", async () => {
  const ctx = { uid: 0, gid: 0, pid: 0, umask: 0, groups: () => [] } as Ctx;
  let next = 100;
  const seen: [string, number][] = [];
  const inner = {
    open: (_c: Ctx, _ino: Ino, flags: number): Promise<Opened> => {
      seen.push(["open", flags]);
      return Promise.resolve({ fh: next++ as Fh });
    },
    read: (_c: Ctx, _ino: Ino, fh: Fh) => {
      seen.push(["read", fh]);
      return Promise.resolve(new Uint8Array(0));
    },
    release: (_c: Ctx, _ino: Ino, fh: Fh) => {
      seen.push(["release", fh]);
      return Promise.resolve();
    },
  } as unknown as FsOps;
  const a = new HandleMap();
  const ops = a.wrap(inner);
  equal(ops.write, undefined, "a method the filesystem lacks stays missing");
  const h1 = await ops.open!(ctx, 5 as Ino, 0o1002); // O_RDWR | O_TRUNC
  const h2 = await ops.open!(ctx, 6 as Ino, 0);
  await ops.read!(ctx, 5 as Ino, h1.fh, 0, 10);
  deepEqual(seen.at(-1), ["read", 100]);
  await ops.release!(ctx, 6 as Ino, h2.fh, 0n, false);
  equal(a.size, 1);

  // A new daemon: the kernel's number h1 goes on, O_TRUNC is not repeated.
  const b = new HandleMap();
  equal(await b.restore(inner, a.records()), 1);
  deepEqual(seen.at(-1), ["open", 0o2]);
  const ops2 = b.wrap(inner);
  await ops2.read!(ctx, 5 as Ino, h1.fh, 0, 10);
  deepEqual(seen.at(-1), ["read", 102]);
  // A number nobody restored (a crashed daemon's) fails with EBADF.
  await rejects(ops2.read!(ctx, 6 as Ino, h2.fh, 0, 10), (e: { errno?: number }) => e.errno === 9);
  // New handles get numbers the kernel does not hold yet.
  const h3 = await ops2.open!(ctx, 7 as Ino, 0);
  ok(h3.fh > h1.fh);
});
