/**
 * The records of a metadata dump (`slayerfs dump`/`load`): one JSON object per metadata key, named
 * by the concepts of the key map (`core/meta/keys.ts`) rather than by its bytes, so that a dump is
 * readable, diffable and independent of how an engine stores keys.
 *
 * | `t`         | key                   | fields                                                       |
 * | ----------- | --------------------- | ------------------------------------------------------------ |
 * | `format`    | `F`                   | `format`: the volume format (JSON)                           |
 * | `counter`   | `N<name>`             | `name` (`inode`, `slice`, `session`, `space`, ...), `value`  |
 * | `inode`     | `A<ino>I`             | `ino`, `mode` (octal string), `uid`, `gid`, `rdev`, `nlink`, |
 * |             |                       | `size`, `atime`/`mtime`/`ctime` (`[sec, nsec]`), `parent`,   |
 * |             |                       | `allocated` (when counted)                                   |
 * | `entry`     | `A<parent>D<name>`    | `parent`, `name`, `type` (`file`, `dir`, ...), `ino`         |
 * | `chunk`     | `A<ino>C<index>`      | `ino`, `index`, `slices`: `[pos, id, size, off, len]` each   |
 * | `symlink`   | `A<ino>S`             | `ino`, `target`                                              |
 * | `xattr`     | `A<ino>X<name>`       | `ino`, `name`, `value64` (base64)                            |
 * | `slice`     | `K<id>`               | `id`, `refs`, `size`, `blocks`: `{flags, len, xxh3, blake3}` |
 * | `inline`    | `I<id><index>`        | `id`, `index`, `data64` (the stored block, base64)           |
 * | `blob`      | `B<hash>`             | `hash` (hex), `refs`, `object` (its object key)              |
 * | `garbage`   | `G<id>`               | `id`, `size`, `blobs` (object keys, when any)                |
 * | `sustained` | `O<ino>`              | `ino`                                                        |
 * | `pattern`   | `P<ino>`              | `ino`, `pattern` (JSON)                                      |
 * | `session`   | `S<sid>`              | `sid`, `session` (JSON: host, pid, mountpoint, heartbeat...) |
 * | `open`      | `U<ino><sid>`         | `ino`, `sid`: the inode is open in that session              |
 * | `raw`       | any other key         | `key64`, `value64`: the key's and value's bytes, base64      |
 *
 * A name (entry, xattr, symlink target) that is not valid UTF-8 is given as `name64`/`target64`
 * (base64 of its bytes) instead. Every record is checked when it is written: it must encode back to
 * exactly the key and value it came from (through JSON), or the key is written as a `raw` record.
 * So a dump keeps every key, including keys this version does not know (sessions, locks, keys of
 * later versions), byte for byte.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  BLOCK_DEDUP,
  BLOCK_EXTERNAL,
  BLOCK_INLINE,
  BLOCK_LZ4,
  BLOCK_SEGMENTED,
  type BlockRecord,
  decodeBlockRecords,
  encodeBlockRecords,
  fromHex,
  toHex,
} from "../block_codec.ts";
import { bytesToByteString, byteStringToBytes } from "../_bytes.ts";
import {
  attrKey,
  blobKey,
  chunkKey,
  entryKey,
  garbageKey,
  inlineKey,
  keyFormat,
  openKey,
  patternKey,
  readU32,
  readU64,
  sessionKey,
  sliceKey,
  sustainedKey,
  symlinkKey,
  xattrKey,
} from "../meta/keys.ts";
import {
  decodeAttr,
  decodeBlob,
  decodeEntry,
  decodeGarbage,
  decodeJson,
  decodeNum,
  decodeSliceInfo,
  encodeAttr,
  encodeBlob,
  encodeEntry,
  encodeGarbage,
  encodeJson,
  encodeNum,
  encodeSliceInfo,
  SLICE_INFO_SIZE,
} from "../meta/_codec.ts";
import { concatBytes, decodeRecords, encodeRecords } from "../slice.ts";
import type { Attr, Ino, SliceId } from "../types.ts";

/** One record of a dump: `t` names its kind (see the module table). */
export type DumpRecord = { t: string } & Record<string, unknown>;

/** The counters under `N`, by the name a dump gives them. */
const COUNTER_NAMES: Record<string, string> = {
  Ninode: "inode",
  Nslice: "slice",
  Nspace: "space",
  Ninodes: "inodes",
  Norphan: "orphan",
  Nsession: "session",
};
const COUNTER_KEYS = Object.fromEntries(Object.entries(COUNTER_NAMES).map(([k, v]) => [v, k]));

const TYPES: Record<number, string> = {
  0o01: "fifo",
  0o02: "char",
  0o04: "dir",
  0o06: "block",
  0o10: "file",
  0o12: "symlink",
  0o14: "socket",
};
const TYPE_BITS = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v, Number(k)]));

const FLAGS: Array<[number, string]> = [
  [BLOCK_LZ4, "lz4"],
  [BLOCK_DEDUP, "dedup"],
  [BLOCK_INLINE, "inline"],
  [BLOCK_EXTERNAL, "external"], // slayerfs import: its `E<id>` reference is a raw record
  [BLOCK_SEGMENTED, "segmented"], // with its segment table as `segments64`
];

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Out = new TextEncoder();

/** Base64 of bytes. */
export function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Bytes of base64. */
export function unb64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64"));
}

/** A byte-string name as `{[field]: text}` when it is UTF-8, else `{[field64]: base64}`. */
function nameField(field: string, name: string): Record<string, string> {
  const bytes = byteStringToBytes(name);
  try {
    return { [field]: utf8.decode(bytes) };
  } catch {
    return { [field + "64"]: b64(bytes) };
  }
}

/** The byte-string name of a record written by {@linkcode nameField}. */
function nameOf(rec: DumpRecord, field: string): string {
  const text = rec[field];
  if (typeof text === "string") return bytesToByteString(utf8Out.encode(text));
  return bytesToByteString(unb64(str(rec, field + "64")));
}

function num(rec: DumpRecord, field: string): number {
  const v = rec[field];
  if (typeof v !== "number") throw new TypeError(`"${rec.t}" record without number "${field}"`);
  return v;
}

function str(rec: DumpRecord, field: string): string {
  const v = rec[field];
  if (typeof v !== "string") throw new TypeError(`"${rec.t}" record without string "${field}"`);
  return v;
}

function time(rec: DumpRecord, field: string): { sec: number; nsec: number } {
  const v = rec[field];
  if (!Array.isArray(v) || v.length !== 2) throw new TypeError(`"${rec.t}" record: bad ${field}`);
  return { sec: Number(v[0]), nsec: Number(v[1]) };
}

/** The logical record of a key and value, before the exactness check. */
function describe(key: string, value: Uint8Array): DumpRecord | undefined {
  const c = key[0];
  if (key === keyFormat) return { t: "format", format: decodeJson(value) };
  if (c === "N") {
    const name = COUNTER_NAMES[key];
    return name === undefined ? undefined : { t: "counter", name, value: decodeNum(value) };
  }
  if (c === "A" && key.length >= 10) {
    const ino = readU64(key, 1);
    const kind = key[9];
    const rest = key.slice(10);
    if (kind === "I" && rest === "") {
      const a = decodeAttr(ino as Ino, value);
      const rec: DumpRecord = {
        t: "inode",
        ino,
        mode: a.mode.toString(8),
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        nlink: a.nlink,
        size: a.size,
        atime: [a.atime.sec, a.atime.nsec],
        mtime: [a.mtime.sec, a.mtime.nsec],
        ctime: [a.ctime.sec, a.ctime.nsec],
        parent: a.parent,
      };
      if (a.allocated !== undefined) rec.allocated = a.allocated;
      return rec;
    }
    if (kind === "D") {
      const e = decodeEntry(value);
      const type = TYPES[e.type >>> 12];
      if (type === undefined) return undefined;
      return { t: "entry", parent: ino, ...nameField("name", rest), type, ino: e.ino };
    }
    if (kind === "C" && rest.length === 4) {
      const slices = decodeRecords(value).map((r) => [r.pos, r.id, r.size, r.off, r.len]);
      return { t: "chunk", ino, index: readU32(rest, 0), slices };
    }
    if (kind === "S" && rest === "") {
      return { t: "symlink", ino, ...nameField("target", bytesToByteString(value)) };
    }
    if (kind === "X") return { t: "xattr", ino, ...nameField("name", rest), value64: b64(value) };
    return undefined;
  }
  if (c === "K" && key.length === 9) {
    const info = decodeSliceInfo(value);
    const blocks = decodeBlockRecords(value.subarray(SLICE_INFO_SIZE)).map((b) => {
      const out: Record<string, unknown> = {
        flags: FLAGS.filter(([bit]) => b.flags & bit).map(([, n]) => n),
        len: b.storedLen,
        xxh3: b.checksum.toString(16).padStart(16, "0"),
      };
      if (b.hash) out.blake3 = toHex(b.hash);
      if (b.segments) out.segments64 = b64(b.segments);
      return out;
    });
    return { t: "slice", id: readU64(key, 1), refs: info.refs, size: info.size, blocks };
  }
  if (c === "I" && key.length === 13) {
    return { t: "inline", id: readU64(key, 1), index: readU32(key, 9), data64: b64(value) };
  }
  if (c === "B" && key.length === 33) {
    const b = decodeBlob(value);
    return { t: "blob", hash: toHex(byteStringToBytes(key.slice(1))), refs: b.refs, object: b.key };
  }
  if (c === "G" && key.length === 9) {
    const g = decodeGarbage(value);
    const rec: DumpRecord = { t: "garbage", id: readU64(key, 1), size: g.size };
    if (g.blobs.length) rec.blobs = g.blobs;
    return rec;
  }
  if (c === "O" && key.length === 9) return { t: "sustained", ino: readU64(key, 1) };
  if (c === "P" && key.length === 9) {
    return { t: "pattern", ino: readU64(key, 1), pattern: decodeJson(value) };
  }
  if (c === "S" && key.length === 9) {
    return { t: "session", sid: readU64(key, 1), session: decodeJson(value) };
  }
  if (c === "U" && key.length === 17) {
    return { t: "open", ino: readU64(key, 1), sid: readU64(key, 9) };
  }
  return undefined;
}

/** The key and value a record stands for; throws a `TypeError` for a malformed record. */
export function recordToKv(rec: DumpRecord): [key: string, value: Uint8Array] {
  switch (rec.t) {
    case "format":
      return [keyFormat, encodeJson(rec.format)];
    case "counter": {
      const key = COUNTER_KEYS[str(rec, "name")];
      if (key === undefined) throw new TypeError(`Unknown counter "${rec.name}"`);
      return [key, encodeNum(num(rec, "value"))];
    }
    case "inode": {
      const ino = num(rec, "ino") as Ino;
      const a: Attr = {
        ino,
        mode: parseInt(str(rec, "mode"), 8),
        uid: num(rec, "uid"),
        gid: num(rec, "gid"),
        rdev: num(rec, "rdev"),
        nlink: num(rec, "nlink"),
        size: num(rec, "size"),
        atime: time(rec, "atime"),
        mtime: time(rec, "mtime"),
        ctime: time(rec, "ctime"),
        parent: num(rec, "parent") as Ino,
      };
      if (rec.allocated !== undefined) a.allocated = num(rec, "allocated");
      return [attrKey(ino), encodeAttr(a)];
    }
    case "entry": {
      const bits = TYPE_BITS[str(rec, "type")];
      if (bits === undefined) throw new TypeError(`Unknown entry type "${rec.type}"`);
      const key = entryKey(num(rec, "parent") as Ino, nameOf(rec, "name"));
      return [key, encodeEntry(bits << 12, num(rec, "ino") as Ino)];
    }
    case "chunk": {
      const slices = rec.slices;
      if (!Array.isArray(slices)) throw new TypeError(`"chunk" record without slices`);
      const records = slices.map((s) => {
        if (!Array.isArray(s) || s.length !== 5) throw new TypeError(`"chunk" record: bad slice`);
        const [pos, id, size, off, len] = s.map(Number) as [number, number, number, number, number];
        return { pos, id: id as SliceId, size, off, len };
      });
      return [chunkKey(num(rec, "ino") as Ino, num(rec, "index")), encodeRecords(records)];
    }
    case "symlink":
      return [symlinkKey(num(rec, "ino") as Ino), byteStringToBytes(nameOf(rec, "target"))];
    case "xattr":
      return [xattrKey(num(rec, "ino") as Ino, nameOf(rec, "name")), unb64(str(rec, "value64"))];
    case "slice": {
      const blocks = rec.blocks;
      if (!Array.isArray(blocks)) throw new TypeError(`"slice" record without blocks`);
      const records = blocks.map((b: Record<string, unknown>): BlockRecord => {
        const names = Array.isArray(b.flags) ? b.flags : [];
        let flags = 0;
        for (const [bit, n] of FLAGS) if (names.includes(n)) flags |= bit;
        const r: BlockRecord = {
          flags,
          storedLen: Number(b.len),
          checksum: BigInt("0x" + String(b.xxh3)),
        };
        if (typeof b.blake3 === "string") r.hash = fromHex(b.blake3);
        if (flags & BLOCK_SEGMENTED) {
          if (typeof b.segments64 !== "string") {
            throw new TypeError(`"slice" record: a segmented block without "segments64"`);
          }
          r.segments = unb64(b.segments64);
        }
        return r;
      });
      const head = encodeSliceInfo(num(rec, "refs"), num(rec, "size"));
      return [sliceKey(num(rec, "id") as SliceId), concatBytes(head, encodeBlockRecords(records))];
    }
    case "inline":
      return [inlineKey(num(rec, "id") as SliceId, num(rec, "index")), unb64(str(rec, "data64"))];
    case "blob":
      return [blobKey(fromHex(str(rec, "hash"))), encodeBlob(num(rec, "refs"), str(rec, "object"))];
    case "garbage": {
      const blobs = Array.isArray(rec.blobs) ? rec.blobs.map(String) : [];
      return [garbageKey(num(rec, "id") as SliceId), encodeGarbage(num(rec, "size"), blobs)];
    }
    case "sustained":
      return [sustainedKey(num(rec, "ino") as Ino), new Uint8Array(1)];
    case "pattern":
      return [patternKey(num(rec, "ino") as Ino), encodeJson(rec.pattern)];
    case "session":
      return [sessionKey(num(rec, "sid")), encodeJson(rec.session)];
    case "open":
      return [openKey(num(rec, "ino") as Ino, num(rec, "sid")), new Uint8Array(1)];
    case "raw":
      return [bytesToByteString(unb64(str(rec, "key64"))), unb64(str(rec, "value64"))];
    default:
      throw new TypeError(`Unknown record type "${rec.t}"`);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The raw record of a key: its bytes and its value's, base64. */
export function rawRecord(key: string, value: Uint8Array): DumpRecord {
  return { t: "raw", key64: b64(byteStringToBytes(key)), value64: b64(value) };
}

/**
 * The JSON line of one key: its logical record when that encodes back to exactly this key and
 * value, else its `raw` record.
 */
export function recordLine(key: string, value: Uint8Array): { line: string; rec: DumpRecord } {
  try {
    const rec = describe(key, value);
    if (rec !== undefined) {
      const line = JSON.stringify(rec);
      const [k, v] = recordToKv(JSON.parse(line));
      if (k === key && sameBytes(v, value)) return { line, rec };
    }
  } catch {
    // Not what this version writes under that key: keep it raw.
  }
  const rec = rawRecord(key, value);
  return { line: JSON.stringify(rec), rec };
}
