import assert from "node:assert/strict";
import { formatSize, parseSize } from "../core/format.ts";
import { applySettings } from "./_config.ts";
import { findCommand } from "./_commands.ts";
import { CliError } from "./_errors.ts";
import { parseCommand } from "./_spec.ts";
import { closest } from "./_suggest.ts";

Deno.test("parseSize() takes binary units and a per-option unit for plain numbers", () => {
  const MiB = 2 ** 20;
  for (
    const [text, bytes] of [
      ["4M", 4 * MiB],
      ["512MiB", 512 * MiB],
      ["20G", 20 * 2 ** 30],
      ["64k", 65536],
      ["4 MB", 4 * MiB],
      ["1.5G", 1.5 * 2 ** 30],
      ["4096", 4096],
      ["100B", 100],
    ] as const
  ) {
    assert.equal(parseSize(text), bytes, text);
  }
  assert.equal(parseSize("20", MiB), 20 * MiB);
  assert.equal(parseSize("20B", MiB), 20);
  assert.throws(() => parseSize("-5"), /"-5": must not be negative/);
  assert.throws(() => parseSize("lots"), /"lots": expected a number with an optional unit/);
  assert.throws(() => parseSize("0.3"), /not a whole number of bytes/);
});

Deno.test("formatSize() prints the largest binary unit", () => {
  assert.equal(formatSize(0), "0 B");
  assert.equal(formatSize(3 << 10), "3 KiB");
  assert.equal(formatSize(10240 * 2 ** 20), "10 GiB");
  assert.equal(formatSize(1536 << 20), "1.5 GiB");
  assert.equal(formatSize(2 ** 50), "1 PiB");
});

Deno.test("closest() suggests near names only", () => {
  assert.equal(closest("mout", ["format", "mount", "umount"]), "mount");
  assert.equal(closest("sqlite", ["sqlite3", "mem"]), "sqlite3");
  assert.equal(closest("--cache-siz", ["--cache-size", "--cache-dir"]), "--cache-size");
  assert.equal(closest("xyzzy", ["format", "mount"]), undefined);
});

Deno.test("parseCommand() applies defaults, units and reads negative values as values", () => {
  const mount = findCommand("mount")!;
  const a = parseCommand(mount, ["--cache-size", "64", "-o", "ro", "-o", "debug", "m", "/x"]);
  assert.equal(a.number("cache-size"), 64 << 20);
  assert.equal(a.number("cache-size"), 64 << 20);
  assert.equal(a.has("cache-dir-size"), false); // no default: a share of the free space
  assert.deepEqual(a.list("o"), ["ro", "debug"]);
  assert.deepEqual(a.positionals, ["m", "/x"]);
  assert.equal(parseCommand(mount, ["--cache-size=1G", "/x"]).number("cache-size"), 2 ** 30);
  const err2 = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof CliError && e.exitCode === 2, String(e));
      return e.message;
    }
    assert.fail("no error");
  };
  const err = (args: string[]) => {
    try {
      parseCommand(mount, args);
    } catch (e) {
      assert.ok(e instanceof CliError && e.exitCode === 2, String(e));
      return e.message;
    }
    assert.fail(`no error for ${args}`);
  };
  assert.match(err(["--cache-size", "-5", "/x"]), /^Invalid --cache-size "-5": must not be/);
  assert.match(err(["--cache-siz", "5", "/x"]), /did you mean --cache-size\?/);
  // Arguments may come from a settings file: missing ones are found once merged (`_config.ts`).
  assert.deepEqual(parseCommand(mount, []).positionals, []);
  assert.match(err2(() => applySettings(mount, parseCommand(mount, []))), /^Missing MOUNTPOINT/);
  assert.match(err2(() => parseCommand(findCommand("status")!, [])), /^Missing PATH\|META_URL/);
  assert.match(err(["a", "b", "c"]), /^Unexpected argument "c"/);
  assert.ok(parseCommand(mount, ["--help"]).flag("help"));
});
