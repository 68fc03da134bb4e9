import { equal } from "node:assert/strict";
import { xxh3_64 } from "./xxh3.ts";
import { NativeXxhash } from "./_native.ts";
import { repetitive, Rng, textLike } from "./_test_util.ts";

Deno.test("xxh3_64() equals libxxhash XXH3_64bits for every size class", () => {
  const native = new NativeXxhash();
  const rng = new Rng(77);
  try {
    const sizes = Array.from({ length: 1100 }, (_, i) => i);
    for (const b of [2048, 4096, 8192, 65536]) for (let d = -70; d <= 70; d++) sizes.push(b + d);
    for (let i = 0; i < 12; i++) sizes.push(rng.int(8 << 20));
    sizes.push(8 << 20);
    for (const [i, n] of sizes.entries()) {
      const kind = i % 3;
      const data = kind === 0 ? rng.bytes(n) : kind === 1 ? repetitive(n, rng) : textLike(n, rng);
      equal(xxh3_64(data), native.xxh3_64(data), `size ${n}`);
      // Unaligned views must hash the same as copies.
      if (n > 1 && n < 400) equal(xxh3_64(data.subarray(1)), native.xxh3_64(data.slice(1)));
    }
  } finally {
    native.close();
  }
});

Deno.test("xxh3_64() matches known answers", () => {
  equal(xxh3_64(new Uint8Array(0)), 0x2d06800538d394c2n);
});
