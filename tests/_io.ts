/**
 * File data helpers of the mount tests: incompressible random bytes, and a write that is fsync'ed
 * before it returns.
 *
 * @module
 */

/** `n` random (incompressible) bytes. */
export function noise(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** Writes `data` to `path` (created or truncated) and fsyncs it. */
export async function writeSynced(path: string, data: Uint8Array): Promise<void> {
  using f = await Deno.open(path, { write: true, create: true, truncate: true });
  for (let done = 0; done < data.length;) done += await f.write(data.subarray(done));
  await f.sync();
}

/** Deno's own chatter on stderr (`Download ...`, `Check ...`), colored or not. */
const DENO_NOISE = new RegExp(`^(${String.fromCharCode(27)}\\[[0-9;]*m)*(Download|Check|Warning) `);

/** The stderr lines of a CLI run that are not Deno's own chatter. */
export function errorLines(stderr: string): string[] {
  return stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !DENO_NOISE.test(l));
}
