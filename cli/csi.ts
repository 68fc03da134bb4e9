/**
 * `slayerfs csi --endpoint unix:///csi/csi.sock --node-id NODE [--meta META_URL]`: the
 * Kubernetes CSI driver `csi.slayerfs.io`, serving the Identity, Controller (`csi/_controller.ts`)
 * and Node (`csi/_node.ts`) services of CSI v1.9.0 over gRPC (`@grpc/grpc-js`, with the
 * services read from `csi/csi.proto`). One process serves all three: the controller Deployment
 * and the node DaemonSet run the same command. Requests are logged by RPC and volume id only,
 * never with their secrets.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { resolve } from "node:path";
import { CliError } from "./_errors.ts";
import type { ParsedArgs } from "./_spec.ts";
import { VERSION } from "./version.ts";
import { DRIVER_NAME, toStatus } from "./csi/_common.ts";
import { ControllerService } from "./csi/_controller.ts";
import { NodeService } from "./csi/_node.ts";

/** The CSI protocol file (the spec's csi.proto, v1.9.0, the part SlayerFS serves). */
export const CSI_PROTO: string = new URL("./csi/csi.proto", import.meta.url).pathname;

function log(line: string): void {
  console.error(`slayerfs: [csi] ${new Date().toISOString()} ${line}`);
}

/** The values of a request's `secrets` map, to be kept out of errors and logs. */
function secretValues(secrets: unknown): string[] {
  if (!secrets || typeof secrets !== "object") return [];
  return Object.values(secrets).filter((v): v is string => typeof v === "string" && v !== "");
}

type Handler = (req: Record<string, unknown>) => Promise<object>;

/** Wraps async handlers as grpc-js unary handlers that answer errors as gRPC statuses. */
function unary(handlers: Record<string, Handler>): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const [name, fn] of Object.entries(handlers)) {
    out[name] = (
      call: grpc.ServerUnaryCall<Record<string, unknown>, object>,
      cb: grpc.sendUnaryData<object>,
    ) => {
      const started = Date.now();
      const id = call.request.volume_id ?? call.request.name ?? "";
      // A handler that throws before its first await still answers with a status.
      Promise.resolve().then(() => fn(call.request)).then((res) => {
        if (!/^(Probe|Get|NodeGet|ControllerGet)/.test(name) || name === "NodeGetVolumeStats") {
          log(`${name} ${id} ok (${Date.now() - started} ms)`);
        }
        cb(null, res);
      }, (err) => {
        const status = toStatus(err, secretValues(call.request.secrets));
        log(`${name} ${id} failed: ${grpc.status[status.code]}: ${status.details}`);
        cb({ code: status.code, details: status.details } as grpc.ServiceError, null);
      });
    };
  }
  return out;
}

/** The CSI services' definitions, loaded from {@linkcode CSI_PROTO}. */
export function loadCsiProto(): Record<string, grpc.ServiceClientConstructor> {
  const def = protoLoader.loadSync(CSI_PROTO, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    csi: { v1: Record<string, grpc.ServiceClientConstructor> };
  };
  return pkg.csi.v1;
}

/** A running CSI server. */
export interface CsiServer {
  /** Stops serving (calls in flight are cut). */
  stop(): void;
}

/** Serves the driver at `endpoint` (`unix:///PATH`). */
export async function startCsi(opts: {
  endpoint: string;
  nodeId: string;
  meta?: string | undefined;
  root: string;
}): Promise<CsiServer> {
  const csi = loadCsiProto();
  const controller = new ControllerService(opts.meta);
  const node = await NodeService.open(opts.nodeId, opts.meta, opts.root);
  const server = new grpc.Server();
  server.addService(
    csi.Identity!.service,
    unary({
      GetPluginInfo: () => Promise.resolve({ name: DRIVER_NAME, vendor_version: VERSION }),
      GetPluginCapabilities: () =>
        Promise.resolve({
          capabilities: [
            { service: { type: "CONTROLLER_SERVICE" } },
            { volume_expansion: { type: "ONLINE" } },
          ],
        }),
      Probe: () => Promise.resolve({ ready: { value: true } }),
    }),
  );
  const bind = <T extends object>(svc: T, names: (keyof T & string)[]) =>
    Object.fromEntries(names.map((n) => [n, (svc[n] as Handler).bind(svc)]));
  server.addService(
    csi.Controller!.service,
    unary(bind(controller, [
      "CreateVolume",
      "DeleteVolume",
      "ValidateVolumeCapabilities",
      "ControllerGetCapabilities",
      "ControllerExpandVolume",
    ])),
  );
  server.addService(
    csi.Node!.service,
    unary(bind(node, [
      "NodePublishVolume",
      "NodeUnpublishVolume",
      "NodeGetVolumeStats",
      "NodeGetCapabilities",
      "NodeGetInfo",
    ])),
  );
  const path = opts.endpoint.replace(/^unix:\/\//, "");
  await Deno.mkdir(path.replace(/\/[^/]*$/, "") || "/", { recursive: true });
  await Deno.remove(path).catch(() => {});
  await new Promise<number>((ok, fail) =>
    server.bindAsync(
      `unix://${path}`,
      grpc.ServerCredentials.createInsecure(),
      (err, port) => err ? fail(err) : ok(port),
    )
  );
  log(`${DRIVER_NAME} ${VERSION} serving on unix://${path} (node ${opts.nodeId})`);
  return {
    stop() {
      server.forceShutdown();
      try {
        Deno.removeSync(path);
      } catch { /* grpc removed it */ }
    },
  };
}

/** Runs `slayerfs csi` with its checked arguments. */
export async function cmdCsi(args: ParsedArgs): Promise<void> {
  const endpoint = args.string("endpoint") ?? "unix:///csi/csi.sock";
  if (!/^unix:\/\/\/./.test(endpoint)) {
    throw new CliError(`Invalid --endpoint "${endpoint}": expected unix:///PATH`, 2);
  }
  const nodeId = args.string("node-id");
  if (!nodeId) throw new CliError("Missing --node-id NODE (this node's name)", 2);
  const server = await startCsi({
    endpoint,
    nodeId,
    meta: args.string("meta"),
    root: resolve(args.string("root") ?? "/var/lib/slayerfs/csi"),
  });
  const { promise, resolve: done } = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGTERM", () => done());
  Deno.addSignalListener("SIGINT", () => done());
  await promise;
  server.stop();
  log("stopped");
}
