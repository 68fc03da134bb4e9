/**
 * An mdtest-like run through real mounts: M mounts of one volume (separate daemons) × P processes
 * each, every process creating, then stat'ing, then removing its own F empty files in its own
 * folder (`mdtest -u -F -n F`); prints files created, stat'ed and removed per second over all
 * processes (each phase starts in every process at once and ends when the last one is done).
 *
 * ```sh
 * ./dev deno run -A bench/mdtest.ts                                  # SQLite, 2 mounts x 4 procs
 * ./dev deno run -A bench/mdtest.ts --mounts 1 --procs 4 --files 2000
 * ./dev deno run -A bench/mdtest.ts --engine redis                   # a tests/_engines.ts fixture
 * ./dev deno run -A bench/mdtest.ts --meta redis://127.0.0.1:6390/2  # a new, empty volume
 * ```
 *
 * The volume is formatted on a private `file://` store in a temp dir and mounted with
 * `tests/_mount.ts` (default mount options); everything is unmounted and removed at the end. Every
 * engine, SQLite included (several daemons of one host), allows several mounts of one volume.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { engineFixtures } from "../tests/_engines.ts";
import { type SlayerMount, startSlayer } from "../tests/_mount.ts";

const enc = new TextEncoder();

/** A worker: reads phase names on stdin, runs each on its folder, answers `done` on stdout. */
async function worker(dir: string, files: number): Promise<void> {
  Deno.mkdirSync(dir, { recursive: true });
  const out = (s: string) => Deno.stdout.writeSync(enc.encode(s + "\n"));
  out("ready");
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of Deno.stdin.readable) {
    buf += decoder.decode(chunk, { stream: true });
    let at;
    while ((at = buf.indexOf("\n")) >= 0) {
      const phase = buf.slice(0, at);
      buf = buf.slice(at + 1);
      if (phase === "create") {
        for (let i = 0; i < files; i++) {
          Deno.openSync(`${dir}/f${i}`, { write: true, createNew: true }).close();
        }
      } else if (phase === "stat") {
        for (let i = 0; i < files; i++) Deno.statSync(`${dir}/f${i}`);
      } else if (phase === "remove") {
        for (let i = 0; i < files; i++) Deno.removeSync(`${dir}/f${i}`);
      } else if (phase === "exit") {
        return;
      }
      out("done");
    }
  }
}

/** A running worker process and its line reader. */
interface Worker {
  child: Deno.ChildProcess;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  next: () => Promise<string>;
}

function spawnWorker(dir: string, files: number): Worker {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "worker", dir, String(files)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  const next = async () => {
    for (;;) {
      const at = buf.indexOf("\n");
      if (at >= 0) {
        const line = buf.slice(0, at);
        buf = buf.slice(at + 1);
        return line;
      }
      const r = await reader.read();
      if (r.done) throw new Error(`mdtest worker for ${dir} exited early`);
      buf += r.value;
    }
  };
  return { child, stdin: child.stdin.getWriter(), next };
}

async function coordinator(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      mounts: { type: "string", default: "2" },
      procs: { type: "string", default: "4" },
      files: { type: "string", default: "1000" },
      engine: { type: "string", default: "sqlite3" },
      meta: { type: "string" },
    },
  });
  const mounts = Number(values.mounts);
  const procs = Number(values.procs);
  const files = Number(values.files);
  const fixture = engineFixtures.find((f) => f.name === values.engine);
  if (!values.meta && !fixture) {
    throw new Error(`No engine fixture "${values.engine}": ${engineFixtures.map((f) => f.name)}`);
  }
  await using server = values.meta ? undefined : await fixture!.start();
  const meta = values.meta ?? server!.newVolumeUrl();
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-mdtest-" });
  const storage = `file://${dir}/blocks`;
  const ms: SlayerMount[] = [];
  const workers: Worker[] = [];
  try {
    for (let k = 0; k < mounts; k++) ms.push(await startSlayer({ meta, storage, format: k === 0 }));
    for (let k = 0; k < mounts; k++) {
      for (let j = 0; j < procs; j++) {
        workers.push(spawnWorker(`${ms[k]!.mnt}/mdtest/m${k}p${j}`, files));
      }
    }
    for (const w of workers) await w.next(); // ready
    const total = mounts * procs * files;
    const rates: string[] = [];
    for (const phase of ["create", "stat", "remove"]) {
      const t0 = performance.now();
      await Promise.all(workers.map((w) => w.stdin.write(enc.encode(phase + "\n"))));
      await Promise.all(workers.map((w) => w.next()));
      const s = (performance.now() - t0) / 1000;
      rates.push(`${phase} ${Math.round(total / s)}/s`);
    }
    console.log(
      `mdtest-like, ${new URL(meta).protocol.slice(0, -1)}: ${mounts} mounts x ${procs} ` +
        `processes x ${files} files (${total}), ${navigator.hardwareConcurrency} cores: ` +
        rates.join(", "),
    );
  } finally {
    for (const w of workers) {
      await w.stdin.write(enc.encode("exit\n")).catch(() => {});
      await w.stdin.close().catch(() => {});
      await w.child.status;
    }
    for (const m of ms) await m.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (Deno.args[0] === "worker") await worker(Deno.args[1]!, Number(Deno.args[2]));
else {
  try {
    await coordinator();
  } catch (err) {
    console.error(`mdtest: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
}
