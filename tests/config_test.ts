/**
 * Settings files (`--config FILE`, YAML or TOML), `SLAYERFS_*` variables and `config show`,
 * through the real CLI: files with mistakes in them give one line naming the file, the line and the
 * key (exit 2); flags beat variables beat the file beat defaults; and a real mount started from a
 * file serves with the file's settings, which `status --json` shows with their sources.
 *
 * @module
 */

import assert from "node:assert/strict";
import { errorLines } from "./_cli.ts";
import { CLI, forceUnmountSync, isMounted, REPO_ROOT } from "./_mount.ts";
import { run, type RunResult } from "./_run.ts";

/** Runs the CLI in `cwd` with `env` added, killed after 90 s. */
function cli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<RunResult> {
  return run("timeout", ["-k", "5", "90", Deno.execPath(), "run", "-A", CLI, ...args], {
    cwd,
    env: { SLAYERFS_CONFIG: "", ...env },
  });
}

/** Asserts exit code 2 and the one stderr line `slayerfs: FILE:LINE: ...` matching `pattern`. */
function assertFileError(r: RunResult, pattern: RegExp, what: string): void {
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern, what);
  assert.equal(r.code, 2, `${what}: exit code (${lines[0]})`);
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-config-" });
  try {
    await fn(dir);
  } finally {
    forceUnmountSync(`${dir}/mnt`);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("config files with mistakes give FILE:LINE, the key and a suggestion (exit 2)", async () => {
  await withTempDir(async (dir) => {
    const cases: [string, string, RegExp][] = [
      // a bad size, YAML
      [
        "size.yaml",
        "# vol1\nmount:\n  meta-url: sqlite3:///tmp/x.db\n  cache-size: 2X\n",
        /^slayerfs: size\.yaml:4: key "mount\.cache-size" = "2X": expected a number with an optional unit/,
      ],
      // a bad type, YAML
      [
        "type.yml",
        "mount:\n  writeback: [1]\n",
        /^slayerfs: type\.yml:2: key "mount\.writeback": expected true or false$/,
      ],
      // an unknown key (the other spelling), TOML
      [
        "key.toml",
        '[mount]\nmeta-url = "sqlite3:///tmp/x.db"\n\ncache_size = "1G"\n',
        /^slayerfs: key\.toml:4: unknown key "mount\.cache_size" \(did you mean cache-size\?\)$/,
      ],
      // a bad size in a later section, TOML
      [
        "format.toml",
        '[mount]\ncache-size = 64\n[format]\nblock-size = "-4M"\n',
        /^slayerfs: format\.toml:4: key "format\.block-size" = "-4M": must not be negative$/,
      ],
      // a bad choice
      [
        "choice.toml",
        '[mount]\nlog-level = "verbose"\n',
        /^slayerfs: choice\.toml:2: key "mount\.log-level" = "verbose": expected debug or info/,
      ],
      // an unknown section
      [
        "section.yaml",
        "mount: {}\nmonut:\n  x: 1\n",
        /^slayerfs: section\.yaml:2: unknown key "monut" \(did you mean mount\?\)$/,
      ],
      // an unknown -o option in a map
      [
        "o.yaml",
        "mount:\n  options:\n    allow_other: true\n    atr_timeout: 1\n",
        /^slayerfs: o\.yaml:4: key "mount\.options\.atr_timeout": unknown mount option "atr_timeout" \(did you mean attr_timeout\?\)$/,
      ],
      // a bad metadata URL
      [
        "url.yaml",
        "mount:\n  meta-url: sqlite://x.db\n",
        /^slayerfs: url\.yaml:2: key "mount\.meta-url": Unknown metadata scheme "sqlite"/,
      ],
      // syntax errors, with the parsers' lines
      [
        "syntax.yaml",
        "mount:\n  cache-size: 1G\n  cache-size: 2G\n",
        /^slayerfs: syntax\.yaml:3: /,
      ],
      ["syntax.toml", '[mount]\ncache-size = "1G\n', /^slayerfs: syntax\.toml:2: /],
    ];
    for (const [name, text, pattern] of cases) {
      await Deno.writeTextFile(`${dir}/${name}`, text);
      assertFileError(await cli(["config", "show", "--config", name], dir), pattern, name);
      // Every command that reads the file checks all of it, before anything is created.
      if (name === "key.toml") {
        const mount = await cli(["mount", "--config", name, `${dir}/mnt`], dir);
        assertFileError(mount, pattern, `mount --config ${name}`);
      }
    }
    assert.ok(!await Deno.stat(`${dir}/mnt`).then(() => true, () => false), "no mountpoint made");
    await Deno.writeTextFile(`${dir}/x.json`, "{}");
    assertFileError(
      await cli(["config", "show", "--config", "x.json"], dir),
      /must end in \.yaml, \.yml or \.toml/,
      "json",
    );
    assertFileError(
      await cli(["config", "show"], dir, { SLAYERFS_CONFIG: `${dir}/missing.toml` }),
      /^slayerfs: Cannot read config file ".*missing\.toml": No such file/,
      "missing file from SLAYERFS_CONFIG",
    );
    assertFileError(
      await cli(["config", "show"], dir, { SLAYERFS_CACHE_SIZE: "big" }),
      /^slayerfs: Invalid SLAYERFS_CACHE_SIZE "big": expected a number/,
      "bad variable",
    );
  });
});

Deno.test("config show: flags beat SLAYERFS_* beat the file beat defaults; secrets masked", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/vol.yaml`,
      [
        "mount:",
        "  meta-url: redis://:hunter22@127.0.0.1:6379/1",
        "  mountpoint: mnt",
        "  cache-size: 2G",
        "  log-level: error",
        "  atime-mode: relatime",
        "  cache-dir: [c1, /abs/c2]",
        "  options: [allow_other, attr_timeout=2]",
        "format:",
        "  storage: s3://bkt/p?endpoint=http://127.0.0.1:9&secret_access_key=wJalrXUt",
        "",
      ].join("\n"),
    );
    const r = await cli(
      ["config", "show", "--json", "--config", "vol.yaml", "--log-level", "debug"],
      dir,
      {
        SLAYERFS_LOG_LEVEL: "warning",
        SLAYERFS_ATIME_MODE: "strictatime",
        SLAYERFS_WRITEBACK: "1",
      },
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.command, "mount");
    assert.equal(out.file, "vol.yaml");
    const s = out.settings;
    assert.deepEqual(s["log-level"], { value: "debug", source: "flag", text: "debug" });
    assert.deepEqual(s["atime-mode"].source, "env");
    assert.deepEqual(s["atime-mode"].value, "strictatime");
    assert.deepEqual(s.writeback.source, "env");
    assert.deepEqual(s["cache-size"], {
      value: 2 ** 31,
      source: "file",
      line: 4,
      text: "2 GiB",
    });
    assert.deepEqual(s["cache-dir"].value, [`${dir}/c1`, "/abs/c2"], "relative to the file");
    assert.deepEqual(s.options.value, ["allow_other", "attr_timeout=2"]);
    assert.deepEqual(s.mountpoint, {
      value: `${dir}/mnt`,
      source: "file",
      line: 3,
      text: `${dir}/mnt`,
    });
    assert.equal(s["meta-url"].value, "redis://:***@127.0.0.1:6379/1");
    assert.deepEqual(s["session-timeout"], { value: 60, source: "default", text: "60 s" });
    assert.ok(!r.stdout.includes("hunter22"), "the password is masked");
    // The text form: every setting with its source, the file's with its line.
    const text = await cli(["config", "show", "--config", "vol.yaml", "/elsewhere"], dir);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ {2}cache-size +2 GiB +file vol\.yaml:4$/m);
    assert.match(text.stdout, /^ {2}mountpoint +\/elsewhere +flag$/m);
    assert.match(text.stdout, /^ {2}log-format +text +default$/m);
    const fmt = await cli(["config", "show", "format", "--json", "--config", "vol.yaml"], dir);
    assert.equal(fmt.code, 0, fmt.stderr);
    const storage = JSON.parse(fmt.stdout).settings.storage;
    assert.equal(storage.source, "file");
    assert.match(storage.value, /secret_access_key=\*\*\*$/);
    const wrong = await cli(["config", "show", "--config", "vol.yaml", "--block-size", "1M"], dir);
    assertFileError(wrong, /--block-size is not an option of mount/, "format option for mount");
  });
});

Deno.test("config: a mount started from a settings file serves with its settings", async () => {
  await withTempDir(async (dir) => {
    const meta = `sqlite3://${dir}/meta.db`;
    await Deno.writeTextFile(
      `${dir}/vol.toml`,
      [
        "# A volume and its mount, one file for both commands",
        "[format]",
        `meta-url = "${meta}"`,
        'name = "cfgvol"',
        'storage = "file://' + dir + '/blocks"',
        'block-size = "1M"',
        "",
        "[mount]",
        `meta-url = "${meta}"`,
        'mountpoint = "mnt"',
        'cache-size = "48M"',
        'log = "daemon.log"',
        'log-format = "json"',
        "no-metrics = true",
        "options = { attr_timeout = 3, noexec = true }",
        "",
      ].join("\n"),
    );
    const f = await cli(["format", "--config", "vol.toml"], dir);
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stdout, /Volume "cfgvol".*block size 1 MiB/);
    const mnt = `${dir}/mnt`;
    let pid: number | undefined;
    try {
      const m = await cli(["mount", "--config", "vol.toml", "--session-timeout", "30"], dir, {
        SLAYERFS_ATIME_MODE: "relatime",
      });
      assert.equal(m.code, 0, m.stderr);
      assert.match(
        m.stdout,
        new RegExp(`mounted at ${mnt} \\(pid \\d+, log ${dir}/daemon\\.log\\)`),
      );
      pid = Number(/pid (\d+)/.exec(m.stdout)![1]);
      assert.ok(isMounted(mnt));
      const io = await run("timeout", [
        "30",
        "sh",
        "-c",
        `echo hello > "${mnt}/a" && cat "${mnt}/a" && cp /bin/true "${mnt}/t" && "${mnt}/t"`,
      ]);
      assert.match(io.stdout, /^hello$/m, io.stderr);
      assert.notEqual(io.code, 0, "noexec from the file: a program on the mount does not run");
      assert.match(io.stderr, /Permission denied/);
      const mountLine = Deno.readTextFileSync("/proc/mounts").split("\n")
        .find((l) => l.split(" ")[1] === mnt)!;
      assert.match(mountLine.split(" ")[3]!, /(^|,)noexec(,|$)/, mountLine);
      const st = await cli(["status", "--json", mnt], dir);
      assert.equal(st.code, 0, st.stderr);
      const state = JSON.parse(st.stdout);
      assert.equal(state.volume, "cfgvol");
      assert.equal(state.metrics, undefined, "no-metrics from the file");
      const s = state.settings;
      assert.deepEqual(s["cache-size"], { value: 48 * 2 ** 20, source: "file", text: "48 MiB" });
      assert.deepEqual(s["session-timeout"], { value: 30, source: "flag", text: "30 s" });
      assert.equal(s["atime-mode"].source, "env");
      assert.equal(s["atime-mode"].value, "relatime");
      assert.deepEqual(s.options.value, ["attr_timeout=3", "noexec"]);
      assert.equal(s.mountpoint.source, "file");
      assert.equal(s.foreground, undefined, "how the daemon was started is no setting");
      // The daemon logs JSON lines, as the file says.
      const log = await Deno.readTextFile(`${dir}/daemon.log`);
      assert.ok(log.split("\n").some((l) => l.startsWith("{") && JSON.parse(l).message), log);
      const u = await cli(["umount", mnt], dir);
      assert.equal(u.code, 0, u.stderr);
      pid = undefined;
      assert.ok(!isMounted(mnt));
    } finally {
      if (pid !== undefined) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      forceUnmountSync(mnt);
    }
  });
});

Deno.test("config: the README's YAML and TOML examples are valid and say the same", async () => {
  const readme = await Deno.readTextFile(`${REPO_ROOT}/README.md`);
  const section = readme.slice(readme.indexOf("\n### Configuration files"));
  assert.ok(section.length > 0 && readme.includes("\n### /etc/fstab\n"), "README sections");
  await withTempDir(async (dir) => {
    const shown: Record<string, unknown>[] = [];
    for (const lang of ["yaml", "toml"]) {
      const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)\\n```").exec(section);
      assert.ok(m, `a ${lang} example`);
      const text = m[1]!.replaceAll("/var/lib/", `${dir}/`).replaceAll("/var/cache/", `${dir}/`)
        .replaceAll("/mnt/", `${dir}/`);
      await Deno.writeTextFile(`${dir}/vol1.${lang}`, text);
      for (const command of ["mount", "format"]) {
        const args = ["config", "show", ...(command === "format" ? ["format"] : [])];
        const r = await cli([...args, "--json", "--config", `vol1.${lang}`], dir);
        assert.equal(r.code, 0, `${lang} ${command}: ${r.stderr}`);
        const settings = JSON.parse(r.stdout).settings as Record<string, Record<string, unknown>>;
        for (const s of Object.values(settings)) delete s.line;
        delete settings.config;
        shown.push(settings);
      }
    }
    assert.deepEqual(shown[2], shown[0], "YAML and TOML: the same mount settings");
    assert.deepEqual(shown[3], shown[1], "YAML and TOML: the same format settings");
    const mount = shown[0] as Record<string, { value: unknown; source: string }>;
    assert.deepEqual(mount["cache-size"], { value: 2 ** 31, source: "file", text: "2 GiB" });
    assert.deepEqual(mount.options!.value, ["allow_other", "attr_timeout=2"]);
    assert.equal(mount.mountpoint!.value, `${dir}/vol1`);
  });
});
