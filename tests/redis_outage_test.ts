/**
 * Redis outages: a Redis restarted (kill -9, then started again from its fsync'ed append-only
 * file) while a mount writes loses nothing that was fsync'ed, and the mount keeps working without
 * a remount; a transaction waits for a Redis that is away, for a bounded time only.
 *
 * @module
 */

import assert from "node:assert/strict";
import { RedisKvEngine } from "../backends/kv_redis.ts";
import { startSlayer } from "./_mount.ts";
import { startRedis } from "./_redis.ts";
import { durableContent as content, writeDurably } from "./_durable_writer.ts";

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test({
  name: "a Redis restart during writes loses nothing fsync'ed, and the mount keeps working",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using redis = await startRedis();
    await using fs = await startSlayer({ meta: redis.url({ prefix: "outage" }) });
    const dir = `${fs.mnt}/d`;
    await Deno.mkdir(dir);
    const durable: number[] = [];
    const files = 40;
    const writer = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./_durable_writer.ts", import.meta.url).pathname,
        dir,
        `${files}`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(writer.stderr).text();
    const progress = (async () => {
      const lines = writer.stdout.pipeThrough(new TextDecoderStream());
      let rest = "";
      for await (const chunk of lines) {
        rest += chunk;
        const parts = rest.split("\n");
        rest = parts.pop()!;
        for (const p of parts) durable.push(Number(p));
      }
    })();
    let exited = false;
    const status = writer.status.then((s) => (exited = true, s));
    const until = async (n: number) => {
      while (durable.length < n && !exited) await delay(5);
    };
    try {
      await until(10);
      // A hard restart in the middle of the writes: the daemon's transactions wait and retry.
      await redis.kill();
      await delay(700);
      await redis.start();
      await until(25);
      await redis.restart();
      const s = await status;
      await progress;
      assert.equal(s.code, 0, `the writer failed: ${await stderr}\ndaemon log:\n${fs.log()}`);
    } finally {
      try {
        writer.kill("SIGKILL");
      } catch { /* exited */ }
      await status;
      await progress.catch(() => {});
      await stderr.catch(() => {});
    }
    assert.equal(durable.length, files);
    // The daemon saw the outage, waited, and saw Redis back.
    assert.match(fs.log(), /redis: Redis at .* does not answer/);
    assert.match(fs.log(), /redis: Redis at .* answers again/);
    for (const i of durable) {
      assert.deepEqual(await Deno.readFile(`${dir}/f${i}`), content(i), `f${i}`);
    }
    // The mount still serves, without a remount: new files, renames, listings.
    await writeDurably(`${dir}/after`, content(99));
    await Deno.rename(`${dir}/after`, `${dir}/renamed`);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.equal(names.length, files + 1);
    assert.ok(names.includes("renamed"));
    // Another hard restart, then a remount: everything comes back from the append-only file.
    await redis.restart();
    await fs.restart();
    for (const i of durable) {
      assert.deepEqual(await Deno.readFile(`${dir}/f${i}`), content(i), `f${i} after remount`);
    }
    assert.deepEqual(await Deno.readFile(`${dir}/renamed`), content(99));
  },
});

Deno.test("redis: transactions wait for a restarted Redis, and give up after outageMs", async () => {
  await using redis = await startRedis();
  const kv = await RedisKvEngine.open(redis.url({ prefix: "wait" }), { outageMs: 3000 });
  try {
    const increment = () =>
      kv.txn(async (tx) => {
        const n = Number(new TextDecoder().decode(await tx.get("n") ?? new Uint8Array()));
        tx.set("n", new TextEncoder().encode(String(n + 1)));
      });
    // Increments in flight across a kill -9 and a start: each applies exactly once.
    const running = Array.from({ length: 30 }, () => increment());
    await redis.kill();
    await delay(300);
    await redis.start();
    await Promise.all(running);
    const n = await kv.txn((tx) => tx.get("n"));
    assert.equal(new TextDecoder().decode(n), "30");
    // Away for longer than outageMs: the transaction fails with one line, in bounded time.
    await redis.kill();
    const started = Date.now();
    await assert.rejects(
      kv.txn((tx) => tx.get("n")),
      /^Error: Redis at redis\+unix:.* has not answered for 3 s: /,
    );
    const waited = Date.now() - started;
    assert.ok(waited >= 3000 && waited < 30_000, `gave up after ${waited} ms`);
    // Back again: the same engine works, without reopening.
    await redis.start();
    await increment();
    assert.equal(new TextDecoder().decode(await kv.txn((tx) => tx.get("n"))), "31");
  } finally {
    await kv.close();
  }
});
