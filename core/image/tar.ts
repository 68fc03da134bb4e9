/**
 * A streaming tar reader: ustar, GNU long names and links (`L`, `K`), base-256 numbers, and PAX
 * headers (`x`, `g`: `path`, `linkpath`, `size`, `uid`, `gid`, `mtime`, `SCHILY.xattr.*`). Names
 * stay bytes (byte strings, as {@linkcode Name}). It reads from a {@linkcode ByteSource}: a
 * stream (a layer, possibly through a `DecompressionStream`) or a file read by offsets (the outer
 * archive, whose members are never extracted to disk).
 *
 * @module
 */

import { bytesToByteString } from "../_bytes.ts";

/** An error in an archive's contents: truncated, a bad header, a bad digest, a refused path. */
export class ArchiveError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "ArchiveError";
  }
}

/** Sequential bytes: a stream or a file range. */
export interface ByteSource {
  /** Reads up to `n` bytes; fewer only at the end. */
  read(n: number): Promise<Uint8Array>;
  /** Skips `n` bytes; throws {@linkcode ArchiveError} past the end. */
  skip(n: number): Promise<void>;
  /** Bytes consumed so far. */
  readonly position: number;
}

/** A {@linkcode ByteSource} over a `ReadableStream`. */
export class StreamSource implements ByteSource {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #done = false;
  /** Bytes consumed so far. */
  position = 0;

  /** Reads `stream`. */
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async #fill(n: number): Promise<void> {
    const parts: Uint8Array[] = [this.#buf];
    let have = this.#buf.byteLength;
    while (have < n && !this.#done) {
      const r = await this.#reader.read();
      if (r.done) this.#done = true;
      else {
        parts.push(r.value);
        have += r.value.byteLength;
      }
    }
    if (parts.length > 1) {
      const all = new Uint8Array(have);
      let off = 0;
      for (const p of parts) {
        all.set(p, off);
        off += p.byteLength;
      }
      this.#buf = all;
    }
  }

  /** Reads up to `n` bytes; fewer only at the end. */
  async read(n: number): Promise<Uint8Array> {
    if (this.#buf.byteLength < n) await this.#fill(n);
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(out.byteLength);
    this.position += out.byteLength;
    return out;
  }

  /** Skips `n` bytes. */
  async skip(n: number): Promise<void> {
    while (n > 0) {
      const got = await this.read(Math.min(n, 1 << 20));
      if (got.byteLength === 0) throw new ArchiveError("The archive is truncated");
      n -= got.byteLength;
    }
  }

  /** Reads the rest of the stream (so that a digest computed beside it covers everything). */
  async drain(): Promise<void> {
    while ((await this.read(1 << 20)).byteLength > 0) { /* discard */ }
  }

  /** Stops reading the stream. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** A {@linkcode ByteSource} over a file read at offsets (`start` to `end`). */
export class FileSource implements ByteSource {
  readonly #file: Deno.FsFile;
  readonly #end: number;
  /** The absolute offset of the next byte. */
  offset: number;

  /** Reads `file` from `start` up to `end`. */
  constructor(file: Deno.FsFile, start: number, end: number) {
    this.#file = file;
    this.offset = start;
    this.#end = end;
  }

  /** Bytes consumed so far (the absolute offset). */
  get position(): number {
    return this.offset;
  }

  /** Reads up to `n` bytes; fewer only at the end. */
  async read(n: number): Promise<Uint8Array> {
    const want = Math.max(0, Math.min(n, this.#end - this.offset));
    const out = new Uint8Array(want);
    await this.#file.seek(this.offset, Deno.SeekMode.Start);
    let got = 0;
    while (got < want) {
      const r = await this.#file.read(out.subarray(got));
      if (r === null) break;
      got += r;
    }
    this.offset += got;
    return out.subarray(0, got);
  }

  /** Skips `n` bytes. */
  skip(n: number): Promise<void> {
    if (this.offset + n > this.#end) {
      return Promise.reject(new ArchiveError("The archive is truncated"));
    }
    this.offset += n;
    return Promise.resolve();
  }
}

/** A `ReadableStream` of bytes `start` to `end` of `file`, in 1 MiB reads. */
export function fileRange(
  file: Deno.FsFile,
  start: number,
  end: number,
): ReadableStream<Uint8Array> {
  const src = new FileSource(file, start, end);
  return new ReadableStream({
    async pull(c) {
      const b = await src.read(1 << 20);
      if (b.byteLength === 0) c.close();
      else c.enqueue(b);
    },
  }, { highWaterMark: 0 });
}

/** One member of a tar archive. */
export interface TarEntry {
  /** The path, as bytes (a byte string). */
  name: string;
  /** The type flag: `0` file, `1` hard link, `2` symlink, `3` char, `4` block, `5` dir, `6` FIFO. */
  type: string;
  /** Permission bits, with setuid, setgid and sticky. */
  mode: number;
  /** The owner. */
  uid: number;
  /** The group. */
  gid: number;
  /** The data's length in bytes. */
  size: number;
  /** Modification time, seconds (with a fraction from PAX). */
  mtime: number;
  /** A link's target, as bytes. */
  linkname: string;
  /** Device numbers. */
  devmajor: number;
  /** Device numbers. */
  devminor: number;
  /** Extended attributes from PAX `SCHILY.xattr.*` (names as byte strings). */
  xattrs: Map<string, Uint8Array>;
  /** The archive offset of the data (for a {@linkcode FileSource}). */
  offset: number;
}

const dec = new TextDecoder();

function cstr(b: Uint8Array): Uint8Array {
  const z = b.indexOf(0);
  return z < 0 ? b : b.subarray(0, z);
}

function num(b: Uint8Array): number {
  if (b[0]! & 0x80) { // base-256 (GNU), positive only
    let v = b[0]! & 0x7f;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
    return v;
  }
  const t = dec.decode(cstr(b)).trim();
  if (t === "") return 0;
  if (!/^[0-7]+$/.test(t)) throw new ArchiveError(`Corrupt tar header: bad number "${t}"`);
  return parseInt(t, 8);
}

function parsePax(data: Uint8Array, into: Map<string, Uint8Array>): void {
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    const len = sp < 0 ? NaN : Number(dec.decode(data.subarray(off, sp)));
    if (!Number.isInteger(len) || len <= 0 || off + len > data.length) {
      throw new ArchiveError("Corrupt PAX header");
    }
    const rec = data.subarray(sp + 1, off + len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new ArchiveError("Corrupt PAX header record");
    into.set(dec.decode(rec.subarray(0, eq)), rec.slice(eq + 1));
    off += len;
  }
}

async function readExactly(src: ByteSource, n: number): Promise<Uint8Array> {
  const b = await src.read(n);
  if (b.byteLength < n) throw new ArchiveError("The archive is truncated");
  return b;
}

const pad = (n: number) => (512 - (n % 512)) % 512;

/**
 * The entries of the tar archive in `src`, in order. After each yielded entry, the caller may read
 * exactly `entry.size` bytes of data from `src`; whatever it leaves is skipped.
 */
export async function* tarEntries(src: ByteSource): AsyncGenerator<TarEntry> {
  const global = new Map<string, Uint8Array>();
  let pax = new Map<string, Uint8Array>();
  let longName: Uint8Array | undefined;
  let longLink: Uint8Array | undefined;
  for (;;) {
    const h = await src.read(512);
    if (h.byteLength === 0) throw new ArchiveError("The archive is truncated (no end marker)");
    if (h.byteLength < 512) throw new ArchiveError("The archive is truncated");
    if (h.every((x) => x === 0)) return;
    const at = src.position - 512;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (num(h.subarray(148, 156)) !== sum) {
      throw new ArchiveError(`Corrupt tar header at offset ${at} (checksum mismatch)`);
    }
    const type = String.fromCharCode(h[156]!) === "\0" ? "0" : String.fromCharCode(h[156]!);
    let size = num(h.subarray(124, 136));
    if (type === "x" || type === "g" || type === "L" || type === "K") {
      const data = await readExactly(src, size);
      await src.skip(pad(size));
      if (type === "x") parsePax(data, pax);
      else if (type === "g") parsePax(data, global);
      else if (type === "L") longName = cstr(data).slice();
      else longLink = cstr(data).slice();
      continue;
    }
    const attrs = new Map([...global, ...pax]);
    const text = (k: string) => {
      const v = attrs.get(k);
      return v === undefined ? undefined : dec.decode(v);
    };
    const ustar = dec.decode(h.subarray(257, 263)) === "ustar\0";
    let name = cstr(h.subarray(0, 100));
    const prefix = ustar ? cstr(h.subarray(345, 500)) : new Uint8Array(0);
    if (prefix.byteLength) name = new Uint8Array([...prefix, 0x2f, ...name]);
    const paxSize = text("size");
    if (paxSize !== undefined) size = Number(paxSize);
    const xattrs = new Map<string, Uint8Array>();
    for (const [k, v] of attrs) {
      if (k.startsWith("SCHILY.xattr.")) {
        xattrs.set(bytesToByteString(new TextEncoder().encode(k.slice(13))), v);
      }
    }
    const entry: TarEntry = {
      name: bytesToByteString(attrs.get("path") ?? longName ?? name),
      type,
      mode: num(h.subarray(100, 108)) & 0o7777,
      uid: Number(text("uid") ?? num(h.subarray(108, 116))),
      gid: Number(text("gid") ?? num(h.subarray(116, 124))),
      size,
      mtime: Number(text("mtime") ?? num(h.subarray(136, 148))),
      linkname: bytesToByteString(attrs.get("linkpath") ?? longLink ?? cstr(h.subarray(157, 257))),
      devmajor: ustar || h[257] === 0x75 ? num(h.subarray(329, 337)) : 0,
      devminor: ustar || h[257] === 0x75 ? num(h.subarray(337, 345)) : 0,
      xattrs,
      offset: src.position,
    };
    pax = new Map();
    longName = longLink = undefined;
    if (!Number.isSafeInteger(entry.size) || entry.size < 0) {
      throw new ArchiveError(`Corrupt tar header at offset ${at} (size)`);
    }
    // Hard links and the like have no data whatever their size field says, except in PAX.
    const dataBytes = type === "1" || type === "2" || type === "5" ? 0 : entry.size;
    if (dataBytes !== entry.size) entry.size = 0;
    yield entry;
    const left = entry.offset + dataBytes - src.position;
    if (left < 0) throw new Error("The tar entry's reader read past its data");
    await src.skip(left + pad(dataBytes));
  }
}
