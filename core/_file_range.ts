/**
 * Ranged and whole reads of local files, for the file-backed stores and the disk cache. A whole
 * file is read into a buffer of its size, not with `Deno.readFile`, which reads into memory of its
 * own first and hands it over on the JS thread (issue #13: the daemon's peak RSS, and a copy per
 * 4 MiB block, in cold sequential reads; `bench/README.md`).
 *
 * @module
 */

/** Reads `length` bytes at `offset` (to the end by default) from a file; fewer at its end. */
export async function readRange(
  path: string,
  offset: number,
  length?: number,
): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  // A known length needs no stat: read until it is filled or the file ends.
  const n = length !== undefined
    ? Math.max(0, length)
    : Math.max(0, (await file.stat()).size - offset);
  const out = new Uint8Array(n);
  if (n === 0) return out;
  if (offset > 0) await file.seek(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < n) {
    const got = await file.read(out.subarray(done));
    if (got === null) break;
    done += got;
  }
  return done === n ? out : out.subarray(0, done);
}
