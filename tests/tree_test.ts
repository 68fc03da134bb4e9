/**
 * The shape of the source tree, checked: no import cycles among the project's modules (static and
 * dynamic imports, type-only imports included), no hand-written source file over the size a
 * reader can hold in mind, and the commit gate's static checks (`./dev ok` runs them before the
 * tests; here they run in CI too, which runs the tests alone).
 *
 * @module
 */

import { deepEqual } from "node:assert/strict";
import { relative } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

const ROOT = fromFileUrl(new URL("../", import.meta.url));
/** The entry points whose module graphs together cover the tree. */
const ENTRIES = ["mod.ts", "cli.ts", "backends/mod.ts", "ffi/mod.ts", "wasm/mod.ts"];
/** Lines a source file may have (tests included); generated code is exempt. */
const MAX_LINES = 600;
const GENERATED = new Set(["wasm/assembly/_blake3_gen.ts"]);

interface InfoModule {
  specifier: string;
  dependencies?: Array<{ code?: { specifier: string }; type?: { specifier: string } }>;
}

async function moduleGraph(): Promise<Map<string, string[]>> {
  const graph = new Map<string, string[]>();
  for (const entry of ENTRIES) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
    for (const m of info.modules) {
      if (!m.specifier.startsWith("file:")) continue;
      const from = relative(ROOT, fromFileUrl(m.specifier));
      const to = new Set<string>();
      for (const d of m.dependencies ?? []) {
        for (const s of [d.code?.specifier, d.type?.specifier]) {
          if (s?.startsWith("file:")) to.add(relative(ROOT, fromFileUrl(s)));
        }
      }
      graph.set(from, [...to]);
    }
  }
  return graph;
}

/** Strongly connected components with more than one module, or a module importing itself. */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

Deno.test("the module graph has no import cycles", async () => {
  const graph = await moduleGraph();
  deepEqual(cycles(graph), []);
});

Deno.test("cycles() finds a cycle and a self-import", () => {
  const g = new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["d"]], ["e", ["a"]]]);
  deepEqual(cycles(g), [["a", "b", "c"], ["d"]]);
});

Deno.test(`no source file is over ${MAX_LINES} lines`, async () => {
  const out = await new Deno.Command("git", {
    args: ["ls-files", "-co", "--exclude-standard", "*.ts", "*.cjs", "*.sh"],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  const files = new TextDecoder().decode(out.stdout).split("\n").filter((f) => f !== "");
  const big: string[] = [];
  for (const f of files) {
    if (GENERATED.has(f)) continue;
    const text = await Deno.readTextFile(`${ROOT}${f}`).catch(() => "");
    const lines = text.split("\n").length - 1;
    if (lines > MAX_LINES) big.push(`${f}: ${lines}`);
  }
  deepEqual(big, []);
});

Deno.test("the tree passes deno fmt --check, lint, check and doc --lint", async () => {
  const failed: string[] = [];
  for (const args of [["fmt", "--check"], ["lint"], ["check"], ["doc", "--lint", ...ENTRIES]]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      failed.push(`deno ${args.join(" ")}: ${text.slice(-2000)}`);
    }
  }
  deepEqual(failed, []);
});
