/**
 * Unit tests of the dispatcher and the operation table, without the kernel: a stub libfuse
 * records the replies, and the table's slots are called from JS.
 */

import assert from "node:assert/strict";
import { Errno, FsError } from "../core/errno.ts";
import type { FsOps } from "../core/fs_ops.ts";
import { loadLibc } from "../core/libc.ts";
import type { Attr, Ino } from "../core/types.ts";
import { configureLogging, resetLogging } from "../core/log.ts";
import { FuseAdapter } from "./adapter.ts";
import { slotFn, STUB_ATTR, STUB_REQ, stubFuse } from "./testdata/stub_fuse.ts";

const NAME_OP = ["pointer", "u64", "pointer"] as const;

function setup(ops: Partial<FsOps>, negativeTimeout = 0, deadlineMs?: number) {
  const { fuse, replies } = stubFuse();
  const adapter = new FuseAdapter(fuse, loadLibc(), ops as FsOps, {
    threadSafe: false,
    negativeTimeout,
    ...(deadlineMs === undefined ? {} : { deadlineMs }),
  });
  return { adapter, replies };
}

const name = new TextEncoder().encode("f\xe9\0");

Deno.test("a request gets one reply from its table entry, and counts in opStats", async () => {
  const seen: unknown[] = [];
  const { adapter, replies } = setup({
    lookup: (ctx, parent, n) => {
      seen.push(ctx.uid, ctx.pid, parent, n);
      return Promise.resolve(STUB_ATTR);
    },
  });
  try {
    slotFn(adapter, "lookup", NAME_OP).call(STUB_REQ, 1n, Deno.UnsafePointer.of(name));
    assert.equal(adapter.pending, 1);
    await adapter.idle();
    assert.deepEqual(seen, [1000, 42, 1, "f\xc3\xa9"]);
    assert.deepEqual(replies.map((r) => r.fn), ["fuse_reply_entry"]);
    assert.equal(adapter.opStats().lookup?.count, 1);
    assert.equal(adapter.opStats().lookup?.errors, 0);
  } finally {
    adapter.close();
  }
});

Deno.test("a missing method answers ENOSYS; throws answer EIO, FsErrors their errno", async () => {
  const { adapter, replies } = setup({
    unlink: () => {
      throw new Error("Simulated failure (expected in this test)");
    },
    rmdir: () => Promise.reject(new FsError(Errno.ENOTEMPTY, "Not empty")),
  });
  try {
    const ptr = Deno.UnsafePointer.of(name);
    slotFn(adapter, "mkdir", [...NAME_OP, "u32"]).call(STUB_REQ, 1n, ptr, 0o755);
    slotFn(adapter, "unlink", NAME_OP).call(STUB_REQ, 1n, ptr);
    slotFn(adapter, "rmdir", NAME_OP).call(STUB_REQ, 1n, ptr);
    await adapter.idle();
    assert.deepEqual(replies, [
      { fn: "fuse_reply_err", args: [Errno.ENOSYS] },
      { fn: "fuse_reply_err", args: [Errno.EIO] },
      { fn: "fuse_reply_err", args: [Errno.ENOTEMPTY] },
    ]);
    assert.deepEqual(adapter.opStats().rmdir, { ...adapter.opStats().rmdir, count: 1, errors: 1 });
  } finally {
    adapter.close();
  }
});

Deno.test("lookup answers ENOENT with a negative entry when negativeTimeout > 0", async () => {
  const { adapter, replies } = setup({
    lookup: () => Promise.reject(new FsError(Errno.ENOENT, "No such entry")),
  }, 5);
  try {
    slotFn(adapter, "lookup", NAME_OP).call(STUB_REQ, 1n, Deno.UnsafePointer.of(name));
    await adapter.idle();
    assert.deepEqual(replies.map((r) => r.fn), ["fuse_reply_entry"]);
  } finally {
    adapter.close();
  }
});

Deno.test("forget calls the filesystem and answers fuse_reply_none", () => {
  const forgets: [Ino, number][] = [];
  const { adapter, replies } = setup({ forget: (ino, n) => void forgets.push([ino, n]) });
  try {
    slotFn(adapter, "forget", ["pointer", "u64", "u64"]).call(STUB_REQ, 9n, 2n);
    assert.deepEqual(forgets, [[9, 2]]);
    assert.deepEqual(replies, [{ fn: "fuse_reply_none", args: [] }]);
    assert.equal(adapter.pending, 0);
  } finally {
    adapter.close();
  }
});

Deno.test("replies after close() are dropped", async () => {
  let finish!: (a: Attr) => void;
  const { adapter, replies } = setup({
    getattr: () => new Promise<Attr>((resolve) => finish = resolve),
  });
  slotFn(adapter, "getattr", NAME_OP).call(STUB_REQ, 7n, null);
  adapter.close();
  finish(STUB_ATTR);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(replies, []);
});

const READ_OP = ["pointer", "u64", "usize", "i64", "pointer"] as const;
const SETLK_OP = ["pointer", "u64", "pointer", "pointer", "i32"] as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("a request still running at its deadline is answered EIO once; lock waits are exempt", async () => {
  const finish: (() => void)[] = [];
  const never = <T>(value: T) => new Promise<T>((resolve) => finish.push(() => resolve(value)));
  const { adapter, replies } = setup(
    {
      read: () => never(new Uint8Array(1)),
      setlk: () => never(undefined),
    },
    0,
    200,
  );
  try {
    const t0 = performance.now();
    const read = slotFn(adapter, "read", READ_OP);
    for (let i = 0; i < 3; i++) read.call(STUB_REQ, 5n, 4096n, 0n, null); // queued reads
    const lock = new Uint8Array(32); // struct flock: F_RDLCK of the whole file
    slotFn(adapter, "setlk", SETLK_OP).call(STUB_REQ, 5n, null, Deno.UnsafePointer.of(lock), 1);
    while (replies.length < 3 && performance.now() - t0 < 5000) await sleep(10);
    const ms = performance.now() - t0;
    // Each read is answered at its own deadline (plus at most a tick), not one after another.
    assert.ok(ms >= 200 && ms < 1000, `answered after ${ms} ms`);
    assert.deepEqual(replies.map((r) => r.args), [[Errno.EIO], [Errno.EIO], [Errno.EIO]]);
    assert.deepEqual(adapter.opStats().read, { ...adapter.opStats().read, count: 3, errors: 3 });
    await sleep(300);
    assert.equal(replies.length, 3, "the lock wait is not cut short");
    for (const f of finish) f();
    await adapter.idle();
    // The late results of the reads are dropped; the lock wait gets its reply.
    assert.deepEqual(replies.slice(3), [{ fn: "fuse_reply_err", args: [0] }]);
    assert.equal(adapter.opStats().read?.count, 3);
  } finally {
    adapter.close();
  }
});

Deno.test("an EIO or ENOSPC that reaches the application is logged, one line per op per second", async () => {
  const lines: string[] = [];
  configureLogging({ write: (l) => lines.push(l) });
  const { adapter } = setup({
    read: () =>
      Promise.reject(new FsError(Errno.EIO, 'Cannot read block "chunks/0/0/1_0_9": down')),
    write: () => Promise.reject(new FsError(Errno.ENOSPC, "Staging is full")),
    lookup: () => Promise.reject(new FsError(Errno.ENOENT, "No such entry")),
  });
  try {
    const read = slotFn(adapter, "read", READ_OP);
    read.call(STUB_REQ, 7n, 10n, 0n, null);
    read.call(STUB_REQ, 7n, 10n, 0n, null);
    slotFn(adapter, "lookup", NAME_OP).call(STUB_REQ, 1n, Deno.UnsafePointer.of(name));
    const buf = new Uint8Array(4);
    slotFn(adapter, "write", ["pointer", "u64", "pointer", "usize", "i64", "pointer"])
      .call(STUB_REQ, 8n, Deno.UnsafePointer.of(buf), 4n, 0n, null);
    await adapter.idle();
    assert.deepEqual(lines, [
      'slayerfs: [error] fuse: read of inode 7 answered EIO: Cannot read block "chunks/0/0/1_0_9": down\n',
      "slayerfs: [error] fuse: write of inode 8 answered ENOSPC: Staging is full\n",
    ]);
    await sleep(1050);
    read.call(STUB_REQ, 7n, 10n, 0n, null);
    await adapter.idle();
    assert.match(lines[2] ?? "", /read of inode 7 answered EIO: .* \(1 more since\)\n$/);
  } finally {
    adapter.close();
    resetLogging();
  }
});
