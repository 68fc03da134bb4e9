import assert from "node:assert/strict";
import { listAhead } from "./import.ts";

/** Pages 0..n-1, logging when each is asked for and when the generator closes. */
async function* pages(n: number, log: string[], failAt = -1): AsyncGenerator<number> {
  try {
    for (let i = 0; i < n; i++) {
      log.push(`ask ${i}`);
      await new Promise((r) => setTimeout(r, 1));
      if (i === failAt) throw new Error(`page ${i} failed`);
      yield i;
    }
  } finally {
    log.push("closed");
  }
}

Deno.test("listAhead() gives every page in order, asking for the next before the current one is done", async () => {
  const log: string[] = [];
  const got: number[] = [];
  for await (const p of listAhead(pages(3, log))) {
    log.push(`work ${p}`);
    await new Promise((r) => setTimeout(r, 5));
    got.push(p);
  }
  assert.deepEqual(got, [0, 1, 2]);
  // Page 1 is asked for before page 0's work starts, page 2 before page 1's.
  assert.ok(log.indexOf("ask 1") < log.indexOf("work 0"), log.join(", "));
  assert.ok(log.indexOf("ask 2") < log.indexOf("work 1"), log.join(", "));
  assert.equal(log.filter((l) => l === "closed").length, 1);
});

Deno.test("listAhead() reports a failed page when it is wanted, and closes the source when its caller stops", async () => {
  const log: string[] = [];
  const got: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const p of listAhead(pages(5, log, 2))) got.push(p);
    })(),
    /page 2 failed/,
  );
  assert.deepEqual(got, [0, 1]);

  const log2: string[] = [];
  for await (const p of listAhead(pages(5, log2))) {
    if (p === 1) break;
  }
  assert.equal(log2.at(-1), "closed");
  assert.ok(!log2.includes("ask 4"), log2.join(", "));
});
