/**
 * Failing in bounded time: a real mount on a real s3rver process frozen with SIGSTOP (connections
 * accepted, never answered). With short store timeouts and many retries, the mount's
 * `io_deadline` is what bounds each read and fsync, queued requests do not add up, the file reads
 * again once the server thaws, and the daemon logs one line for the error.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startSlayer } from "./_mount.ts";
import { startS3Server } from "./_s3server.ts";

const DEADLINE_S = 5;
/** Generous: the deadline plus load, but well below what the retries alone would take. */
const BOUND_MS = 3 * DEADLINE_S * 1000;

/** 1 MiB that LZ4 cannot shrink much, different per seed. */
function block(seed: number): Uint8Array {
  let x = seed * 2654435761 + 1;
  return Uint8Array.from({ length: 1 << 20 }, () => (x = (x * 1103515245 + 12345) >>> 0) >>> 24);
}

function isEio(err: unknown): boolean {
  return /Input\/output error|EIO|os error 5\b/i.test(String(err)) ||
    (err as { code?: string }).code === "EIO";
}

/** Runs `fn`, which must fail with EIO; returns how long it took, in ms. */
async function eioWithin(what: string, fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  const err = await fn().then(() => undefined, (e: unknown) => e);
  const ms = performance.now() - t0;
  assert.ok(err !== undefined, `${what} succeeded against a frozen server`);
  assert.ok(isEio(err), `${what}: ${err}`);
  assert.ok(ms < BOUND_MS, `${what} failed after ${ms.toFixed(0)} ms, not within ${BOUND_MS} ms`);
  return ms;
}

Deno.test({
  name: "against a frozen S3 server, reads and fsync fail with EIO at io_deadline, then recover",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using server = await startS3Server();
    await server.createBucket("frozen");
    server.exportCredentials();
    // Without the deadline, one fetch would take 6 attempts x 3 s plus backoff (~20 s), and a
    // read two fetches (the kernel retries a failed read once).
    await using fs = await startSlayer({
      storage: `${server.storeUrl("frozen", "v")}&get_timeout=3&put_timeout=3&retries=5`,
      extraArgs: ["--no-cache-dir", "-o", `io_deadline=${DEADLINE_S}`],
    });
    const files = ["a", "b", "c", "d"].map((name, i) => ({ name, data: block(i) }));
    for (const f of files) await Deno.writeFile(`${fs.mnt}/${f.name}`, f.data);
    await fs.restart(); // nothing cached: neither in the kernel nor in the daemon
    let frozen = false;
    try {
      server.pause();
      frozen = true;
      await eioWithin("a read of an uncached file", () => Deno.readFile(`${fs.mnt}/a`));
      const errorLines = fs.log().split("\n").filter((l) =>
        /\[error\] fuse: read of inode/.test(l)
      );
      assert.equal(errorLines.length, 1, fs.log());
      assert.match(errorLines[0]!, /answered EIO: .*"chunks\/[^"]+".*io_deadline/);

      // Three reads at once end together, not one after another.
      const t0 = performance.now();
      const times = await Promise.all(
        files.slice(1).map((f) =>
          eioWithin(`a concurrent read of ${f.name}`, () => Deno.readFile(`${fs.mnt}/${f.name}`))
        ),
      );
      const all = performance.now() - t0;
      assert.ok(all < BOUND_MS, `three reads took ${all.toFixed(0)} ms (${times.join(", ")})`);

      // Synchronous calls: Deno's asynchronous file calls close a duplicate of the descriptor,
      // and each such close sends a FLUSH that waits for the same upload.
      const out = Deno.openSync(`${fs.mnt}/new`, { write: true, create: true });
      try {
        out.writeSync(block(9));
        await eioWithin("fsync", () => Promise.resolve().then(() => out.syncSync()));
      } finally {
        try {
          out.close(); // flushes again: fails too, bounded by the deadline all the same
        } catch { /* EIO */ }
      }

      server.resume();
      frozen = false;
      // A fetch still running when the server thaws gets its answer; then the file reads fine.
      const until = performance.now() + BOUND_MS;
      let data: Uint8Array | undefined;
      while (data === undefined) {
        try {
          data = await Deno.readFile(`${fs.mnt}/a`);
        } catch (err) {
          if (!isEio(err) || performance.now() > until) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      assert.ok(
        data.length === files[0]!.data.length && data.every((b, i) => b === files[0]!.data[i]),
      );
    } finally {
      if (frozen) server.resume();
    }
  },
});
