import assert from "node:assert/strict";
import { XATTR_MISS_TTL_MS, XattrMisses } from "./_xattr_misses.ts";
import type { Ino } from "./types.ts";

/** Runs `fn` with `performance.now()` reading `clock.ms`. */
function withClock(fn: (clock: { ms: number }) => void): void {
  const clock = { ms: 1000 };
  Object.defineProperty(performance, "now", { value: () => clock.ms, configurable: true });
  try {
    fn(clock);
  } finally {
    delete (performance as { now?: unknown }).now;
  }
}

const ino = 3 as Ino;

Deno.test("XattrMisses remembers a miss for the TTL", () => {
  withClock((clock) => {
    const m = new XattrMisses();
    assert.equal(m.has(ino, "user.a"), false);
    m.add(ino, "user.a");
    assert.equal(m.has(ino, "user.a"), true);
    assert.equal(m.has(ino, "user.b"), false);
    assert.equal(m.has(4 as Ino, "user.a"), false);
    clock.ms += XATTR_MISS_TTL_MS;
    assert.equal(m.has(ino, "user.a"), false);
  });
});

Deno.test("XattrMisses knows a new file has none, until one is set", () => {
  withClock(() => {
    const m = new XattrMisses();
    m.created(ino);
    assert.equal(m.has(ino, "security.capability"), true);
    m.forget(ino, "user.a");
    assert.equal(m.has(ino, "security.capability"), false);
  });
});
