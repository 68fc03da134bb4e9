import assert from "node:assert/strict";
import { findCommand } from "./_commands.ts";
import { envName, fileKey, loadSettings, sections } from "./_config.ts";
import { helperArgs } from "./fstab.ts";
import { parseCommand } from "./_spec.ts";

/** Variables SlayerFS already reads for other purposes (`grep -r SLAYERFS_`). */
const RESERVED = [
  "SLAYERFS_HOME",
  "SLAYERFS_DEBUG",
  "SLAYERFS_LIBC",
  "SLAYERFS_LIBFUSE",
  "SLAYERFS_LIBLZ4",
  "SLAYERFS_LIBXXHASH",
  "SLAYERFS_MALLOPT",
  "SLAYERFS_CLI",
  "SLAYERFS_TEST_TIMEOUT",
  "SLAYERFS_S3_BENCH",
  "SLAYERFS_ENCRYPTION_KEY",
];

/** Every `Deno.env.get("SLAYERFS_…")` in the sources: each means something else already. */
async function readInSources(): Promise<string[]> {
  const root = new URL("..", import.meta.url).pathname;
  const found = new Set<string>();
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory && !e.name.startsWith(".") && e.name !== "node_modules") {
        await walk(`${dir}/${e.name}`);
      } else if (e.isFile && e.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(`${dir}/${e.name}`);
        for (const m of text.matchAll(/Deno\.env\.get\("(SLAYERFS_[A-Z0-9_]+)"\)/g)) {
          found.add(m[1]!);
        }
      }
    }
  };
  for (const d of ["cli", "core", "backends", "ffi", "wasm", "tests", "bench"]) {
    await walk(root + d);
  }
  found.delete("SLAYERFS_CONFIG"); // the config layer's own
  return [...found];
}

Deno.test("config envName() gives every settable option a variable that no other use takes", async () => {
  const reserved = [...RESERVED, ...await readInSources()];
  assert.ok(reserved.includes("SLAYERFS_CRYPTO"), "the scan finds the variables read");
  const seen = new Map<string, string>();
  for (const spec of sections()) {
    for (const o of spec.options) {
      const name = envName(o);
      assert.ok(!reserved.includes(name), `${spec.name} --${o.name}: ${name} is taken`);
      const other = seen.get(name);
      assert.ok(other === undefined || other === o.name, `${name}: ${other} and ${o.name}`);
      seen.set(name, o.name);
    }
  }
  assert.equal(
    envName(findCommand("mount")!.options.find((o) => o.name === "o")!),
    "SLAYERFS_OPTIONS",
  );
  assert.ok(seen.has("SLAYERFS_CACHE_SIZE") && seen.has("SLAYERFS_BLOCK_SIZE"));
  assert.deepEqual(sections().map((s) => s.name).sort(), [
    "csi",
    "docker-plugin",
    "format",
    "mount",
  ]);
  assert.equal(fileKey({ name: "cache-size", kind: "size", help: "" }), "cache-size");
});

Deno.test("config loadSettings() ranks flags over the environment over the file over defaults", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/s.toml`;
    await Deno.writeTextFile(
      file,
      `# comment\n[mount]\nmeta-url = "sqlite3:///x/meta.db"\nmountpoint = "m"\n` +
        `cache-size = "1G"\nlog-level = "error"\n"atime-mode" = "relatime"\n` +
        `options = { ro = true, attr_timeout = 2 }\n[format]\nblock-size = "1M"\n`,
    );
    const spec = findCommand("mount")!;
    const parsed = parseCommand(spec, ["--config", file, "--log-level", "debug"]);
    const { args, lines } = loadSettings(spec, parsed, {
      env: { SLAYERFS_CACHE_SIZE: "100", SLAYERFS_WRITEBACK: "yes" },
    });
    assert.deepEqual(args.positionals, ["sqlite3:///x/meta.db", `${dir}/m`]);
    assert.equal(args.string("log-level"), "debug");
    assert.equal(args.source("log-level"), "flag");
    assert.equal(args.number("cache-size"), 100 * 2 ** 20, "a plain number is MiB here too");
    assert.equal(args.source("cache-size"), "env");
    assert.equal(args.flag("writeback"), true);
    assert.equal(args.string("atime-mode"), "relatime");
    assert.equal(args.source("atime-mode"), "file");
    assert.equal(lines.get("atime-mode"), 7, "a quoted TOML key's line");
    assert.equal(lines.get("o"), 8, "an inline table's line");
    assert.deepEqual(args.list("o"), ["ro", "attr_timeout=2"]);
    assert.equal(args.source("session-timeout"), "default");
    // The command line's arguments are the last ones: a mountpoint replaces the file's.
    const one = loadSettings(spec, parseCommand(spec, ["--config", file, "/mnt/q"]), { env: {} });
    assert.deepEqual(one.args.positionals, ["sqlite3:///x/meta.db", "/mnt/q"]);
    assert.equal(one.args.source("mountpoint"), "flag");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config helperArgs() turns mount(8)'s helper call into slayerfs mount", () => {
  const call = helperArgs([
    "sqlite3:///var/lib/x/meta.db",
    "/mnt/x",
    "-v",
    "-o",
    "rw,noatime,noexec,nosuid,nodev,cache-size=1G,allow_other,_netdev,nofail,user,writeback," +
    "x-systemd.automount,config=/etc/slayerfs.yaml,attr_timeout=2",
  ]);
  assert.deepEqual(call.args, [
    "mount",
    "--background",
    "--atime-mode",
    "noatime",
    "--cache-size",
    "1G",
    "--writeback",
    "--config",
    "/etc/slayerfs.yaml",
    "-o",
    "noexec,allow_other,attr_timeout=2",
    "sqlite3:///var/lib/x/meta.db",
    "/mnt/x",
  ]);
  assert.equal(call.verbose, true);
  assert.equal(call.fake, false);
  assert.deepEqual(helperArgs(["none", "/mnt/x", "-f"]).args, ["mount", "--background", "/mnt/x"]);
  assert.throws(() => helperArgs(["m", "/d", "-o", "cache-sise=1G"]), /did you mean cache-size/);
  assert.throws(() => helperArgs(["m", "/d", "-o", "cache-size"]), /needs a value/);
  assert.deepEqual(helperArgs(["m", "/d", "-s", "-o", "frob"]).ignored, ["frob"]);
  assert.throws(() => helperArgs(["/d"]), /usage: mount\.slayerfs/);
});
