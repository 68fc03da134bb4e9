/**
 * `slayerfs docker-plugin --meta META_URL [--socket PATH] [--root DIR]`: a Docker volume plugin.
 * It answers Docker's volume plugin protocol (HTTP POSTs with JSON bodies on a unix socket:
 * `/Plugin.Activate` and `/VolumeDriver.*`) and keeps each Docker volume as a folder of a SlayerFS
 * volume (`_docker_volumes.ts`). Errors are answered as `{"Err": "..."}`, as Docker expects.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { DockerVolumeError, DockerVolumes } from "./_docker_volumes.ts";
import { CliError, describe } from "./_errors.ts";
import type { ParsedArgs } from "./_spec.ts";
import { checkMetaUrl } from "./_urls.ts";
import { redact, SubvolumeError } from "./_subvolumes.ts";
import { runVolumeAdmin } from "./_volume_admin.ts";

/** Where Docker looks for a plugin named `slayerfs`. */
export const DEFAULT_PLUGIN_SOCKET = "/run/docker/plugins/slayerfs.sock";
/** Where the volumes are mounted by default. */
export const DEFAULT_PLUGIN_ROOT = "/var/lib/slayerfs/docker";

const CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json";

function log(line: string): void {
  console.error(`slayerfs: [docker-plugin] ${new Date().toISOString()} ${line}`);
}

/** Answers one protocol call. */
async function answer(vols: DockerVolumes, call: string, body: Record<string, unknown>) {
  const name = String(body.Name ?? "");
  const id = String(body.ID ?? "");
  switch (call) {
    case "Plugin.Activate":
      return { Implements: ["VolumeDriver"] };
    case "VolumeDriver.Capabilities":
      return { Capabilities: { Scope: vols.scope } };
    case "VolumeDriver.Create":
      await vols.create(name, body.Opts as Record<string, string> | null);
      return { Err: "" };
    case "VolumeDriver.Remove":
      await vols.remove(name);
      return { Err: "" };
    case "VolumeDriver.Mount":
      return { Mountpoint: await vols.mount(name, id), Err: "" };
    case "VolumeDriver.Unmount":
      await vols.unmount(name, id);
      return { Err: "" };
    case "VolumeDriver.Path":
      return { Mountpoint: vols.path(name), Err: "" };
    case "VolumeDriver.Get":
      return { Volume: await vols.get(name), Err: "" };
    case "VolumeDriver.List":
      return { Volumes: await vols.list(), Err: "" };
    default:
      return undefined;
  }
}

/** The HTTP handler of the plugin socket. */
export function pluginHandler(vols: DockerVolumes): (req: Request) => Promise<Response> {
  return async (req) => {
    const call = new URL(req.url).pathname.replace(/^\//, "");
    const reply = (status: number, body: unknown) =>
      new Response(JSON.stringify(body), { status, headers: { "content-type": CONTENT_TYPE } });
    let body: Record<string, unknown> = {};
    try {
      const text = await req.text();
      if (text.trim()) body = JSON.parse(text);
    } catch {
      return reply(400, { Err: "The request body is not JSON" });
    }
    const started = Date.now();
    try {
      const out = await answer(vols, call, body);
      if (out === undefined) return reply(404, { Err: `Unknown call "${call}"` });
      if (call !== "VolumeDriver.Path" && call !== "VolumeDriver.Capabilities") {
        log(`${call} ${body.Name ?? ""} ok (${Date.now() - started} ms)`);
      }
      return reply(200, out);
    } catch (err) {
      const known = err instanceof DockerVolumeError || err instanceof SubvolumeError;
      const msg = redact(known ? err.message : describe(err));
      log(`${call} ${body.Name ?? ""} failed: ${msg}`);
      return reply(200, { Err: msg });
    }
  };
}

/** Runs `slayerfs docker-plugin` with its checked arguments. */
export async function cmdDockerPlugin(args: ParsedArgs): Promise<void> {
  const meta = args.string("meta");
  if (!meta) {
    throw new CliError("Missing --meta META_URL (the volume holding the Docker volumes)", 2);
  }
  checkMetaUrl(meta);
  const socket = resolve(args.string("socket") ?? DEFAULT_PLUGIN_SOCKET);
  const root = resolve(args.string("root") ?? DEFAULT_PLUGIN_ROOT);
  // The volume must be there: a mistake in --meta fails now, not at Docker's first call.
  try {
    await runVolumeAdmin(meta, [{ op: "stat", path: "/" }]);
  } catch (err) {
    throw err instanceof CliError
      ? err
      : new CliError(`Cannot open ${redact(meta)}: ${describe(err)}`);
  }
  const vols = await DockerVolumes.open(meta, root);
  await Deno.mkdir(dirname(socket), { recursive: true });
  await Deno.remove(socket).catch(() => {});
  const ac = new AbortController();
  const server = Deno.serve({
    path: socket,
    signal: ac.signal,
    onListen: () => log(`serving on ${socket}, volumes mounted under ${root}`),
  }, pluginHandler(vols));
  const stop = () => ac.abort();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  try {
    await server.finished;
  } finally {
    Deno.removeSignalListener("SIGTERM", stop);
    Deno.removeSignalListener("SIGINT", stop);
    await Deno.remove(socket).catch(() => {});
    // The volumes stay mounted for the containers using them; the next start adopts them.
    log("stopped");
  }
}
