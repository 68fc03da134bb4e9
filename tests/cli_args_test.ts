/**
 * The command line a newcomer meets (issues #15 and #16), through the real CLI as a subprocess:
 * `--help` of every command checked against the README, `--version`, shell completion, typos with
 * suggestions, bad URLs and values as usage errors (exit 2), and nothing created on disk by a
 * command that fails.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cliIn as cli, errorLines } from "./_cli.ts";
import { REPO_ROOT } from "./_mount.ts";
import { run, type RunResult } from "./_run.ts";

/** Asserts exit code `code` and one stderr line matching `pattern`. */
function assertError(r: RunResult, code: number, pattern: RegExp, what: string): void {
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, `${what}: one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, pattern, `${what}: message`);
  assert.equal(r.code, code, `${what}: exit code (${lines[0]})`);
}

/** Every path under `dir`, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      out.push(rel + e.name);
      if (e.isDirectory) await walk(`${d}/${e.name}`, `${rel}${e.name}/`);
    }
  };
  await walk(dir, "");
  return out.sort();
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-args-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The README's "The CLI" section. */
async function readmeCli(): Promise<string> {
  const readme = await Deno.readTextFile(`${REPO_ROOT}/README.md`);
  const start = readme.indexOf("\n## The CLI");
  assert.ok(start >= 0, 'README has a section "The CLI"');
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

Deno.test("cli --help of every command matches the README", async () => {
  const section = await readmeCli();
  const main = await cli(["--help"]);
  assert.equal(main.code, 0, main.stderr);
  const listed = [...main.stdout.matchAll(/^ {2}([a-z][a-z-]*) {2,}/gm)].map((m) => m[1]!);
  const usage = /```\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
  const inReadme = new Set([...usage.matchAll(/^slayerfs ([a-z][a-z-]*)/gm)].map((m) => m[1]!));
  assert.ok(inReadme.size >= 7, `README's usage block lists the commands: ${[...inReadme]}`);
  for (const c of inReadme) assert.ok(listed.includes(c), `README's "${c}" is a command`);
  for (const c of listed) assert.ok(inReadme.has(c), `--help's "${c}" is in README's usage block`);
  // Every command's --help (four CLI processes at a time); -h and `help C` print the same.
  const helps = new Map<string, RunResult>();
  const queue = [...listed.map((c) => `${c} --help`), "mount -h", "help mount", "gc -h", "help gc"];
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let flag = queue.shift(); flag !== undefined; flag = queue.shift()) {
      helps.set(flag, await cli(flag.split(" ")));
    }
  }));
  for (const c of ["mount", "gc"]) {
    for (const flag of [`${c} -h`, `help ${c}`]) {
      assert.equal(helps.get(flag)?.stdout, helps.get(`${c} --help`)?.stdout, `${flag} = --help`);
    }
  }
  for (const c of listed) {
    const flag = `${c} --help`;
    const r = helps.get(flag)!;
    assert.equal(r.code, 0, `${flag}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: slayerfs ${c} `, "m"), `${flag}: usage line`);
    assert.match(r.stdout, /^Examples?:\n {2}slayerfs /m, `${flag}: an example`);
    for (const [, option] of r.stdout.matchAll(/^ {2}(?:-\w, )? *(--[a-z-]+|-o)\b/gm)) {
      if (option === "--help") continue;
      assert.ok(
        new RegExp(`(^|[\\s\`\\[(])${option}\\b`).test(section),
        `${c} ${option} (in --help) is in README's CLI section`,
      );
    }
  }
  // What the help once left out, and every default with its unit.
  // The help as one line: a long option's text wraps.
  const mount = (await cli(["mount", "--help"])).stdout.replace(/\s+/g, " ");
  for (const s of ["--log", "negative_timeout", "-d, --background", "-f, --foreground"]) {
    assert.ok(mount.includes(s), `mount --help names ${s}`);
  }
  assert.match(mount, /--cache-size SIZE [^(]*\(default: 32 MiB\)/);
  assert.match(mount, /--cache-dir-size SIZE [^(]*\(default: half the free space/);
  const format = (await cli(["format", "--help"])).stdout.replace(/\s+/g, " ");
  assert.match(format, /s3:\/\//, "format --help shows s3:// storage");
  assert.match(format, /--block-size SIZE [^(]*\(default: 4 MiB\)/);
  assert.match(section, /\bslayerfs --version\b/, "README shows --version");
  assert.match(section, /\bslayerfs completion bash\b/, "README shows completion");
});

Deno.test("cli --version prints SlayerFS's, Deno's and libfuse's versions", async () => {
  const { version } = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}/deno.json`));
  for (const flag of ["--version", "-V", "version"]) {
    const r = await cli([flag]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^slayerfs ${version.replaceAll(".", "\\.")}$`, "m"));
    assert.match(r.stdout, new RegExp(`^deno ${Deno.version.deno} `, "m"));
    assert.match(r.stdout, /^libfuse 3\.\d+\.\d+$/m, r.stdout);
  }
  const missing = await cli(["--version"], REPO_ROOT, {
    SLAYERFS_LIBFUSE: "/nonexistent/libfuse3.so.3",
  });
  assert.equal(missing.code, 0, missing.stderr);
  assert.match(missing.stdout, /^libfuse not found/m);
});

Deno.test("cli completion bash completes commands, options, choices and -o options", async () => {
  await withTempDir(async (dir) => {
    const script = await cli(["completion", "bash"]);
    assert.equal(script.code, 0, script.stderr);
    await Deno.writeTextFile(`${dir}/c.bash`, script.stdout);
    const probe = (words: string[]) =>
      run("bash", [
        "-c",
        `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _slayerfs; ` +
        `printf '%s\\n' "\${COMPREPLY[@]}"`,
        `${dir}/c.bash`,
        "slayerfs",
        ...words,
      ]).then((r) => {
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.trim().split("\n");
      });
    assert.deepEqual(await probe(["mo"]), ["mount"]);
    assert.deepEqual(await probe(["mount", "--cache-d"]), ["--cache-dir", "--cache-dir-size"]);
    assert.ok((await probe(["mount", "-"])).includes("--background"));
    assert.deepEqual(await probe(["format", "--compress", ""]), ["lz4", "none"]);
    assert.deepEqual(await probe(["mount", "-o", "ro,allow_o"]), ["ro,allow_other"]);
    assert.deepEqual(await probe(["completion", ""]), ["bash", "zsh"]);
    const zsh = await cli(["completion", "zsh"]);
    assert.equal(zsh.code, 0, zsh.stderr);
    assert.match(zsh.stdout, /^#compdef slayerfs\n/);
    for (const s of ["'mount:", "--cache-dir-size=", "(lz4 none)", "{-d,--background}"]) {
      assert.ok(zsh.stdout.includes(s), `zsh script has ${s}`);
    }
    assertError(await cli(["completion", "fish"]), 2, /fish.*bash or zsh/, "unknown shell");
  });
});

Deno.test("cli suggests the closest command, option, value and scheme", async () => {
  assertError(
    await cli(["mout", "x"]),
    2,
    /Unknown command "mout" \(did you mean mount\?\)/,
    "cmd",
  );
  assertError(await cli(["--verison"]), 2, /did you mean --version\?/, "--verison");
  assertError(
    await cli(["mount", "--cache-siz", "5", "a", "b"]),
    2,
    /Unknown option "--cache-siz" \(did you mean --cache-size\?\)/,
    "option",
  );
  assertError(
    await cli(["format", "--compress", "lz5", "mem://", "v"]),
    2,
    /Invalid --compress "lz5": expected lz4 or none \(did you mean lz4\?\)/,
    "choice",
  );
  assertError(
    await cli(["mount", "-o", "alow_other", "mem://", "/nonexistent"]),
    2,
    /did you mean allow_other\?/,
    "-o",
  );
});

Deno.test("cli rejects a bad metadata URL as it was typed, creating nothing", async () => {
  await withTempDir(async (dir) => {
    const cases: [string[], RegExp][] = [
      [["mount", "sqlite3:meta.db", "mnt"], /"sqlite3:meta\.db".*did you mean sqlite3:\/\/\//],
      [
        ["mount", "sqlite:///x.db", "mnt"],
        /"sqlite" in "sqlite:\/\/\/x\.db".*did you mean sqlite3:\/\/\?/,
      ],
      [
        ["mount", "sqlite3://meta.db", "mnt"],
        /"sqlite3:\/\/meta\.db" names a relative path.*did you mean sqlite3:\/\/\/.*\/meta\.db\?/,
      ],
      [["format", "sqlite3:meta.db", "v"], /"sqlite3:meta\.db"/],
      [["format", "sqlite:///x.db", "v"], /did you mean sqlite3:\/\/\?/],
      [["format", "sqlite3://meta.db", "v"], /relative path/],
      [["gc", "sqlite3://meta.db"], /relative path/],
      [["status", "sqlite3://meta.db"], /relative path/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(args, dir);
      assertError(r, 2, re, args.join(" "));
      assert.doesNotMatch(r.stderr, /-data|file:\/\//, `${args.join(" ")}: no derived URL`);
      assert.deepEqual(await tree(dir), [], `${args.join(" ")} creates nothing`);
    }
  });
});

Deno.test("cli mount without its mountpoint is a usage error and formats nothing", async () => {
  await withTempDir(async (dir) => {
    const home = `${dir}/home`;
    const r = await cli(["mount", `sqlite3://${dir}/m.db`], dir, { SLAYERFS_HOME: home });
    assertError(r, 2, /Missing MOUNTPOINT after META_URL "sqlite3:\/\/.*\/m\.db"/, "no mnt");
    assert.deepEqual(await tree(dir), [], "no default volume, no metadata file, no folder");
    for (const args of [["format", `sqlite3://${dir}/m.db`], ["umount"], ["info"], ["warmup"]]) {
      assertError(await cli(args, dir), 2, /^slayerfs: Missing [A-Z]+/, args.join(" "));
    }
    assertError(await cli(["umount", "a", "b"], dir), 2, /Unexpected argument "b"/, "extra");
    assert.deepEqual(await tree(dir), []);
  });
});

Deno.test("cli sizes take units and bad values say what is wrong", async () => {
  await withTempDir(async (dir) => {
    const meta = `sqlite3://${dir}/v/meta.db`;
    const bad: [string[], RegExp][] = [
      [
        ["mount", "--cache-size", "-5", meta, `${dir}/m`],
        /--cache-size "-5": must not be negative/,
      ],
      [["gc", "--min-age", "-3", meta], /--min-age "-3": must not be negative/],
      [
        ["mount", "--cache-dir-size", "lots", meta, `${dir}/m`],
        /--cache-dir-size "lots": expected a number with an optional unit/,
      ],
      [["warmup", "--threads", "0", dir], /--threads "0": expected at least 1/],
      [["format", "--inodes", "-1", meta, "v"], /--inodes "-1": must not be negative/],
      [["format", "--block-size", "3K", meta, "v"], /block size 3 KiB: expected a power of two/],
      [["format", "--block-size", "32M", meta, "v"], /block size 32 MiB/],
      [["format", "--block-size", "0", meta, "v"], /block size 0 B/],
      [["format", "--inline-max", "1M", meta, "v"], /inline size 1 MiB/],
      [["format", "--storage", "s3://My_Bucket/x", meta, "v"], /Invalid bucket name "My_Bucket"/],
      [["format", "--storage", "s3://bucket:9000/x", meta, "v"], /port after the bucket/],
      [["format", "--storage", "file://blocks", meta, "v"], /relative path/],
      [["format", "--storage", "ftp://h/x", meta, "v"], /Unknown storage scheme "ftp"/],
      [["mount", "-d", "-f", meta, `${dir}/m`], /Choose one of -d\/--background and -f/],
    ];
    for (const [args, re] of bad) {
      assertError(await cli(args, dir), 2, re, args.join(" "));
      assert.deepEqual(await tree(dir), [], `${args.join(" ")} creates nothing`);
    }
    // Units everywhere: a volume with 1 MiB blocks, printed human-readable.
    const f = await cli(["format", "--block-size", "1MiB", "--inline-max", "4k", meta, "v"]);
    assert.equal(f.code, 0, f.stderr);
    assert.match(f.stdout, /block size 1 MiB/);
    const st = await cli(["status", "--json", meta]);
    assert.equal(JSON.parse(st.stdout).blockSize, 1 << 20, st.stdout);
  });
});

Deno.test("cli format that fails creates and changes nothing", async () => {
  await withTempDir(async (dir) => {
    const meta = `sqlite3://${dir}/v/meta.db`;
    // A storage that cannot be opened: the metadata folder made for it is removed again.
    await Deno.writeTextFile(`${dir}/file`, "");
    const r = await cli(["format", "--storage", `file://${dir}/file/blocks`, meta, "v"]);
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(await tree(dir), ["file"], "no metadata folder or file left");
    await Deno.remove(`${dir}/file`);
    const ok = await cli(["format", meta, "v"]);
    assert.equal(ok.code, 0, ok.stderr);
    const before = await tree(dir);
    const dbBefore = await Deno.readFile(`${dir}/v/meta.db`);
    // A conflicting re-format: another name (another default storage), another storage.
    for (
      const args of [
        ["format", meta, "w"],
        ["format", "--storage", `file://${dir}/elsewhere/blocks`, meta, "v"],
        ["format", "--block-size", "1M", meta, "v"],
      ]
    ) {
      const c = await cli(args);
      assertError(c, 1, /already formatted with/, args.join(" "));
      assert.deepEqual(await tree(dir), before, `${args.join(" ")} creates no folder`);
    }
    assert.deepEqual(await Deno.readFile(`${dir}/v/meta.db`), dbBefore, "metadata unchanged");
  });
});

Deno.test("cli mount of an empty metadata file leaves it empty", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeFile(`${dir}/meta.db`, new Uint8Array());
    for (
      const args of [["mount", `sqlite3://${dir}/meta.db`, `${dir}/mnt`], [
        "gc",
        `sqlite3://${dir}/meta.db`,
      ]]
    ) {
      assertError(await cli(args), 1, /meta\.db" is empty: run slayerfs format/, args[0]!);
      assert.equal((await Deno.stat(`${dir}/meta.db`)).size, 0, `${args[0]} writes nothing`);
      assert.deepEqual(await tree(dir), ["meta.db"], `${args[0]}: no mountpoint, no WAL`);
    }
  });
});
