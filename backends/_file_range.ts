/**
 * Ranged reads of local files, shared by the file-backed stores.
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
  if (length !== undefined) {
    // A known length needs no stat: read until it is filled or the file ends.
    const out = new Uint8Array(Math.max(0, length));
    if (out.length === 0) return out;
    if (offset > 0) await file.seek(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < out.length) {
      const n = await file.read(out.subarray(done));
      if (n === null) break;
      done += n;
    }
    return done === out.length ? out : out.subarray(0, done);
  }
  const size = (await file.stat()).size;
  const start = Math.min(offset, size);
  const end = length === undefined ? size : Math.min(size, offset + length);
  const out = new Uint8Array(Math.max(0, end - start));
  if (out.length === 0) return out;
  if (start > 0) await file.seek(start, Deno.SeekMode.Start);
  let done = 0;
  while (done < out.length) {
    const n = await file.read(out.subarray(done));
    if (n === null) break;
    done += n;
  }
  return done === out.length ? out : out.subarray(0, done);
}
