/**
 * `bench/containers.sh`: container starts from an image imported with `slayerfs image import`
 * into a volume whose blocks are on an S3 test server answering every GET after `LATENCY_MS`
 * (default 20). For each image (busybox; a Debian minbase from debootstrap unless `DEBIAN=0`):
 *
 * - cold (first): a fresh mount (`--no-cache-dir`, an empty memory cache, no kernel caches),
 *   `runc run` of one command; the predictor records what the start read;
 * - cold + prefetch: unmount, mount again (still cold), the same command: opening its first file
 *   replays the recorded pattern, fetching its blocks in parallel;
 * - warm: the same command again on that mount;
 * - local disk: the same rootfs on the machine's ext4, page cache warm.
 *
 * Times are wall-clock `runc run` times (median of `RUNS`, default 3; cold ones from one mount
 * each). "fetched" is what the daemon fetched from S3 (`storeGetBytes` of `slayerfs status
 * --json`, stored bytes); "image" the bytes of the image's files. Prints one table.
 *
 * Needs root, runc, busybox-static, debootstrap (for Debian) and node (s3rver).
 *
 * @module
 */

import { busyboxRootfs, ensureApt, must } from "../tests/_containers.ts";
import { dockerSave, membersOf, tar } from "../tests/_image_archive.ts";
import { startS3Server } from "../tests/_s3server.ts";
import { humanBytes, table } from "../cli/_human.ts";

const REPO = new URL("../", import.meta.url).pathname;
const CLI = `${REPO}cli.ts`;
const LATENCY_MS = Number(Deno.env.get("LATENCY_MS") ?? 20);
const RUNS = Number(Deno.env.get("RUNS") ?? 3);
const DEBIAN = Deno.env.get("DEBIAN") !== "0";
const DEBIAN_ROOTFS = Deno.env.get("DEBIAN_ROOTFS");

const log = (s: string) =>
  console.error(`[containers ${new Date().toISOString().slice(11, 19)}] ${s}`);

async function cli(args: string[]): Promise<string> {
  return await must(Deno.execPath(), ["run", "-A", CLI, ...args], `slayerfs ${args[0]}`);
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

let runcSeq = 0;
/** `runc run` of `args` in a bundle rooted at `rootfs`; returns ms. */
async function runc(work: string, rootfs: string, args: string[]): Promise<number> {
  const bundle = `${work}/bundle`;
  await Deno.mkdir(bundle, { recursive: true });
  await must("runc", ["spec", "--bundle", bundle]).catch(() => {});
  const config = JSON.parse(await Deno.readTextFile(`${bundle}/config.json`));
  config.process.terminal = false;
  config.process.args = args;
  config.root = { path: rootfs, readonly: true };
  await Deno.writeTextFile(`${bundle}/config.json`, JSON.stringify(config));
  const id = `slayerfs-bench-${Deno.pid}-${runcSeq++}`;
  try {
    return await timed(() => must("runc", ["run", "--bundle", bundle, id]));
  } finally {
    await new Deno.Command("runc", { args: ["delete", "--force", id] }).output();
  }
}

/** Stored bytes and objects the mount fetched from S3 so far (the daemon's state after `since`). */
async function fetched(mnt: string, since: number): Promise<[number, number]> {
  for (let i = 0;; i++) {
    const s = JSON.parse(await cli(["status", "--json", mnt]));
    // The daemon refreshes its state every 2 s: wait for one written after the start.
    if (Date.parse(s.updated) > since + 100 || i === 40) {
      log(`predictor: ${JSON.stringify(s.predictor)}`);
      return [s.storeGetBytes ?? 0, s.storeGets ?? 0];
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function mount(meta: string, mnt: string): Promise<void> {
  await cli(["mount", "--no-cache-dir", "-o", "rootfs", "--log", `${mnt}.log`, meta, mnt]);
}

interface Row {
  image: string;
  command: string;
  size: number;
  stored: number;
  results: Array<[string, number, number | undefined, number | undefined]>;
}

async function bench(
  work: string,
  name: string,
  rootfs: string,
  command: string[],
  s3: Awaited<ReturnType<typeof startS3Server>>,
): Promise<Row> {
  const dir = `${work}/${name}`;
  await Deno.mkdir(dir, { recursive: true });
  const meta = `sqlite3://${dir}/meta.db`;
  await s3.createBucket(name);
  await cli(["format", "--storage", s3.storeUrl(name, "v"), meta, name]);
  log(`${name}: building and importing the image`);
  const archive = `${dir}/image.tar`;
  await Deno.writeFile(archive, dockerSave([tar(await membersOf(rootfs))]));
  await cli(["image", "import", "-q", meta, archive, name]);
  await Deno.remove(archive);
  const info = JSON.parse(await cli(["image", "ls", "--json", meta]))[0];
  const du = await must("du", ["-sb", `${s3.directory}/${name}`]);
  const mnt = `${dir}/mnt`;
  const root = `${mnt}/.images/${name}/rootfs`;
  const results: Row["results"] = [];
  const cold: number[] = [], coldBytes: number[] = [];
  const pre: number[] = [], preBytes: number[] = [];
  const warm: number[] = [];
  const objects = new Map<number, number>();
  // Mount 1 is the first start (no pattern yet: "cold first", once); mounts 2..RUNS replay the
  // pattern recorded by the start before ("cold + prefetch"); the last mount also runs warm.
  for (let i = 0; i < RUNS; i++) {
    await mount(meta, mnt);
    try {
      const ms = await runc(dir, root, command);
      const [bytes, gets] = await fetched(mnt, Date.now());
      objects.set(bytes, gets);
      if (i === 0) {
        cold.push(ms);
        coldBytes.push(bytes);
      } else {
        pre.push(ms);
        preBytes.push(bytes);
      }
      log(
        `${name}: ${i === 0 ? "cold first" : "cold + prefetch"} ${ms.toFixed(0)} ms, ` +
          `${humanBytes(bytes)} fetched`,
      );
      if (i === RUNS - 1) {
        for (let j = 0; j < RUNS; j++) warm.push(await runc(dir, root, command));
      }
      await new Promise((r) => setTimeout(r, 2500)); // the predictor's recording ends
    } finally {
      await cli(["umount", mnt]);
    }
  }
  const local: number[] = [];
  for (let j = 0; j < RUNS; j++) local.push(await runc(dir, rootfs, command));
  const c = median(coldBytes), p = pre.length ? median(preBytes) : 0;
  results.push(["cold (first)", median(cold), c, objects.get(c)]);
  if (pre.length) results.push(["cold + prefetch", median(pre), p, objects.get(p)]);
  results.push(["warm", median(warm), undefined, undefined]);
  results.push(["local disk (ext4)", median(local), undefined, undefined]);
  return {
    image: name,
    command: command.join(" "),
    size: info.fileBytes,
    stored: Number(du.split(/\s/)[0]),
    results,
  };
}

async function main(): Promise<void> {
  await ensureApt({ runc: "runc", busybox: "busybox-static" });
  const work = await Deno.makeTempDir({ prefix: "slayerfs-bench-containers-" });
  await using s3 = await startS3Server({ getLatencyMs: LATENCY_MS });
  s3.exportCredentials();
  const rows: Row[] = [];
  try {
    await busyboxRootfs(`${work}/busybox-rootfs`);
    rows.push(
      await bench(work, "busybox", `${work}/busybox-rootfs`, ["sh", "-c", "ls / >/dev/null"], s3),
    );
    if (DEBIAN) {
      let rootfs = DEBIAN_ROOTFS;
      if (!rootfs) {
        await ensureApt({ debootstrap: "debootstrap" });
        rootfs = `${work}/debian-rootfs`;
        log("debootstrap --variant=minbase bookworm (about 30 s)");
        await must("debootstrap", [
          "--variant=minbase",
          "bookworm",
          rootfs,
          "http://deb.debian.org/debian",
        ]);
      }
      rows.push(await bench(work, "debian", rootfs, ["apt-get", "--version"], s3));
    }
  } finally {
    for (const m of ["busybox", "debian"]) {
      await new Deno.Command("fusermount3", { args: ["-u", "-z", `${work}/${m}/mnt`] }).output()
        .catch(() => {});
    }
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  console.log(
    `Container starts (runc run), S3 test server with +${LATENCY_MS} ms per GET, ` +
      `median of ${RUNS} (cold first: 1)`,
  );
  const out = [["image", "command", "start", "ms", "fetched from S3", "objects", "of the image"]];
  for (const r of rows) {
    out.push([
      r.image,
      r.command,
      "image size",
      "",
      humanBytes(r.size),
      "",
      `stored ${humanBytes(r.stored)}`,
    ]);
    for (const [what, ms, bytes, gets] of r.results) {
      out.push([
        "",
        "",
        what,
        ms.toFixed(0),
        bytes === undefined ? "" : humanBytes(bytes),
        gets === undefined ? "" : String(gets),
        bytes === undefined
          ? ""
          : `${(100 * bytes / r.size).toFixed(1)}% (${
            (100 * bytes / r.stored).toFixed(1)
          }% of stored)`,
      ]);
    }
  }
  console.log(table(out).join("\n"));
}

if (import.meta.main) await main();
