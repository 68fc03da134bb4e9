/**
 * `slayerfs docker-plugin` against a real dockerd (Debian's docker.io, started privately by the
 * test): the plugin is found through a spec file with a name unique to this test process
 * (`/etc/docker/plugins/slayerfs-test-PID.spec`), so no other dockerd on the machine ever sees
 * it. `docker volume create` with options, two containers sharing one volume at once, a quota
 * hit inside a container, a read-only volume, `docker volume ls/inspect/rm`, the data seen
 * through a plain SlayerFS mount of the whole volume, and a plugin restart while a container
 * holds a volume. The volume's metadata is in a private Redis, so the plugin's scope is `global`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { openVolume } from "../mod.ts";
import { startRedis } from "./_redis.ts";
import {
  CLI,
  forceUnmountSync,
  goneFromOtherMount,
  listMounts,
  REPO_ROOT,
  runCli,
  startSlayer,
} from "./_mount.ts";
import { busyboxRootfs, must } from "./_containers.ts";
import { startDockerd } from "./_dockerd.ts";

const DRIVER = `slayerfs-test-${Deno.pid}`;
const SPEC_DIR = "/etc/docker/plugins";
const SPEC = `${SPEC_DIR}/${DRIVER}.spec`;

/** A running `slayerfs docker-plugin`. */
interface Plugin {
  stop(signal?: Deno.Signal): Promise<void>;
  log(): string;
}

async function startPlugin(meta: string, socket: string, root: string, log: string) {
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `exec "$@" >>'${log}' 2>&1`,
      "sh",
      Deno.execPath(),
      "run",
      "-A",
      CLI,
      "docker-plugin",
      "--meta",
      meta,
      "--socket",
      socket,
      "--root",
      root,
    ],
    cwd: REPO_ROOT,
    stdin: "null",
  }).spawn();
  const readLog = () => {
    try {
      return Deno.readTextFileSync(log);
    } catch {
      return "";
    }
  };
  const deadline = Date.now() + 60_000;
  while (!await Deno.stat(socket).then(() => true, () => false)) {
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the plugin did not start:\n${readLog()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  let stopped = false;
  return {
    async stop(signal: Deno.Signal = "SIGTERM") {
      if (stopped) return;
      stopped = true;
      try {
        child.kill(signal);
      } catch { /* gone */ }
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await child.status;
      clearTimeout(timer);
    },
    log: readLog,
  } satisfies Plugin;
}

/** Runs `fn`, failing after `ms` instead of hanging. */
async function within<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} took more than ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name: "docker-plugin: create with options, share, quota, ro, ls/inspect/rm, restart",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Redis: the engine that the hosts of a cluster share.
    await using redis = await startRedis();
    await using fs = await startSlayer({ meta: redis.url({ prefix: "dplugin" }) });
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-dplugin-" });
    const root = `${dir}/root`;
    const socket = `${dir}/plugin.sock`;
    const pluginLog = `${dir}/plugin.log`;
    let plugin: Plugin | undefined;
    await Deno.mkdir(SPEC_DIR, { recursive: true });
    await Deno.writeTextFile(SPEC, `unix://${socket}\n`);
    try {
      await busyboxRootfs(`${dir}/rootfs`);
      plugin = await startPlugin(fs.meta, socket, root, pluginLog);
      await using d = await startDockerd(`${dir}/docker`);
      await must("tar", ["-C", `${dir}/rootfs`, "-cf", `${dir}/busybox.tar`, "."]);
      await d.docker("import", `${dir}/busybox.tar`, "slayer/busybox:1");
      const dockerRun = (...args: string[]) =>
        within(
          120_000,
          `docker run ${args.join(" ")}`,
          () => d.tryDocker("run", "--rm", "--network", "none", ...args),
        );
      await within(120_000, "volume create", async () => {
        await d.docker(
          "volume",
          "create",
          "-d",
          DRIVER,
          "-o",
          "capacity=4M",
          "-o",
          "inodes=100",
          "shared",
        );
        await d.docker("volume", "create", "-d", DRIVER, "-o", "ro=true", "readonly");
        // The same options again are fine; an unknown option is refused.
        await d.docker(
          "volume",
          "create",
          "-d",
          DRIVER,
          "-o",
          "capacity=4M",
          "-o",
          "inodes=100",
          "shared",
        );
        const bad = await d.tryDocker("volume", "create", "-d", DRIVER, "-o", "colour=red", "v3");
        assert.notEqual(bad.code, 0);
        assert.match(bad.stderr, /Unknown option "colour"/);
      });
      assert.ok((await Deno.stat(`${fs.mnt}/docker-volumes/shared`)).isDirectory);

      // Two containers use the volume at once: one mount, two holders.
      const a = dockerRun(
        "-v",
        "shared:/data",
        "slayer/busybox:1",
        "sh",
        "-c",
        "echo from-a > /data/a; i=0; while [ ! -f /data/b ] && [ $i -lt 600 ]; do " +
          "sleep 0.1; i=$((i+1)); done; cat /data/b; " +
          // Then past the quota: the error is the point, so the script goes on.
          "cat /dev/zero > /data/big || echo quota-hit",
      );
      const b = dockerRun(
        "-v",
        "shared:/data",
        "slayer/busybox:1",
        "sh",
        "-c",
        "i=0; while [ ! -f /data/a ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; " +
          "cat /data/a > /data/b.tmp; echo from-b >> /data/b.tmp; mv /data/b.tmp /data/b; " +
          "cat /data/a",
      );
      const [outA, outB] = await Promise.all([a, b]);
      assert.equal(outB.code, 0, outB.stderr);
      assert.equal(outA.code, 0, outA.stderr);
      assert.equal(outB.stdout.trim(), "from-a");
      assert.equal(outA.stdout, "from-a\nfrom-b\nquota-hit\n");
      // The quota holds inside a container.
      assert.match(outA.stderr, /Disk quota exceeded/);
      const size = (await Deno.stat(`${fs.mnt}/docker-volumes/shared/big`)).size;
      assert.ok(size <= 5 * 2 ** 20, `the file stopped at the quota (${size} bytes)`);
      assert.equal(
        listMounts().filter((m) => m.mnt.startsWith(`${root}/`)).length,
        0,
        "the last container's Unmount unmounted the volume",
      );

      // A read-only volume.
      const ro = await dockerRun("-v", "readonly:/data", "slayer/busybox:1", "touch", "/data/x");
      assert.notEqual(ro.code, 0);
      assert.match(ro.stderr, /Read-only file system/);

      // ls and inspect.
      const ls = await d.docker("volume", "ls", "--format", "{{.Driver}} {{.Name}}");
      assert.match(ls, new RegExp(`^${DRIVER} shared$`, "m"));
      assert.match(ls, new RegExp(`^${DRIVER} readonly$`, "m"));
      const info = JSON.parse(await d.docker("volume", "inspect", "shared"))[0];
      assert.equal(info.Driver, DRIVER);
      assert.equal(info.Scope, "global", "a Redis volume is shared by every host");
      assert.equal(info.Status.quota.capacity, 4 * 2 ** 20);
      assert.equal(info.Status.quota.inodes, 100);
      assert.ok(info.Status.quota.usedSpace >= size);

      // The plugin restarts while a container holds the volume: the mount stays and is adopted.
      await d.docker(
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "none",
        "-v",
        "shared:/data",
        "slayer/busybox:1",
        "sh",
        "-c",
        "rm /data/big; echo held > /data/held; sleep 600",
      );
      const mnt = `${root}/shared`;
      const deadline = Date.now() + 60_000;
      while (
        !await Deno.stat(`${fs.mnt}/docker-volumes/shared/held`).then(() => true, () => false)
      ) {
        assert.ok(Date.now() < deadline, "the holder wrote its file");
        await new Promise((r) => setTimeout(r, 200));
      }
      await plugin.stop();
      assert.ok(listMounts().some((m) => m.mnt === mnt), "the mount outlives the plugin");
      plugin = await startPlugin(fs.meta, socket, root, pluginLog);
      // A second container joins the adopted mount, then both leave: the mount goes.
      const again = await dockerRun("-v", "shared:/data", "slayer/busybox:1", "cat", "/data/held");
      assert.equal(again.stdout.trim(), "held", again.stderr);
      assert.ok(listMounts().some((m) => m.mnt === mnt), "the holder keeps the volume mounted");
      await within(60_000, "docker rm -f holder", () => d.docker("rm", "-f", "holder"));
      assert.ok(!listMounts().some((m) => m.mnt === mnt), "the last holder's Unmount unmounted");

      // The data is in the volume, seen through a plain mount of all of it.
      assert.equal(await Deno.readTextFile(`${fs.mnt}/docker-volumes/shared/a`), "from-a\n");
      assert.equal(
        await Deno.readTextFile(`${fs.mnt}/docker-volumes/shared/b`),
        "from-a\nfrom-b\n",
      );

      // A volume kept in another SlayerFS volume (meta=...): its folder is there, not here.
      const other = `sqlite3://${dir}/other.db`;
      const f = await runCli(["format", other, "other"]);
      assert.equal(f.code, 0, f.stderr);
      await within(
        60_000,
        "volume create -o meta",
        () => d.docker("volume", "create", "-d", DRIVER, "-o", `meta=${other}`, "elsewhere"),
      );
      await assert.rejects(Deno.stat(`${fs.mnt}/docker-volumes/elsewhere`), Deno.errors.NotFound);
      {
        await using vol = await openVolume(other);
        assert.ok((await vol.stat("/docker-volumes/elsewhere")).mode & 0o040000);
      }
      assert.match(await d.docker("volume", "ls", "-q"), /^elsewhere$/m);
      await d.docker("volume", "rm", "elsewhere");
      {
        await using vol = await openVolume(other);
        await assert.rejects(vol.stat("/docker-volumes/elsewhere"), /ENOENT|No such/);
      }

      // rm removes the folder; an unknown volume is an error.
      await within(180_000, "volume rm", async () => {
        await d.docker("volume", "rm", "shared", "readonly");
        const gone = await d.tryDocker("volume", "inspect", "shared");
        assert.notEqual(gone.code, 0);
      });
      await goneFromOtherMount(`${fs.mnt}/docker-volumes/shared`);
      assert.doesNotMatch(await d.docker("volume", "ls", "-q"), /shared|readonly/);
    } catch (err) {
      console.error(plugin?.log() ?? "");
      throw err;
    } finally {
      await Deno.remove(SPEC).catch(() => {});
      await plugin?.stop();
      for (const m of listMounts().filter((m) => m.mnt.startsWith(`${root}/`))) {
        forceUnmountSync(m.mnt);
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
