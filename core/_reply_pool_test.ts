import assert from "node:assert/strict";
import { giveReply, REPLY_BYTES, takeReply } from "./_reply_pool.ts";

Deno.test("takeReply/giveReply: a buffer comes back once, only if it is the pool's and out", () => {
  const a = takeReply(REPLY_BYTES);
  const b = takeReply(4096);
  assert.notEqual(a.buffer, b.buffer, "two buffers out at once are distinct");
  assert.equal(b.byteLength, 4096);
  giveReply(b.subarray(100, 200)); // a view of it gives it back
  giveReply(b); // twice: ignored (it is not out any more)
  giveReply(new Uint8Array(REPLY_BYTES)); // not the pool's: ignored
  const c = takeReply(1000);
  assert.equal(c.buffer, b.buffer, "the one given back");
  const d = takeReply(1000);
  assert.notEqual(d.buffer, b.buffer, "given back once, handed out once");
  assert.notEqual(d.buffer, a.buffer);
  assert.throws(() => takeReply(REPLY_BYTES + 1), RangeError);
  for (const x of [a, c, d]) giveReply(x);
});
