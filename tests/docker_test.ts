/**
 * Docker on SlayerFS, for real: a private dockerd (Debian's docker.io) whose `--data-root` is on
 * a SlayerFS mount backed by an S3 server, with the `overlay2` storage driver (overlayfs upper
 * layers on SlayerFS). `docker import`, `run`, `commit`, a run of the committed image, `rm` and
 * `rmi`; the layers end up as blocks in S3 and survive an unmount and remount of SlayerFS. And
 * `docker run -v` of a folder on the mount from two containers at once.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startSlayer } from "./_mount.ts";
import { startS3Server } from "./_s3server.ts";
import { busyboxRootfs, must } from "./_containers.ts";
import { startDockerd, unmountUnder } from "./_dockerd.ts";

/** Bytes and count of the objects the S3 server holds under `dir`. */
async function storedObjects(dir: string): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile && !e.name.endsWith("._S3rver_metadata.json")) {
        count++;
        bytes += (await Deno.stat(p)).size;
      }
    }
  };
  await walk(dir);
  return { count, bytes };
}

Deno.test({
  name: "Docker with --data-root on SlayerFS (overlay2): import, run, commit, rm, rmi, remount",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using s3 = await startS3Server();
    await s3.createBucket("docker");
    s3.exportCredentials();
    await using fs = await startSlayer({ storage: s3.storeUrl("docker", "vol") });
    const rootfs = await Deno.makeTempDir({ prefix: "slayerfs-busybox-" });
    try {
      await busyboxRootfs(rootfs);
      const dataRoot = `${fs.mnt}/docker`;
      const before = await storedObjects(s3.directory);
      {
        await using d = await startDockerd(dataRoot);
        assert.equal((await d.docker("info", "--format", "{{.Driver}}")).trim(), "overlay2");
        const tarFile = `${rootfs}.tar`;
        await must("tar", ["-C", rootfs, "-cf", tarFile, "."]);
        await d.docker("import", tarFile, "slayer/busybox:1");
        await Deno.remove(tarFile);
        const out = await d.docker(
          "run",
          "--name",
          "writer",
          "--network",
          "none",
          "slayer/busybox:1",
          "sh",
          "-c",
          "echo from-container > /data.txt && rm /bin/wc && cat /data.txt",
        );
        assert.equal(out.trim(), "from-container");
        await d.docker("commit", "writer", "slayer/busybox:2");
        await d.docker("rm", "writer");
        const again = await d.docker(
          "run",
          "--rm",
          "--network",
          "none",
          "slayer/busybox:2",
          "sh",
          "-c",
          "cat /data.txt; ls /bin/wc 2>&1 || true",
        );
        assert.match(again, /^from-container\n/);
        assert.match(again, /No such file/, "the deleted file is a whiteout in the new layer");
        assert.match(await d.docker("images", "--format", "{{.Repository}}:{{.Tag}}"), /busybox:2/);
      }
      // The layers are blocks in S3.
      const after = await storedObjects(s3.directory);
      assert.ok(
        after.bytes - before.bytes > 500_000,
        `the image layers reached S3 (${before.bytes} -> ${after.bytes} bytes)`,
      );
      // Unmount and remount SlayerFS: Docker starts on the same data root and runs the image.
      await fs.restart();
      {
        await using d = await startDockerd(dataRoot);
        const out = await d.docker(
          "run",
          "--rm",
          "--network",
          "none",
          "slayer/busybox:2",
          "cat",
          "/data.txt",
        );
        assert.equal(out.trim(), "from-container");
        await d.docker("rmi", "slayer/busybox:2");
        await d.docker("rmi", "slayer/busybox:1");
        assert.equal((await d.docker("images", "-q")).trim(), "");
      }
    } finally {
      await Deno.remove(rootfs, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "docker run -v: two containers share a folder on the mount at once",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using fs = await startSlayer();
    const dataRoot = await Deno.makeTempDir({ prefix: "slayerfs-docker-root-" });
    const rootfs = await Deno.makeTempDir({ prefix: "slayerfs-busybox-" });
    try {
      await busyboxRootfs(rootfs);
      await Deno.mkdir(`${fs.mnt}/shared`);
      await using d = await startDockerd(dataRoot);
      const tarFile = `${rootfs}.tar`;
      await must("tar", ["-C", rootfs, "-cf", tarFile, "."]);
      await d.docker("import", tarFile, "slayer/busybox:1");
      await Deno.remove(tarFile);
      const vol = `${fs.mnt}/shared:/data`;
      const a = d.docker(
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        vol,
        "slayer/busybox:1",
        "sh",
        "-c",
        "echo from-a > /data/a; for i in $(seq 300); do [ -f /data/b ] && break; sleep 0.1; done; cat /data/b",
      );
      const b = d.docker(
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        vol,
        "slayer/busybox:1",
        "sh",
        "-c",
        "for i in $(seq 300); do [ -f /data/a ] && break; sleep 0.1; done; cat /data/a > /data/b.tmp; echo from-b >> /data/b.tmp; mv /data/b.tmp /data/b; cat /data/a",
      );
      const [outA, outB] = await Promise.all([a, b]);
      assert.equal(outB.trim(), "from-a");
      assert.equal(outA, "from-a\nfrom-b\n");
      assert.equal(await Deno.readTextFile(`${fs.mnt}/shared/b`), "from-a\nfrom-b\n");
    } finally {
      await unmountUnder(dataRoot);
      await Deno.remove(dataRoot, { recursive: true }).catch(() => {});
      await Deno.remove(rootfs, { recursive: true }).catch(() => {});
    }
  },
});
