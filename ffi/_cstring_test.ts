import assert from "node:assert/strict";
import { Errno, FsError } from "../core/errno.ts";
import { loadLibc } from "../core/libc.ts";
import { copyFromC, cString, cStringList, putCString, readCString } from "./_cstring.ts";

Deno.test("putCString() and readCString() round-trip any bytes of a name", () => {
  const buf = new Uint8Array(16);
  const name = "a\xff\x01b";
  assert.equal(putCString(name, buf), 5);
  assert.equal(readCString(loadLibc(), Deno.UnsafePointer.of(buf)), name);
  assert.equal(readCString(loadLibc(), null), "");
});

Deno.test("putCString() refuses a name that does not fit with its NUL", () => {
  assert.throws(
    () => putCString("abcd", new Uint8Array(4)),
    (e) => e instanceof FsError && e.errno === Errno.ENAMETOOLONG,
  );
});

Deno.test("cString() encodes UTF-8 text NUL-terminated", () => {
  assert.deepEqual(cString("é/x"), new Uint8Array([0xc3, 0xa9, 0x2f, 0x78, 0]));
});

Deno.test("cStringList() packs names one after another", () => {
  assert.deepEqual(cStringList(["ab", "", "c"]), new Uint8Array([97, 98, 0, 0, 99, 0]));
});

Deno.test("copyFromC() copies bytes out of C memory", () => {
  const src = new Uint8Array([1, 2, 3]);
  const out = copyFromC(Deno.UnsafePointer.of(src), 3);
  src[0] = 9;
  assert.deepEqual(out, new Uint8Array([1, 2, 3]));
  assert.deepEqual(copyFromC(null, 0), new Uint8Array(0));
});
