/**
 * A stand-in for libfuse3 to drive a {@linkcode FuseAdapter} without the kernel: the reply
 * functions record their calls, and {@linkcode slotFn} calls a slot of the adapter's
 * `fuse_lowlevel_ops` table from JS (C → JS through the real callback). For unit tests and
 * `bench_dispatch.ts`; make the adapter with `threadSafe: false`.
 *
 * @module
 */

import type { Attr } from "../../core/types.ts";
import type { FuseAdapter } from "../adapter.ts";
import { type FuseLib, OPS_SIZE, OPS_SLOT } from "../libfuse.ts";

/** One reply call: the function's name and its arguments after `req`. */
export interface StubReply {
  /** The `fuse_reply_*` function. */
  fn: string;
  /** Its arguments after the request. */
  args: unknown[];
}

/** The `fuse_ctx` every request reports: uid 1000, gid 1000, pid 42, umask 022. */
const CTX = new Uint32Array([1000, 1000, 42, 0o22]);

/** A stub libfuse whose replies are pushed to `replies` (unless `record` is false). */
export function stubFuse(record = true): { fuse: FuseLib; replies: StubReply[] } {
  const replies: StubReply[] = [];
  const ctxPtr = Deno.UnsafePointer.of(CTX);
  const fns = [
    "fuse_reply_err",
    "fuse_reply_none",
    "fuse_reply_entry",
    "fuse_reply_attr",
    "fuse_reply_buf",
    "fuse_reply_write",
    "fuse_reply_open",
    "fuse_reply_create",
  ];
  const fuse: Record<string, unknown> = { fuse_req_ctx: () => ctxPtr };
  for (const fn of fns) {
    fuse[fn] = record
      ? (_req: unknown, ...args: unknown[]) => {
        replies.push({ fn, args });
        return 0;
      }
      : () => 0;
  }
  return { fuse: fuse as unknown as FuseLib, replies };
}

/** A request pointer for the stub (never dereferenced). */
export const STUB_REQ: Deno.PointerObject = Deno.UnsafePointer.create(0x1000n)!;

/** The C function in `op`'s slot of the adapter's table, callable from JS. */
export function slotFn<const P extends readonly Deno.NativeType[]>(
  adapter: FuseAdapter,
  op: keyof typeof OPS_SLOT,
  parameters: P,
): Deno.UnsafeFnPointer<{ parameters: P; result: "void" }> {
  const slots = new BigUint64Array(Deno.UnsafePointerView.getArrayBuffer(adapter.table, OPS_SIZE));
  const def = { parameters, result: "void" } as const;
  const p = Deno.UnsafePointer.create<typeof def>(slots[OPS_SLOT[op]]!)!;
  return new Deno.UnsafeFnPointer(p, def);
}

const T0 = { sec: 1, nsec: 0 };

/** The attributes of a 4 KiB regular file, inode 7, for stub filesystems. */
export const STUB_ATTR: Attr = {
  ino: 7,
  mode: 0o100644,
  nlink: 1,
  uid: 0,
  gid: 0,
  rdev: 0,
  size: 4096,
  atime: T0,
  mtime: T0,
  ctime: T0,
} as Attr;
