import assert from "node:assert/strict";
import { Filter, globToRegExp, rulesFromArgs } from "./filter.ts";

Deno.test("globToRegExp() matches names, folders and sets", () => {
  assert.ok(globToRegExp("*.txt").test("a.txt"));
  assert.ok(!globToRegExp("*.txt").test("d/a.txt"));
  assert.ok(globToRegExp("**/*.txt").test("a.txt"));
  assert.ok(globToRegExp("**/*.txt").test("d/e/a.txt"));
  assert.ok(globToRegExp("d/**").test("d/e/f"));
  assert.ok(globToRegExp("file?.[ch]").test("file1.c"));
  assert.ok(!globToRegExp("file?.[!ch]").test("file1.c"));
  assert.ok(globToRegExp("a+b(1).txt").test("a+b(1).txt"));
});

Deno.test("Filter() takes the first rule that matches, and includes by default", () => {
  const f = new Filter(rulesFromArgs(["--include", "*.txt", "--exclude=*", "-p", "4"]));
  assert.ok(f.includes("a.txt"));
  assert.ok(f.includes("deep/down/b.txt"));
  assert.ok(!f.includes("c.bin"));
  const g = new Filter(rulesFromArgs(["--exclude", "tmp", "--include", "*.txt"]));
  assert.ok(!g.includes("tmp/a.txt"), "a folder's name covers what is under it");
  assert.ok(g.includes("x/a.txt"));
  assert.ok(g.includes("x/a.bin"), "no match: included");
  const h = new Filter(rulesFromArgs(["--exclude", "/logs/*.log", "--exclude", "cache/"]));
  assert.ok(!h.includes("logs/a.log"));
  assert.ok(h.includes("x/logs/a.log"), "a slash matches the whole path");
  assert.ok(!h.includes("x/cache/y"));
  assert.ok(h.includes("x/cache"), "a trailing slash matches folders only");
  assert.ok(new Filter([]).includes("anything/at/all"));
});
