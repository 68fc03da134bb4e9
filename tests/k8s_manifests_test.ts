/**
 * The Kubernetes manifests in ops/kubernetes/, read with the `yaml` package: every object is
 * there with its kind and name, the socket paths agree between the driver and its sidecars
 * (and with the kubelet's registration path), the service accounts the workloads use exist and
 * are bound, and the driver name is the one the driver itself answers in GetPluginInfo.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { parseAllDocuments } from "yaml";
import { loadCsiProto, startCsi } from "../cli/csi.ts";
import { REPO_ROOT } from "./_mount.ts";

// deno-lint-ignore no-explicit-any
type Obj = any;

const DIR = `${REPO_ROOT}/ops/kubernetes`;

async function load(): Promise<Map<string, Obj[]>> {
  const byFile = new Map<string, Obj[]>();
  for await (const e of Deno.readDir(DIR)) {
    if (!e.name.endsWith(".yaml")) continue;
    const docs = parseAllDocuments(await Deno.readTextFile(`${DIR}/${e.name}`));
    for (const d of docs) assert.deepEqual(d.errors, [], `${e.name} parses`);
    byFile.set(e.name, docs.map((d) => d.toJS()).filter((o) => o !== null));
  }
  return byFile;
}

function find(all: Obj[], kind: string, name: string): Obj {
  const o = all.find((x) => x.kind === kind && x.metadata?.name === name);
  assert.ok(o, `a ${kind} named ${name}`);
  return o;
}

/** The value of `--flag=VALUE` (or `--flag VALUE`) in a container's args. */
function flag(container: Obj, name: string): string | undefined {
  const args: string[] = container.args ?? [];
  for (let i = 0; i < args.length; i++) {
    if (args[i]!.startsWith(`--${name}=`)) return args[i]!.slice(name.length + 3);
    if (args[i] === `--${name}`) return args[i + 1];
  }
  return undefined;
}

/** The folder of `socketPath` inside `container` and the volume mounted there. */
function socketVolume(container: Obj, socketPath: string): string {
  const dir = socketPath.replace(/^unix:\/\//, "").replace(/\/[^/]+$/, "");
  const m = (container.volumeMounts ?? []).find((v: Obj) => v.mountPath === dir);
  assert.ok(m, `${container.name} mounts a volume at ${dir}`);
  return m.name;
}

async function driverName(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-k8s-" });
  const server = await startCsi({
    endpoint: `unix://${dir}/csi.sock`,
    nodeId: "n",
    root: `${dir}/state`,
  });
  const client = new (loadCsiProto().Identity!)(
    `unix://${dir}/csi.sock`,
    grpc.credentials.createInsecure(),
  );
  try {
    return await new Promise<string>((ok, fail) =>
      (client as unknown as Record<string, (...a: unknown[]) => void>).GetPluginInfo!.call(
        client,
        {},
        (err: Error | null, res: { name: string }) => err ? fail(err) : ok(res.name),
      )
    );
  } finally {
    client.close();
    server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("ops/kubernetes: objects, socket paths, accounts and the driver name agree", async () => {
  const files = await load();
  const all = [...files.values()].flat();
  for (const f of ["csi-driver.yaml", "rbac.yaml", "controller.yaml", "node.yaml"]) {
    assert.ok(files.has(f), `ops/kubernetes/${f}`);
  }
  const name = await driverName();
  assert.equal(name, "csi.slayerfs.io");
  const driver = find(all, "CSIDriver", name);
  assert.equal(driver.spec.attachRequired, false, "no ControllerPublish, so no attach");
  assert.equal(find(all, "StorageClass", "slayerfs").provisioner, name);
  assert.equal(find(all, "StorageClass", "slayerfs").allowVolumeExpansion, true);
  const pvc = find(all, "PersistentVolumeClaim", "slayerfs-pvc");
  assert.equal(pvc.spec.storageClassName, "slayerfs");
  const pod = find(all, "Pod", "slayerfs-demo");
  assert.equal(pod.spec.volumes[0].persistentVolumeClaim.claimName, "slayerfs-pvc");

  // Controller: the driver and both sidecars share one socket.
  const ctl = find(all, "Deployment", "slayerfs-csi-controller").spec.template.spec;
  const byName = (pod: Obj, n: string) => {
    const c = pod.containers.find((c: Obj) => c.name === n);
    assert.ok(c, `container ${n}`);
    return c;
  };
  const ctlDriver = byName(ctl, "slayerfs");
  assert.equal(ctlDriver.args[0], "csi");
  const endpoint = flag(ctlDriver, "endpoint")!;
  assert.match(endpoint, /^unix:\/\/\/.+\.sock$/);
  const socketVol = socketVolume(ctlDriver, endpoint);
  for (const side of ["csi-provisioner", "csi-resizer"]) {
    const c = byName(ctl, side);
    assert.match(c.image, new RegExp(`/${side}:v\\d+\\.\\d+\\.\\d+$`));
    const addr = flag(c, "csi-address")!;
    assert.equal(addr, endpoint.replace(/^unix:\/\//, ""), `${side} --csi-address`);
    assert.equal(socketVolume(c, addr), socketVol, `${side} shares the socket's volume`);
  }

  // Node: the registrar shares the socket, and tells the kubelet where it is on the host.
  const node = find(all, "DaemonSet", "slayerfs-csi-node").spec.template.spec;
  const nodeDriver = byName(node, "slayerfs");
  assert.equal(nodeDriver.securityContext.privileged, true, "mounting needs privileges");
  const nodeEndpoint = flag(nodeDriver, "endpoint")!;
  const nodeVol = socketVolume(nodeDriver, nodeEndpoint);
  const reg = byName(node, "node-driver-registrar");
  assert.equal(flag(reg, "csi-address"), nodeEndpoint.replace(/^unix:\/\//, ""));
  assert.equal(socketVolume(reg, flag(reg, "csi-address")!), nodeVol);
  const hostDir = node.volumes.find((v: Obj) => v.name === nodeVol).hostPath.path;
  assert.equal(hostDir, `/var/lib/kubelet/plugins/${name}`);
  assert.equal(
    flag(reg, "kubelet-registration-path"),
    `${hostDir}/${nodeEndpoint.replace(/^.*\//, "")}`,
    "the registration path is the driver's socket as the host sees it",
  );
  const regDir = reg.volumeMounts.find((m: Obj) => m.mountPath === "/registration");
  assert.equal(
    node.volumes.find((v: Obj) => v.name === regDir.name).hostPath.path,
    "/var/lib/kubelet/plugins_registry",
  );
  const pods = nodeDriver.volumeMounts.find((m: Obj) => m.mountPath === "/var/lib/kubelet/pods");
  assert.equal(pods?.mountPropagation, "Bidirectional", "pods see the mounts");

  // Accounts: each workload's exists and the controller's is bound to its role.
  for (const spec of [ctl, node]) find(all, "ServiceAccount", spec.serviceAccountName);
  const binding = find(all, "ClusterRoleBinding", "slayerfs-csi-provisioner");
  assert.equal(binding.subjects[0].name, ctl.serviceAccountName);
  const role = find(all, "ClusterRole", binding.roleRef.name);
  assert.ok(
    role.rules.some((r: Obj) =>
      r.resources.includes("persistentvolumes") && r.verbs.includes("create")
    ),
    "the provisioner may create PersistentVolumes",
  );
  assert.ok(
    role.rules.some((r: Obj) =>
      r.resources.includes("persistentvolumeclaims/status") && r.verbs.includes("patch")
    ),
    "the resizer may patch claims' status",
  );

  // The StorageClass hands the secret to every call that needs it, and the secret has the keys.
  const sc = find(all, "StorageClass", "slayerfs");
  const secret = find(all, "Secret", "slayerfs-secret");
  for (const call of ["provisioner", "controller-expand", "node-publish"]) {
    assert.equal(sc.parameters[`csi.storage.k8s.io/${call}-secret-name`], "slayerfs-secret");
    assert.equal(
      sc.parameters[`csi.storage.k8s.io/${call}-secret-namespace`],
      secret.metadata.namespace,
    );
  }
  for (const k of ["metaurl", "access-key", "secret-key"]) assert.ok(k in secret.stringData, k);
});
