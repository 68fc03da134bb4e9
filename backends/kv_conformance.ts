/**
 * The conformance suite for {@linkcode KvEngine} implementations: call
 * {@linkcode kvConformance} from a test file to register its cases with `Deno.test`.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { KvEngine, KvPair, KvTxn } from "../core/kv.ts";

/** Hooks of {@linkcode kvConformance}. */
export interface KvConformanceOptions {
  /**
   * Opens the same store as the (closed) engine `previous`; given only for persistent engines,
   * it enables the close/reopen case.
   */
  reopen?: (previous: KvEngine) => Promise<KvEngine>;
  /** Removes what `open` created for `engine` (after it is closed). */
  dispose?: (engine: KvEngine) => Promise<void>;
}

/** Runs a transaction that only writes. */
function write(kv: KvEngine, fn: (tx: KvTxn) => void): Promise<void> {
  return kv.txn((tx) => {
    fn(tx);
    return Promise.resolve();
  });
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function b(text: string): Uint8Array {
  return enc.encode(text);
}

function text(value: Uint8Array | undefined): string | undefined {
  return value === undefined ? undefined : dec.decode(value);
}

function keys(pairs: readonly KvPair[]): string[] {
  return pairs.map(([k]) => k);
}

/** A byte string of one char per given byte. */
function bytes(...codes: number[]): string {
  return String.fromCharCode(...codes);
}

/**
 * Registers the conformance cases for an engine. `open` returns a new, empty engine each call.
 *
 * @example
 * ```ts ignore
 * import { kvConformance } from "./kv_conformance.ts";
 * import { MemoryKvEngine } from "./kv_memory.ts";
 * kvConformance("memory", () => Promise.resolve(new MemoryKvEngine()));
 * ```
 */
export function kvConformance(
  name: string,
  open: () => Promise<KvEngine>,
  options: KvConformanceOptions = {},
): void {
  const test = (title: string, fn: (kv: KvEngine) => Promise<void>) =>
    Deno.test(`${name}: ${title}`, async () => {
      const kv = await open();
      try {
        await fn(kv);
      } finally {
        await kv.close();
        await options.dispose?.(kv);
      }
    });

  test("get, set, delete and getMany across transactions", async (kv) => {
    assert.equal(await kv.txn((tx) => tx.get("a")), undefined);
    await write(kv, (tx) => {
      tx.set("a", b("1"));
      tx.set("b", b("2"));
      tx.set("empty", new Uint8Array(0));
    });
    assert.equal(text(await kv.txn((tx) => tx.get("a"))), "1");
    const many = await kv.txn((tx) => tx.getMany(["b", "zz", "a", "empty"]), { readOnly: true });
    assert.deepEqual(many.map(text), ["2", undefined, "1", ""]);
    await write(kv, (tx) => {
      tx.delete("a");
      tx.delete("never-there");
      tx.set("b", b("22"));
    });
    assert.equal(await kv.txn((tx) => tx.get("a")), undefined);
    assert.equal(text(await kv.txn((tx) => tx.get("b"))), "22");
  });

  test("a transaction reads its own writes in get, getMany and scan", async (kv) => {
    await write(kv, (tx) => {
      for (const k of ["p/1", "p/2", "p/3", "p/4"]) tx.set(k, b(`old ${k}`));
    });
    await kv.txn(async (tx) => {
      tx.set("p/2", b("new"));
      tx.delete("p/3");
      tx.set("p/25", b("added"));
      tx.set("q/1", b("other prefix"));
      assert.equal(text(await tx.get("p/2")), "new");
      assert.equal(await tx.get("p/3"), undefined);
      assert.deepEqual((await tx.getMany(["p/3", "p/25"])).map(text), [undefined, "added"]);
      const all = await tx.scan("p/");
      assert.deepEqual(keys(all), ["p/1", "p/2", "p/25", "p/4"]);
      assert.equal(text(all[1]![1]), "new");
      assert.deepEqual(keys(await tx.scan("p/", { limit: 2 })), ["p/1", "p/2"]);
      assert.deepEqual(keys(await tx.scan("p/", { startAfter: "p/2", limit: 2 })), [
        "p/25",
        "p/4",
      ]);
      tx.set("p/3", b("back"));
      tx.delete("p/25");
      assert.deepEqual(keys(await tx.scan("p/", { keysOnly: true })), ["p/1", "p/2", "p/3", "p/4"]);
    });
    const after = await kv.txn((tx) => tx.scan("p/"));
    assert.deepEqual(after.map(([k, v]) => [k, text(v)]), [
      ["p/1", "old p/1"],
      ["p/2", "new"],
      ["p/3", "back"],
      ["p/4", "old p/4"],
    ]);
  });

  test("buffered deletes do not shorten a limited scan", async (kv) => {
    await write(kv, (tx) => {
      for (let i = 0; i < 20; i++) tx.set(`d/${String(i).padStart(2, "0")}`, b(String(i)));
    });
    await kv.txn(async (tx) => {
      for (let i = 0; i < 10; i++) tx.delete(`d/${String(i).padStart(2, "0")}`);
      const page = await tx.scan("d/", { limit: 5 });
      assert.deepEqual(keys(page), ["d/10", "d/11", "d/12", "d/13", "d/14"]);
    });
  });

  test("values are copied on set and on read", async (kv) => {
    const buf = b("abc");
    await kv.txn(async (tx) => {
      tx.set("k", buf);
      buf[0] = 0x7a;
      assert.equal(text(await tx.get("k")), "abc");
    });
    buf[1] = 0x7a;
    const read = (await kv.txn((tx) => tx.get("k")))!;
    assert.equal(text(read), "abc");
    read[2] = 0x7a;
    assert.equal(text(await kv.txn((tx) => tx.get("k"))), "abc");
  });

  test("scans are ordered bytewise, including 0x00, 0x7f, 0x80 and 0xff", async (kv) => {
    const all = [
      bytes(0x61),
      bytes(0x61, 0x00),
      bytes(0x61, 0x00, 0x00),
      bytes(0x61, 0x01),
      bytes(0x61, 0x7f),
      bytes(0x61, 0x80),
      bytes(0x61, 0xfe, 0xff),
      bytes(0x61, 0xff),
      bytes(0x61, 0xff, 0x00),
      bytes(0x61, 0xff, 0xff),
      bytes(0x62),
      bytes(0x7f),
      bytes(0x80),
      bytes(0xff),
      bytes(0xff, 0xff),
      bytes(0xff, 0xff, 0x01),
      bytes(0x00),
    ];
    await write(kv, (tx) => {
      // Insert in a scrambled order.
      for (let i = 0; i < all.length; i++) {
        const key = all[(i * 7) % all.length]!;
        tx.set(key, b(escape(key)));
      }
    });
    const sorted = [...all].sort((x, y) => x < y ? -1 : x > y ? 1 : 0);
    const scanned = await kv.txn((tx) => tx.scan(""));
    assert.deepEqual(keys(scanned), sorted);
    for (const [k, v] of scanned) assert.equal(text(v), escape(k));
    for (const prefix of ["a", bytes(0x61, 0xff), bytes(0xff), bytes(0xff, 0xff), bytes(0x00)]) {
      const expected = sorted.filter((k) => k.startsWith(prefix));
      assert.deepEqual(keys(await kv.txn((tx) => tx.scan(prefix))), expected, escape(prefix));
    }
    assert.deepEqual(keys(await kv.txn((tx) => tx.scan(bytes(0x61, 0x00, 0x01)))), []);
    const value = await kv.txn((tx) => tx.get(bytes(0x61, 0x80)));
    assert.equal(text(value), escape(bytes(0x61, 0x80)));
  });

  test("scan pages with startAfter and limit", async (kv) => {
    const expected: string[] = [];
    await write(kv, (tx) => {
      for (let i = 0; i < 1000; i++) {
        const key = `page/${String(i * 7919 % 1000).padStart(4, "0")}`;
        tx.set(key, b(key));
      }
      tx.set("pag", b("before"));
      tx.set("pagf", b("after"));
    });
    for (let i = 0; i < 1000; i++) expected.push(`page/${String(i).padStart(4, "0")}`);
    const seen: string[] = [];
    let startAfter: string | undefined;
    for (;;) {
      const page: KvPair[] = await kv.txn((tx) =>
        tx.scan("page/", startAfter === undefined ? { limit: 37 } : { limit: 37, startAfter })
      );
      if (page.length === 0) break;
      assert.ok(page.length <= 37);
      for (const [k, v] of page) {
        assert.equal(text(v), k);
        seen.push(k);
      }
      startAfter = page.at(-1)![0];
    }
    assert.deepEqual(seen, expected);
    // startAfter outside the prefix range.
    assert.equal((await kv.txn((tx) => tx.scan("page/", { startAfter: "a" }))).length, 1000);
    assert.equal((await kv.txn((tx) => tx.scan("page/", { startAfter: "z" }))).length, 0);
    assert.deepEqual(await kv.txn((tx) => tx.scan("page/", { limit: 0 })), []);
    const keysOnly = await kv.txn((tx) => tx.scan("page/", { keysOnly: true, limit: 3 }));
    assert.deepEqual(keys(keysOnly), expected.slice(0, 3));
  });

  test("a transaction that throws applies nothing and rethrows", async (kv) => {
    await write(kv, (tx) => tx.set("keep", b("1")));
    const boom = new Error("boom");
    await assert.rejects(
      kv.txn(async (tx) => {
        tx.set("new", b("x"));
        tx.delete("keep");
        tx.set("keep2", b("y"));
        await tx.get("keep");
        throw boom;
      }),
      (err) => err === boom,
    );
    assert.deepEqual(keys(await kv.txn((tx) => tx.scan(""))), ["keep"]);
    assert.equal(await kv.txn(() => Promise.resolve(42)), 42);
  });

  test("200 concurrent increment transactions count to exactly 200", async (kv) => {
    const view = (v: Uint8Array | undefined) =>
      v === undefined ? 0 : new DataView(v.buffer, v.byteOffset).getUint32(0);
    await Promise.all(Array.from({ length: 200 }, (_, i) =>
      kv.txn(async (tx) => {
        const n = view(await tx.get("counter"));
        await tx.scan("log/", { limit: 1 });
        const out = new Uint8Array(4);
        new DataView(out.buffer).setUint32(0, n + 1);
        tx.set("counter", out);
        tx.set(`log/${String(i).padStart(3, "0")}`, out);
      })));
    assert.equal(view(await kv.txn((tx) => tx.get("counter"))), 200);
    const log = await kv.txn((tx) => tx.scan("log/"));
    assert.equal(log.length, 200);
    assert.deepEqual(new Set(log.map(([, v]) => view(v))).size, 200);
  });

  test("large values and many keys round-trip", async (kv) => {
    const big = new Uint8Array(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    await write(kv, (tx) => {
      tx.set("big", big);
      for (let i = 0; i < 5000; i++) tx.set(`many/${i}`, b(String(i)));
    });
    assert.deepEqual(await kv.txn((tx) => tx.get("big")), big);
    assert.equal((await kv.txn((tx) => tx.scan("many/", { keysOnly: true }))).length, 5000);
  });

  test("close is idempotent and later transactions fail", async (kv) => {
    await kv.close();
    await kv.close();
    await assert.rejects(kv.txn((tx) => tx.get("a")));
  });

  if (options.reopen !== undefined) {
    const reopen = options.reopen;
    Deno.test(`${name}: committed data survives close and reopen`, async () => {
      const first = await open();
      let second: KvEngine | undefined;
      try {
        await write(first, (tx) => {
          tx.set("a", b("1"));
          tx.set(bytes(0x62, 0xff, 0x00), b("2"));
        });
        await write(first, (tx) => tx.delete("a"));
        await write(first, (tx) => {
          tx.set("lost", b("x"));
          throw new Error("rolled back");
        }).catch(() => {});
        await first.close();
        second = await reopen(first);
        const pairs = await second.txn((tx) => tx.scan(""));
        assert.deepEqual(pairs.map(([k, v]) => [k, text(v)]), [[bytes(0x62, 0xff, 0x00), "2"]]);
      } finally {
        await first.close();
        await second?.close();
        await options.dispose?.(first);
        if (second !== undefined) await options.dispose?.(second);
      }
    });
  }
}
