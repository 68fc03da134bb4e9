/**
 * Helpers for `bench/peers.sh`: the small-file benchmark, the tree generator for the tar/find
 * phases, and the final table.
 *
 * - `deno run -A bench/peers.ts smallfiles DIR COUNT` prints `metric\tms` lines for the
 *   create, list, read and delete phases over COUNT small files in DIR.
 * - `deno run -A bench/peers.ts maketree DIR COUNT` writes a tree of COUNT files (0-16 KiB) in DIR.
 * - `deno run -A bench/peers.ts table RESULTS` prints the results (`metric\tfs\tvalue` lines) as
 *   one table with a slayerfs/bindfs ratio column.
 *
 * @module
 */

/** A metric of the table: label, unit, and whether bigger is better. */
export interface Metric {
  label: string;
  unit: string;
  higherIsBetter: boolean;
}

/** The metrics in table order. */
export const METRICS: Record<string, Metric> = {
  "seq-write": { label: "fio seq write 1M", unit: "MiB/s", higherIsBetter: true },
  "seq-read": { label: "fio seq read 1M (cold)", unit: "MiB/s", higherIsBetter: true },
  "rand-read": { label: "fio rand read 4K (cold)", unit: "IOPS", higherIsBetter: true },
  "small-create": { label: "small files: create", unit: "ms", higherIsBetter: false },
  "small-list": { label: "small files: list+stat", unit: "ms", higherIsBetter: false },
  "small-read": { label: "small files: read", unit: "ms", higherIsBetter: false },
  "small-delete": { label: "small files: delete", unit: "ms", higherIsBetter: false },
  "tar-x": { label: "tar -x tree", unit: "ms", higherIsBetter: false },
  "find": { label: "find over tree (cold)", unit: "ms", higherIsBetter: false },
};

const FS_COLUMNS = ["tmpfs", "bindfs", "slayerfs"] as const;

/**
 * Times create, list+stat, read and delete of `count` 1 KiB files in `dir`, printing
 * `metric\tms` lines. `afterCreate` runs inside the create timing (e.g. to wait until a lazy
 * uploader has the files in S3).
 */
export async function smallFiles(
  dir: string,
  count: number,
  afterCreate?: () => Promise<void>,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const payload = new Uint8Array(1024).fill(0x61);
  const name = (i: number) => `${dir}/f${i}`;
  const time = async (metric: string, fn: () => Promise<void>) => {
    const t0 = performance.now();
    await fn();
    console.log(`${metric}\t${(performance.now() - t0).toFixed(1)}`);
  };
  await time("small-create", async () => {
    for (let i = 0; i < count; i++) await Deno.writeFile(name(i), payload);
    await afterCreate?.();
  });
  await time("small-list", async () => {
    let n = 0;
    for await (const e of Deno.readDir(dir)) {
      await Deno.lstat(`${dir}/${e.name}`);
      n++;
    }
    if (n !== count) throw new Error(`Listed ${n} files, expected ${count}`);
  });
  await time("small-read", async () => {
    for (let i = 0; i < count; i++) {
      const data = await Deno.readFile(name(i));
      if (data.length !== payload.length) throw new Error(`Short read of "${name(i)}"`);
    }
  });
  await time("small-delete", async () => {
    for (let i = 0; i < count; i++) await Deno.remove(name(i));
  });
  await Deno.remove(dir);
}

async function makeTree(dir: string, count: number): Promise<void> {
  let x = 12345;
  const rand = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % n;
  };
  const dirs: string[] = [];
  for (let d = 0; d < Math.ceil(count / 50); d++) {
    const path = `${dir}/d${d % 8}/sub${d}`;
    await Deno.mkdir(path, { recursive: true });
    dirs.push(path);
  }
  for (let i = 0; i < count; i++) {
    const data = new Uint8Array(rand(16 * 1024));
    for (let j = 0; j < data.length; j += 64) data[j] = rand(256);
    await Deno.writeFile(`${dirs[i % dirs.length]}/file-${i}.dat`, data);
  }
}

/** A number with 3 significant-ish digits for the table. */
export function fmt(v: number): string {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/**
 * Reads a results file of `metric\tfs\tvalue` lines: values keyed `metric/fs`, and the
 * `note\tfs\ttext` lines as `fs: text`.
 */
export function readResults(path: string): { results: Map<string, number>; notes: string[] } {
  const results = new Map<string, number>();
  const notes: string[] = [];
  for (const line of Deno.readTextFileSync(path).split("\n")) {
    if (line.trim() === "") continue;
    const [metric, fs, value] = line.split("\t");
    if (metric === "note") notes.push(`${fs}: ${value}`);
    else results.set(`${metric}/${fs}`, Number(value));
  }
  return { results, notes };
}

/** Prints rows (the first is the header) as aligned columns: two left-aligned, then right. */
export function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...r[i]!].length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log(line(rows[0]!));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of rows.slice(1)) console.log(line(r));
}

function table(resultsPath: string): void {
  const { results, notes: extras } = readResults(resultsPath);
  const header = ["metric", "unit", ...FS_COLUMNS, "slayerfs/bindfs"];
  const rows: string[][] = [header];
  for (const [key, m] of Object.entries(METRICS)) {
    const cells = FS_COLUMNS.map((fs) => results.get(`${key}/${fs}`));
    if (cells.every((c) => c === undefined)) continue;
    const [, b, s] = cells;
    let ratio = "-";
    if (b !== undefined && s !== undefined && b > 0 && Number.isFinite(s)) {
      ratio = `${(s / b).toFixed(2)}x ${
        (m.higherIsBetter ? s >= b : s <= b) ? "(better)" : "(worse)"
      }`;
    }
    rows.push([
      m.label,
      `${m.unit} ${m.higherIsBetter ? "↑" : "↓"}`,
      ...cells.map((c) => (c === undefined || !Number.isFinite(c) ? "n/a" : fmt(c))),
      ratio,
    ]);
  }
  printTable(rows);
  for (const e of extras) console.log(e);
}

if (import.meta.main) {
  const [cmd, a, b] = Deno.args;
  if (cmd === "smallfiles" && a !== undefined) await smallFiles(a, Number(b ?? 2000));
  else if (cmd === "maketree" && a !== undefined) await makeTree(a, Number(b ?? 2000));
  else if (cmd === "table" && a !== undefined) table(a);
  else {
    console.error("Usage: peers.ts smallfiles DIR COUNT | maketree DIR COUNT | table RESULTS");
    Deno.exit(2);
  }
}
