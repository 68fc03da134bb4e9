/**
 * A failed flush through a real mount on a real s3rver process: `fsync` fails while S3 is down
 * (or while the writeback stage is full), and once S3 answers again the file is back to its last
 * committed state and works on the handle open at the time and on new ones; the open-file count
 * of `slayerfs status` drops when the handles close.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "./_libc.ts";
import { runCli, type SlayerMount, startSlayer } from "./_mount.ts";
import { type S3TestServer, startS3Server } from "./_s3server.ts";
import { bytesEqual, pseudoRandom, throwsErrno } from "./posix/_helpers.ts";

// Descriptors are opened O_CLOEXEC: an s3rver restarted meanwhile would inherit them, and the
// kernel would send no release while it holds them.
const KiB = 1024;
const MiB = 1024 * KiB;

async function status(mnt: string): Promise<{ openFiles: number; writeback?: unknown }> {
  const r = await runCli(["status", "--json", mnt]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** Polls `status` (the daemon refreshes it every 2 s) until `ok` holds. */
async function until(
  mnt: string,
  what: string,
  ok: (s: Awaited<ReturnType<typeof status>>) => boolean,
): Promise<void> {
  for (let i = 0; i < 80; i++) {
    if (ok(await status(mnt))) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`Timed out waiting for ${what}: ${JSON.stringify(await status(mnt))}`);
}

async function s3Server(bucket: string): Promise<S3TestServer> {
  const server = await startS3Server();
  await server.createBucket(bucket);
  server.exportCredentials();
  return server;
}

/**
 * With S3 back: the file reads as `committed` through `fd` (open during the failure) and a new
 * handle; appends (large enough to reach the store), truncation and fsync work on both; the
 * open-file count drops to 0 once both are closed.
 */
async function worksAgain(fs: SlayerMount, fd: number, committed: Uint8Array): Promise<void> {
  const path = `${fs.mnt}/f`;
  await new Promise((r) => setTimeout(r, 1500)); // past the kernel's 1 s attribute timeout
  bytesEqual(L.preadFull(fd, committed.length + MiB, 0), committed, "same handle");
  const fd2 = L.open(path, L.O.RDWR | L.O.CLOEXEC);
  const open = new Set([fd, fd2]);
  const close = (f: number) => {
    open.delete(f);
    L.close(f);
  };
  try {
    bytesEqual(L.preadFull(fd2, committed.length + MiB, 0), committed, "new handle");
    const more = pseudoRandom(256 * KiB, 3);
    L.pwriteFull(fd, more, committed.length);
    L.fsync(fd);
    L.pwriteFull(fd2, more, committed.length + more.length);
    L.fsync(fd2);
    L.ftruncate(fd, committed.length + more.length);
    L.fsync(fd);
    L.ftruncate(fd2, committed.length);
    L.fsync(fd2);
    close(fd2);
    close(fd);
  } finally {
    for (const f of open) {
      try {
        L.close(f);
      } catch { /* the test failed already */ }
    }
  }
  bytesEqual(await Deno.readFile(path), committed, "the file");
  await until(fs.mnt, "no open file", (s) => s.openFiles === 0);
}

Deno.test({
  name: "after an fsync fails for an S3 outage, the file is back to its committed state and works",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using server = await s3Server("flush");
    await using fs = await startSlayer({ storage: server.storeUrl("flush", "v") });
    const committed = pseudoRandom(MiB, 1);
    const fd = L.open(`${fs.mnt}/f`, L.O.RDWR | L.O.CREAT | L.O.CLOEXEC);
    let open = true;
    try {
      L.pwriteFull(fd, committed, 0);
      L.fsync(fd);
      await server.kill();
      L.pwriteFull(fd, pseudoRandom(64 * KiB, 2), 0); // an overwrite
      L.pwriteFull(fd, pseudoRandom(MiB, 2), MiB); // an append
      throwsErrno(() => L.fsync(fd), "EIO", "fsync while S3 is down");
      await server.start();
      open = false;
      await worksAgain(fs, fd, committed);
    } finally {
      if (open) L.close(fd);
    }
  },
});

Deno.test({
  name: "after an fsync fails for a full writeback stage, the file is back to its committed state",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using server = await s3Server("stage");
    const work = await Deno.makeTempDir({ prefix: "slayerfs-stage-" });
    try {
      await using fs = await startSlayer({
        storage: server.storeUrl("stage", "v"),
        extraArgs: ["--writeback", "--writeback-dir", `${work}/stage`, "--writeback-size", "1"],
      });
      const fd = L.open(`${fs.mnt}/f`, L.O.RDWR | L.O.CREAT | L.O.CLOEXEC);
      let open = true;
      try {
        await server.kill();
        // Each fsync stages a 256 KiB block until the 1 MiB stage is full.
        let committed = 0;
        let failed: unknown;
        for (let i = 0; i < 8 && failed === undefined; i++) {
          L.pwriteFull(fd, pseudoRandom(256 * KiB, 10 + i), i * 256 * KiB);
          try {
            L.fsync(fd);
            committed = (i + 1) * 256 * KiB;
          } catch (err) {
            failed = err;
          }
          await new Promise((r) => setTimeout(r, 500)); // let the uploads fail
        }
        assert.equal((failed as { code?: string })?.code, "ENOSPC", String(failed));
        await server.start();
        await until(fs.mnt, "the stage to drain", (s) => {
          const wb = s.writeback as { stagedObjects?: number } | undefined;
          return wb?.stagedObjects === 0;
        });
        const want = new Uint8Array(committed);
        for (let i = 0; i * 256 * KiB < committed; i++) {
          want.set(pseudoRandom(256 * KiB, 10 + i), i * 256 * KiB);
        }
        open = false;
        await worksAgain(fs, fd, want);
      } finally {
        if (open) L.close(fd);
      }
    } finally {
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  },
});
