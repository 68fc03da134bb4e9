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
  // A known length needs no stat, and a new descriptor is at offset 0 already.
  const out = new Uint8Array(Math.max(0, length ?? (await file.stat()).size - offset));
  if (out.length > 0 && offset > 0) await file.seek(offset, Deno.SeekMode.Start);
  return await fill(file, out);
}

/** Reads `length` bytes at `offset` of an open file (seeking there); fewer at its end. */
export async function readAt(
  file: Deno.FsFile,
  offset: number,
  length: number,
): Promise<Uint8Array> {
  const out = new Uint8Array(Math.max(0, length));
  if (out.length > 0) await file.seek(offset, Deno.SeekMode.Start);
  return await fill(file, out);
}

/** Reads from `file`'s position until `out` is full or the file ends. */
async function fill(file: Deno.FsFile, out: Uint8Array): Promise<Uint8Array> {
  let done = 0;
  while (done < out.length) {
    const got = await file.read(out.subarray(done));
    if (got === null) break;
    done += got;
  }
  return done === out.length ? out : out.subarray(0, done);
}
