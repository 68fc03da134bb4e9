import { deepEqual, equal } from "node:assert/strict";
import { blake3 } from "./blake3.ts";
import { b3sumMany, hex } from "./_native.ts";
import { repetitive, Rng, textLike } from "./_test_util.ts";

Deno.test("blake3() equals b3sum for small sizes, chunk boundaries and large inputs", async () => {
  const rng = new Rng(31337);
  const sizes = Array.from({ length: 301 }, (_, i) => i);
  for (const chunks of [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33, 64, 65, 128, 129]) {
    for (const d of [-65, -64, -1, 0, 1, 64]) sizes.push(chunks * 1024 + d);
  }
  for (let i = 0; i < 10; i++) sizes.push(rng.int(8 << 20));
  sizes.push(8 << 20);
  const inputs = sizes.map((n, i) =>
    i % 3 === 0 ? rng.bytes(n) : i % 3 === 1 ? repetitive(n, rng) : textLike(n, rng)
  );
  const expected = await b3sumMany(inputs);
  for (const [i, data] of inputs.entries()) {
    equal(hex(blake3(data)), expected[i], `size ${data.length}`);
  }
});

Deno.test("blake3() matches the empty-input answer and is stable across calls", () => {
  equal(
    hex(blake3(new Uint8Array(0))),
    "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
  );
  const data = new Rng(1).bytes(100_000);
  deepEqual(blake3(data), blake3(data.slice()));
});
