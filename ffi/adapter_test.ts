/**
 * Unit tests of the dispatcher and the operation table, without the kernel: a stub libfuse
 * records the replies, and the table's slots are called from JS.
 */

import assert from "node:assert/strict";
import { Errno, FsError } from "../core/errno.ts";
import type { FsOps } from "../core/fs_ops.ts";
import { loadLibc } from "../core/libc.ts";
import type { Attr, Ino } from "../core/types.ts";
import { FuseAdapter } from "./adapter.ts";
import { slotFn, STUB_ATTR, STUB_REQ, stubFuse } from "./testdata/stub_fuse.ts";

const NAME_OP = ["pointer", "u64", "pointer"] as const;

function setup(ops: Partial<FsOps>, negativeTimeout = 0) {
  const { fuse, replies } = stubFuse();
  const adapter = new FuseAdapter(fuse, loadLibc(), ops as FsOps, {
    threadSafe: false,
    negativeTimeout,
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
