/**
 * `slayerfs csi` played by the two sides Kubernetes would put in front of it, with no
 * Kubernetes: the external-provisioner, csi-resizer and kubelet calls made with `@grpc/grpc-js`
 * (the driver's own library), and the same walk again from a second, independent client,
 * Debian's python3-grpcio with the stubs compiled from the repository's csi.proto by
 * grpc_tools in the test's temp dir. CreateVolume → NodePublishVolume (a real SlayerFS mount
 * at the target path) → a runc container with the target bound in writes and reads through it
 * and hits the quota → NodeGetVolumeStats → ControllerExpandVolume → NodeUnpublishVolume (no
 * mount left) → DeleteVolume, with the spec's error codes along the way; the Python walk runs
 * its own runc container on the target it published.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { loadCsiProto } from "../cli/csi.ts";
import { startRedis } from "./_redis.ts";
import {
  CLI,
  forceUnmountSync,
  goneFromOtherMount,
  listMounts,
  REPO_ROOT,
  startSlayer,
} from "./_mount.ts";
import { busyboxRootfs, must, runcBundle } from "./_containers.ts";
import { run } from "./_run.ts";

const MiB = 2 ** 20;
/** Debian's Python, where apt puts python3-grpcio (not another python3 earlier on PATH). */
const PYTHON = "/usr/bin/python3";
const MOUNT_CAP = {
  mount: { fs_type: "", mount_flags: [] },
  access_mode: { mode: "MULTI_NODE_MULTI_WRITER" },
};
const RO_CAP = { mount: {}, access_mode: { mode: "MULTI_NODE_READER_ONLY" } };

type Call = (method: string, req: object) => Promise<Record<string, unknown>>;

/** A promise-returning client of the three services at `sock`. */
function jsClient(sock: string): { call: Call; close(): void } {
  const csi = loadCsiProto();
  const clients = ["Identity", "Controller", "Node"].map((s) =>
    new csi[s]!(`unix://${sock}`, grpc.credentials.createInsecure())
  );
  const call: Call = (method, req) => {
    const client = clients.find((c) => typeof (c as never)[method] === "function");
    if (!client) throw new Error(`no service has ${method}`);
    return new Promise((ok, fail) => {
      (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!.call(
        client,
        req,
        { deadline: Date.now() + 120_000 },
        (err: grpc.ServiceError | null, res: Record<string, unknown>) => err ? fail(err) : ok(res),
      );
    });
  };
  return { call, close: () => clients.forEach((c) => c.close()) };
}

/** Asserts that `p` fails with gRPC status `code`. */
async function rejectsWith(p: Promise<unknown>, code: grpc.status): Promise<void> {
  await assert.rejects(p, (err: grpc.ServiceError) => {
    assert.equal(grpc.status[err.code], grpc.status[code], err.details);
    return true;
  });
}

/** Installs the Python gRPC packages from apt when missing. */
async function ensurePythonGrpc(): Promise<void> {
  const have = await run(PYTHON, ["-c", "import grpc, grpc_tools.protoc"]);
  if (have.code === 0) return;
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const pkgs = ["python3-grpcio", "python3-grpc-tools"];
  let r = await run("apt-get", ["install", "-y", "-qq", ...pkgs], { env });
  if (r.code !== 0) {
    await run("apt-get", ["update", "-qq"], { env });
    r = await run("apt-get", ["install", "-y", "-qq", ...pkgs], { env });
  }
  if (r.code !== 0) throw new Error(`apt-get install ${pkgs.join(" ")} failed:\n${r.stderr}`);
}

async function startDriver(dir: string, meta: string) {
  const sock = `${dir}/csi.sock`;
  const log = `${dir}/csi.log`;
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `exec "$@" >>'${log}' 2>&1`,
      "sh",
      Deno.execPath(),
      "run",
      "-A",
      CLI,
      "csi",
      "--endpoint",
      `unix://${sock}`,
      "--node-id",
      "node-1",
      "--meta",
      meta,
      "--root",
      `${dir}/state`,
    ],
    cwd: REPO_ROOT,
    stdin: "null",
  }).spawn();
  const readLog = () => Deno.readTextFile(log).catch(() => "");
  const deadline = Date.now() + 60_000;
  while (!await Deno.stat(sock).then(() => true, () => false)) {
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the driver did not start:\n${await readLog()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    sock,
    readLog,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await child.status;
      clearTimeout(timer);
    },
  };
}

/** Runs `sh -c script` in a runc container whose /data is `target`. */
async function inContainer(dir: string, rootfs: string, target: string, script: string) {
  const id = `slayerfs-csi-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const bundle = `${dir}/bundle-${id}`;
  await runcBundle(bundle, rootfs, ["sh", "-c", script]);
  const cfgPath = `${bundle}/config.json`;
  const cfg = JSON.parse(await Deno.readTextFile(cfgPath));
  cfg.mounts.push({ destination: "/data", type: "bind", source: target, options: ["rbind"] });
  await Deno.writeTextFile(cfgPath, JSON.stringify(cfg));
  const child = new Deno.Command("runc", {
    args: ["run", "--bundle", bundle, id],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => run("runc", ["kill", id, "KILL"]), 60_000);
  const out = await child.output();
  clearTimeout(timer);
  await run("runc", ["delete", "-f", id]);
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const slayerMountAt = (p: string) => listMounts().some((m) => m.mnt === p);

Deno.test({
  name: "csi: the provisioner's and kubelet's calls, from grpc-js and from python3-grpcio",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // Redis: the engine that the hosts of a cluster share.
    await using redis = await startRedis();
    await using fs = await startSlayer({ meta: redis.url({ prefix: "csi" }) });
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-csi-" });
    let driver: Awaited<ReturnType<typeof startDriver>> | undefined;
    let client: ReturnType<typeof jsClient> | undefined;
    try {
      await ensurePythonGrpc();
      await busyboxRootfs(`${dir}/rootfs`);
      driver = await startDriver(dir, fs.meta);
      client = jsClient(driver.sock);
      const call = client.call;

      // Identity.
      const info = await call("GetPluginInfo", {});
      assert.equal(info.name, "csi.slayerfs.io");
      assert.deepEqual(await call("Probe", {}), { ready: { value: true } });
      const pcaps = JSON.stringify(await call("GetPluginCapabilities", {}));
      assert.match(pcaps, /CONTROLLER_SERVICE/);
      assert.match(pcaps, /ONLINE/);
      assert.match(JSON.stringify(await call("ControllerGetCapabilities", {})), /EXPAND_VOLUME/);
      assert.match(JSON.stringify(await call("NodeGetCapabilities", {})), /GET_VOLUME_STATS/);
      assert.equal((await call("NodeGetInfo", {})).node_id, "node-1");

      // CreateVolume, idempotent; the same name with another capacity is ALREADY_EXISTS.
      const create = {
        name: "pvc-0001",
        capacity_range: { required_bytes: 4 * MiB },
        volume_capabilities: [MOUNT_CAP],
        parameters: { tier: "gold" },
      };
      const vol = (await call("CreateVolume", create)).volume as Record<string, unknown>;
      assert.equal(vol.volume_id, "pvc-0001");
      assert.equal(Number(vol.capacity_bytes), 4 * MiB);
      assert.deepEqual((await call("CreateVolume", create)).volume, vol);
      await rejectsWith(
        call("CreateVolume", { ...create, capacity_range: { required_bytes: 8 * MiB } }),
        grpc.status.ALREADY_EXISTS,
      );
      await rejectsWith(
        call("CreateVolume", { ...create, parameters: { tier: "silver" } }),
        grpc.status.ALREADY_EXISTS,
      );
      await rejectsWith(
        call("CreateVolume", { ...create, name: "" }),
        grpc.status.INVALID_ARGUMENT,
      );
      await rejectsWith(
        call("CreateVolume", { ...create, name: "x", volume_capabilities: [] }),
        grpc.status.INVALID_ARGUMENT,
      );
      await rejectsWith(
        call("CreateVolume", {
          ...create,
          name: "x",
          volume_capabilities: [{ block: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } }],
        }),
        grpc.status.INVALID_ARGUMENT,
      );
      assert.ok((await Deno.stat(`${fs.mnt}/csi-volumes/pvc-0001`)).isDirectory);

      // ValidateVolumeCapabilities.
      const valid = await call("ValidateVolumeCapabilities", {
        volume_id: "pvc-0001",
        volume_capabilities: [MOUNT_CAP, RO_CAP],
      });
      assert.ok(valid.confirmed, JSON.stringify(valid));
      await rejectsWith(
        call("ValidateVolumeCapabilities", { volume_id: "nope", volume_capabilities: [MOUNT_CAP] }),
        grpc.status.NOT_FOUND,
      );

      // NodePublishVolume: a mount at the target, idempotent; read-only at a second target.
      const target = `${dir}/pods/p1/volumes/pvc-0001/mount`;
      const roTarget = `${dir}/pods/p2/volumes/pvc-0001/mount`;
      await Deno.mkdir(`${dir}/pods/p1/volumes/pvc-0001`, { recursive: true });
      await Deno.mkdir(`${dir}/pods/p2/volumes/pvc-0001`, { recursive: true });
      const publish = { volume_id: "pvc-0001", target_path: target, volume_capability: MOUNT_CAP };
      await call("NodePublishVolume", publish);
      assert.ok(slayerMountAt(target), "a mount at target_path");
      await call("NodePublishVolume", publish);
      await rejectsWith(
        call("NodePublishVolume", { ...publish, readonly: true }),
        grpc.status.ALREADY_EXISTS,
      );
      await rejectsWith(
        call("NodePublishVolume", { ...publish, volume_id: "nope", target_path: `${dir}/x` }),
        grpc.status.NOT_FOUND,
      );
      await rejectsWith(
        call("NodePublishVolume", { ...publish, target_path: "" }),
        grpc.status.INVALID_ARGUMENT,
      );
      await call("NodePublishVolume", {
        volume_id: "pvc-0001",
        target_path: roTarget,
        volume_capability: RO_CAP,
      });

      // A container with the target bound in writes and reads through it, up to the quota.
      const rootfs = `${dir}/rootfs`;
      const out = await inContainer(
        dir,
        rootfs,
        target,
        "echo from-pod > /data/hello && cat /data/hello && cat /dev/zero > /data/big",
      );
      assert.match(out.stdout, /^from-pod$/m);
      assert.notEqual(out.code, 0);
      assert.match(out.stderr, /Disk quota exceeded/);
      assert.equal(await Deno.readTextFile(`${fs.mnt}/csi-volumes/pvc-0001/hello`), "from-pod\n");
      assert.equal(await Deno.readTextFile(`${roTarget}/hello`), "from-pod\n");
      await assert.rejects(Deno.writeTextFile(`${roTarget}/x`, "x"), /Read-only file system/);

      // NodeGetVolumeStats from the quota; ControllerExpandVolume raises it.
      const stats =
        (await call("NodeGetVolumeStats", { volume_id: "pvc-0001", volume_path: target }))
          .usage as Record<string, string>[];
      const bytes = stats.find((u) => u.unit === "BYTES")!;
      assert.equal(Number(bytes.total), 4 * MiB);
      assert.ok(Number(bytes.used) > 3 * MiB, `used ${bytes.used}`);
      assert.ok(stats.some((u) => u.unit === "INODES" && Number(u.used) >= 2));
      const grown = await call("ControllerExpandVolume", {
        volume_id: "pvc-0001",
        capacity_range: { required_bytes: 16 * MiB },
      });
      assert.equal(Number(grown.capacity_bytes), 16 * MiB);
      assert.equal(grown.node_expansion_required, false);
      const after =
        (await call("NodeGetVolumeStats", { volume_id: "pvc-0001", volume_path: target }))
          .usage as Record<string, string>[];
      assert.equal(Number(after.find((u) => u.unit === "BYTES")!.total), 16 * MiB);
      const more = await inContainer(
        dir,
        rootfs,
        target,
        "echo more > /data/more && cat /data/more",
      );
      assert.equal(more.code, 0, more.stderr);
      await rejectsWith(
        call("ControllerExpandVolume", {
          volume_id: "nope",
          capacity_range: { required_bytes: 1 },
        }),
        grpc.status.NOT_FOUND,
      );
      await rejectsWith(
        call("NodeGetVolumeStats", { volume_id: "pvc-0001", volume_path: `${dir}/elsewhere` }),
        grpc.status.NOT_FOUND,
      );

      // NodeUnpublishVolume leaves no mount (and again is fine); DeleteVolume, twice.
      for (const t of [target, roTarget, target]) {
        await call("NodeUnpublishVolume", { volume_id: "pvc-0001", target_path: t });
      }
      assert.ok(!slayerMountAt(target) && !slayerMountAt(roTarget), "no mount left");
      await assert.rejects(Deno.stat(target), Deno.errors.NotFound);
      await call("DeleteVolume", { volume_id: "pvc-0001" });
      await call("DeleteVolume", { volume_id: "pvc-0001" });
      await goneFromOtherMount(`${fs.mnt}/csi-volumes/pvc-0001`);
      await rejectsWith(call("DeleteVolume", {}), grpc.status.INVALID_ARGUMENT);

      // The same walk from Python's gRPC, with stubs compiled from the repository's proto.
      const py = `${dir}/py`;
      await Deno.mkdir(py);
      await must(PYTHON, [
        "-m",
        "grpc_tools.protoc",
        `-I${REPO_ROOT}/cli/csi`,
        `--python_out=${py}`,
        `--grpc_python_out=${py}`,
        `${REPO_ROOT}/cli/csi/csi.proto`,
      ], "grpc_tools.protoc");
      await Deno.copyFile(new URL("./csi_client.py", import.meta.url).pathname, `${py}/walk.py`);
      // A runc bundle whose /data is the target the Python client publishes to; it runs it.
      const pyTarget = `${dir}/pods/p3/volumes/pvc-py/mount`;
      const bundle = `${dir}/bundle-py`;
      await runcBundle(bundle, rootfs, ["sh", "-c", "cat /data/hello; echo +runc >> /data/hello"]);
      const cfg = JSON.parse(await Deno.readTextFile(`${bundle}/config.json`));
      cfg.mounts.push({ destination: "/data", type: "bind", source: pyTarget, options: ["rbind"] });
      await Deno.writeTextFile(`${bundle}/config.json`, JSON.stringify(cfg));
      const pyOut = await run("timeout", [
        "300",
        PYTHON,
        `${py}/walk.py`,
        driver.sock,
        pyTarget,
        bundle,
        `slayerfs-csi-py-${Deno.pid}`,
      ], { cwd: py });
      await run("runc", ["delete", "-f", `slayerfs-csi-py-${Deno.pid}`]);
      assert.equal(pyOut.code, 0, `${pyOut.stdout}\n${pyOut.stderr}`);
      assert.match(pyOut.stdout, /^published: hello-from-python$/m);
      assert.match(pyOut.stdout, /^container: hello-from-python$/m);
      assert.match(pyOut.stdout, /^after: hello-from-python\+runc$/m);
      assert.match(pyOut.stdout, /^done$/m);
      await goneFromOtherMount(`${fs.mnt}/csi-volumes/pvc-py`);
      // No secret is ever logged.
      assert.doesNotMatch(await driver.readLog(), /s3cr3t/);
    } catch (err) {
      console.error(await driver?.readLog());
      throw err;
    } finally {
      client?.close();
      await driver?.stop();
      for (const m of listMounts().filter((m) => m.mnt.startsWith(`${dir}/`))) {
        forceUnmountSync(m.mnt);
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
