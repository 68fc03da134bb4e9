/**
 * The daemons read settings files too: `docker-plugin` and `csi` take their options from their
 * sections of a `--config` file (and `SLAYERFS_*` variables), `config show docker-plugin|csi`
 * shows them with their sources, and a real plugin and CSI driver started with only `--config`
 * listen where the file says.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CLI, REPO_ROOT } from "./_mount.ts";
import { run, type RunResult } from "./_run.ts";

function cli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<RunResult> {
  return run("timeout", ["-k", "5", "90", Deno.execPath(), "run", "-A", CLI, ...args], {
    cwd,
    env: { SLAYERFS_CONFIG: "", ...env },
  });
}

/** One HTTP/1.0 POST over a unix socket; the whole answer as text. */
async function postUnix(path: string, url: string): Promise<string> {
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await conn.write(
      new TextEncoder().encode(`POST ${url} HTTP/1.0\r\nHost: plugin\r\nContent-Length: 0\r\n\r\n`),
    );
    let text = "";
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text;
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
  }
}

async function waitForSocket(path: string, child: Deno.ChildProcess, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  let done = false;
  child.status.then(() => done = true);
  for (;;) {
    try {
      if ((await Deno.lstat(path)).isSocket) return;
    } catch { /* not yet */ }
    if (done) throw new Error(`${what} exited before listening on ${path}`);
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${path} within 60 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test({
  name: "docker-plugin and csi read their sections of a config file; config show shows them",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-config-daemons-" });
    const children: Deno.ChildProcess[] = [];
    try {
      const meta = `sqlite3://${dir}/meta.db`;
      const format = await cli(["format", "--storage", `file://${dir}/blocks`, meta, "v"], dir);
      assert.equal(format.code, 0, format.stderr);
      await Deno.writeTextFile(
        `${dir}/daemons.yaml`,
        [
          "docker-plugin:",
          `  meta: ${meta}`,
          "  socket: plugin/slayerfs.sock",
          "  root: plugin-root",
          "csi:",
          `  meta: ${meta}`,
          `  endpoint: unix://${dir}/csi/csi.sock`,
          "  node-id: node-7",
          "  root: csi-root",
          "",
        ].join("\n"),
      );
      await Deno.mkdir(`${dir}/plugin`);
      await Deno.mkdir(`${dir}/csi`);

      // config show: each setting with its source; a variable beats the file.
      const shown = await cli(
        ["config", "show", "docker-plugin", "--json", "--config", "daemons.yaml"],
        dir,
        { SLAYERFS_ROOT: `${dir}/from-env` },
      );
      assert.equal(shown.code, 0, shown.stderr);
      const s = JSON.parse(shown.stdout) as {
        command: string;
        settings: Record<string, { text: string; source: string; line?: number }>;
      };
      assert.equal(s.command, "docker-plugin");
      assert.deepEqual(
        [s.settings.socket?.text, s.settings.socket?.source, s.settings.socket?.line],
        [`${dir}/plugin/slayerfs.sock`, "file", 3],
        "a relative path in the file is relative to the file's folder",
      );
      assert.deepEqual([s.settings.root?.text, s.settings.root?.source], [
        `${dir}/from-env`,
        "env",
      ]);
      const csiShown = await cli(["config", "show", "csi", "--config", "daemons.yaml"], dir);
      assert.equal(csiShown.code, 0, csiShown.stderr);
      assert.match(csiShown.stdout, /node-id\s+node-7\s+file .*daemons\.yaml:8/);

      // The daemons themselves, with nothing but --config on their command lines.
      const spawn = (args: string[]) => {
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", CLI, ...args],
          cwd: REPO_ROOT,
          env: { SLAYERFS_CONFIG: "" },
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn();
        children.push(child);
        return child;
      };
      const plugin = spawn(["docker-plugin", "--config", `${dir}/daemons.yaml`]);
      await waitForSocket(`${dir}/plugin/slayerfs.sock`, plugin, "docker-plugin");
      const activated = await postUnix(`${dir}/plugin/slayerfs.sock`, "/Plugin.Activate");
      assert.match(activated, /^HTTP\/1\.[01] 200/);
      assert.match(activated, /"Implements":\s*\["VolumeDriver"\]/);
      const csi = spawn(["csi", "--config", `${dir}/daemons.yaml`]);
      await waitForSocket(`${dir}/csi/csi.sock`, csi, "csi");
    } finally {
      for (const c of children) {
        try {
          c.kill("SIGTERM");
        } catch { /* gone */ }
        await c.status;
      }
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
