import assert from "node:assert/strict";
import { recordLine, recordToKv } from "./records.ts";
import {
  attrKey,
  entryKey,
  garbageKey,
  keyOrphanCounter,
  patternKey,
  sustainedKey,
  xattrKey,
} from "../meta/keys.ts";
import { encodeAttr, encodeEntry, encodeGarbage, encodeJson, encodeNum } from "../meta/_codec.ts";
import type { Ino, SliceId } from "../types.ts";

/** Asserts that `key`/`value` dump as a record of type `t` and load back byte for byte. */
function roundTrip(key: string, value: Uint8Array, t: string): Record<string, unknown> {
  const { line, rec } = recordLine(key, value);
  assert.equal(rec.t, t, line);
  const [k, v] = recordToKv(JSON.parse(line));
  assert.equal(k, key);
  assert.deepEqual(v, value);
  return rec;
}

Deno.test("dump records: every kind round-trips, unknown keys and values stay raw", () => {
  const ino = 2 ** 40 + 3 as Ino;
  roundTrip(garbageKey(5 as SliceId), encodeGarbage(4096, []), "garbage");
  const g = roundTrip(garbageKey(2 ** 52 + 1 as SliceId), encodeGarbage(0, ["blobs/x"]), "garbage");
  assert.deepEqual(g.blobs, ["blobs/x"]);
  roundTrip(sustainedKey(ino), new Uint8Array(1), "sustained");
  roundTrip(patternKey(ino), encodeJson([{ a: 1 }]), "pattern");
  roundTrip(keyOrphanCounter, encodeNum(3), "counter");
  const a = {
    ino,
    mode: 0o100644,
    uid: 1,
    gid: 2,
    rdev: 0,
    nlink: 1,
    size: 12345,
    atime: { sec: -5, nsec: 1 },
    mtime: { sec: 1.7e9, nsec: 999_999_999 },
    ctime: { sec: 0, nsec: 0 },
    parent: 0 as Ino,
  };
  roundTrip(attrKey(ino), encodeAttr(a), "inode");
  roundTrip(attrKey(ino), encodeAttr({ ...a, allocated: 8192 }), "inode");
  // A name that is not UTF-8 (one char per byte) is kept as base64.
  const e = roundTrip(entryKey(1 as Ino, "\xff\xfe"), encodeEntry(0o100000, ino), "entry");
  assert.equal(e.name64, "//4=");
  roundTrip(xattrKey(ino, "user.\xc3\xa9"), new Uint8Array([0, 1]), "xattr");
  // Unknown keys (another version's, another module's) and values that do not re-encode.
  roundTrip("Ssession\x00\x01", new Uint8Array([9, 9]), "raw");
  roundTrip("Nfuture", encodeNum(1), "raw");
  roundTrip(attrKey(ino), new Uint8Array(12), "raw"); // a short attribute record
  roundTrip(entryKey(1 as Ino, "x"), encodeEntry(0o030000, ino), "raw"); // unknown type
  roundTrip("", new Uint8Array(), "raw");
});
