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

if (import.meta.main) {
  const [dir, count] = Deno.args;
  for (let i = 0; i < Number(count); i++) {
    await writeDurably(`${dir}/f${i}`, durableContent(i));
    console.log(i);
  }
}
