/**
 * A writer process for outage tests: `deno run -A tests/_durable_writer.ts DIR COUNT` writes
 * `DIR/f0` .. `DIR/f{COUNT-1}` with {@linkcode durableContent}, fsyncs each, and prints its index
 * on a line of its own once the fsync returned. It runs apart from the test so that a close
 * blocked on a mount whose metadata engine is away cannot freeze the test's own event loop.
 *
 * @module
 */

/** The content of file `i`: small files live in the metadata (inline), larger ones in blocks. */
export function durableContent(i: number): Uint8Array {
  const n = i % 2 === 0 ? 3000 + i : 200_000 + i;
  const out = new Uint8Array(n);
  let x = (i + 1) >>> 0;
  for (let j = 0; j < n; j++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[j] = x & 0xff;
  }
  return out;
}

/** Writes `data` to `path` and fsyncs it. */
export async function writeDurably(path: string, data: Uint8Array): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  let off = 0;
  while (off < data.length) off += await f.write(data.subarray(off));
  await f.syncData();
}

/** A running {@link spawnDurableWriter} process. */
export interface DurableWriter {
  /** The indexes whose fsync returned, in order. */
  readonly durable: number[];
  /** Waits until `n` files are durable (or the writer ended); throws after `ms`. */
  until(n: number, ms?: number): Promise<void>;
  /** Waits for the writer to end (throws after `ms`); its exit code and stderr. */
  done(ms?: number): Promise<{ code: number; stderr: string }>;
  /** Kills the writer if it still runs and waits for it. Idempotent. */
  kill(): Promise<void>;
}

/**
 * Starts this module as a writer process of `count` files in `dir`. The test itself then holds no
 * file on the mount: a process it spawns (a server restarted during an outage) would otherwise
 * inherit the open file, and its exec's close would wait on a FUSE flush that waits for the very
 * server being started.
 */
export function spawnDurableWriter(dir: string, count: number): DurableWriter {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, dir, `${count}`],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const durable: number[] = [];
  const stderr = new Response(child.stderr).text();
  const progress = (async () => {
    let rest = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const p of parts) durable.push(Number(p));
    }
  })();
  let exited = false;
  const status = child.status.then((s) => (exited = true, s));
  const within = async <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the writer: ${what} not within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    durable,
    until: (n, ms = 300_000) =>
      within(
        (async () => {
          while (durable.length < n && !exited) await new Promise((r) => setTimeout(r, 5));
        })(),
        ms,
        `${n} files`,
      ),
    async done(ms = 600_000) {
      const s = await within(status, ms, "exit");
      await progress;
      return { code: s.code, stderr: await stderr };
    },
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await status;
      await progress.catch(() => {});
      await stderr.catch(() => {});
    },
  };
}

if (import.meta.main) {
  const [dir, count] = Deno.args;
  for (let i = 0; i < Number(count); i++) {
    await writeDurably(`${dir}/f${i}`, durableContent(i));
    console.log(i);
  }
}
