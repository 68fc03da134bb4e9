/**
 * Measures the adapter's own cost per request, without the kernel: a C → JS call through the
 * `fuse_lowlevel_ops` table, the dispatcher, a resolved {@linkcode FsOps} promise and the reply
 * (libfuse replaced by JS stubs). Prints the best of N rounds of 200k requests per operation.
 *
 * Run: `deno run -A ffi/bench_dispatch.ts [rounds]`. Compare before and after a change to the
 * dispatcher or the table's hot entries (lookup, getattr, read, write).
 *
 * @module
 */

import type { FsOps } from "../core/fs_ops.ts";
import { loadLibc } from "../core/libc.ts";
import { FuseAdapter } from "./adapter.ts";
import { slotFn as slot, STUB_ATTR, STUB_REQ as req, stubFuse } from "./testdata/stub_fuse.ts";

const ROUND = 200_000;
/** Requests in flight before the loop waits for their replies. */
const BATCH = 500;

const { fuse } = stubFuse(false);
const page = new Uint8Array(4096);
const ops = {
  lookup: () => Promise.resolve(STUB_ATTR),
  getattr: () => Promise.resolve(STUB_ATTR),
  read: () => Promise.resolve(page),
  write: (_c: unknown, _i: unknown, _f: unknown, _o: unknown, d: Uint8Array) =>
    Promise.resolve(d.length),
} as unknown as FsOps;

const name = new TextEncoder().encode("some-file-name\0");
const fi = new Uint8Array(40);
const data = new Uint8Array(4096);

async function round(): Promise<Record<string, number>> {
  const adapter = new FuseAdapter(fuse, loadLibc(), ops, { threadSafe: false });
  const namePtr = Deno.UnsafePointer.of(name);
  const fiPtr = Deno.UnsafePointer.of(fi);
  const dataPtr = Deno.UnsafePointer.of(data);
  const getattr = slot(adapter, "getattr", ["pointer", "u64", "pointer"]);
  const lookup = slot(adapter, "lookup", ["pointer", "u64", "pointer"]);
  const read = slot(adapter, "read", ["pointer", "u64", "usize", "i64", "pointer"]);
  const write = slot(adapter, "write", ["pointer", "u64", "pointer", "usize", "i64", "pointer"]);
  const cases: [string, () => void][] = [
    ["getattr", () => getattr.call(req, 5n, fiPtr)],
    ["lookup", () => lookup.call(req, 1n, namePtr)],
    ["read", () => read.call(req, 5n, 4096n, 0n, fiPtr)],
    ["write", () => write.call(req, 5n, dataPtr, 4096n, 0n, fiPtr)],
  ];
  const ns: Record<string, number> = {};
  for (const [op, call] of cases) {
    const t0 = performance.now();
    for (let k = 1; k <= ROUND; k++) {
      call();
      if (k % BATCH === 0) await adapter.idle();
    }
    await adapter.idle();
    ns[op] = Math.round((performance.now() - t0) * 1e6 / ROUND);
  }
  adapter.close();
  return ns;
}

const rounds = Number(Deno.args[0] ?? 10);
const best: Record<string, number> = {};
await round(); // warm-up
for (let r = 0; r < rounds; r++) {
  for (const [op, ns] of Object.entries(await round())) best[op] = Math.min(best[op] ?? ns, ns);
}
console.log(`ns per request, best of ${rounds} rounds of ${ROUND}:`);
console.table(best);
