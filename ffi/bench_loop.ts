/**
 * Measures the FUSE loop shapes on the RAM fixture: uncached stat rate, create rate and
 * sequential write/read throughput, with clients in separate processes (python3 and dd).
 *
 * Run: `deno run -A ffi/bench_loop.ts [js|mt ...]`. Mounts in a temp dir and always unmounts.
 *
 * @module
 */

import { mountFs } from "./session.ts";
import { RamFs } from "./testdata/ram_fs.ts";

async function sh(script: string): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", script] }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`Command failed: ${script}\n${text}`);
  return text;
}

async function py(code: string): Promise<number> {
  const out = await new Deno.Command("python3", { args: ["-c", code] }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return Number(new TextDecoder().decode(out.stdout).trim());
}

function ddRate(text: string): string {
  return text.match(/, ([\d.]+ [GMk]B\/s)/)?.[1] ?? text.trim();
}

/** Runs all workloads on one loop shape and returns a result row. */
async function measure(loop: "js" | "mt"): Promise<Record<string, string | number>> {
  const mp = await Deno.makeTempDir({ prefix: "slayerfs-bench-" });
  const session = await mountFs(new RamFs(), mp, {
    loop,
    attrTimeout: 0,
    entryTimeout: 0,
    negativeTimeout: 0,
  });
  try {
    await Deno.writeFile(`${mp}/f`, new Uint8Array(1));
    const stat = await py(
      `import os,time\nn=20000\nt=time.perf_counter()\nfor i in range(n): os.stat("${mp}/f")\n` +
        `print(round(n/(time.perf_counter()-t)))`,
    );
    const create = await py(
      `import os,time\nos.mkdir("${mp}/d")\nn=5000\nt=time.perf_counter()\n` +
        `for i in range(n): os.close(os.open("${mp}/d/f%d"%i, os.O_CREAT|os.O_WRONLY, 0o644))\n` +
        `print(round(n/(time.perf_counter()-t)))`,
    );
    const write = ddRate(await sh(`dd if=/dev/zero of=${mp}/big bs=1M count=1024 2>&1`));
    const read = ddRate(await sh(`dd if=${mp}/big of=/dev/null bs=1M 2>&1`));
    return { loop, "stat/s": stat, "create/s": create, "seq write": write, "seq read": read };
  } finally {
    await session.unmount();
    await Deno.remove(mp);
  }
}

const loops = (Deno.args.length > 0 ? Deno.args : ["js", "mt"]) as ("js" | "mt")[];
const rows = [];
for (const loop of loops) rows.push(await measure(loop));
console.table(rows);
