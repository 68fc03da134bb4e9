/**
 * The key map: every key the metadata keeps in its `KvEngine` (`core/kv.ts`), in one place.
 *
 * Keys are byte strings (one char per byte, so that engines sort them bytewise). Integers in keys
 * are big-endian (`<n:8>` a u64 below 2^53, `<n:4>` a u32) so that the keys of one prefix sort by
 * number. Everything of one inode (`A<ino:8>...`) sorts together: a scan of `A<ino:8>D` lists a
 * directory, a scan of `A<ino:8>C` a file's chunks. Values are encoded by the functions named in
 * the table (in `_codec.ts` beside this file unless a module is given); numbers in values are
 * big-endian too.
 *
 * | key                   | what                            | value                             |
 * | --------------------- | ------------------------------- | --------------------------------- |
 * | `F`                   | the volume format               | JSON (`encodeJson`)               |
 * | `Ninode`              | next free inode number          | f64 (`encodeNum`)                 |
 * | `Nslice`              | next free slice id              | f64 (`encodeNum`)                 |
 * | `Nspace`              | bytes used (4 KiB units)        | f64 (`encodeNum`)                 |
 * | `Ninodes`             | inodes used                     | f64 (`encodeNum`)                 |
 * | `Norphan`             | orphaned blob sets              | f64 (`encodeNum`)                 |
 * | `Nsession`            | last session id given           | f64 (`encodeNum`)                 |
 * | `Nsnapino`            | next free snapshot inode number | f64 (`encodeNum`), from 2^52      |
 * | `A<ino:8>I`           | an inode's attributes           | 84 bytes (`encodeAttr`)           |
 * | `A<ino:8>D<name>`     | entry `name` of directory `ino` | type, inode (`encodeEntry`)       |
 * | `A<ino:8>C<chunk:4>`  | a file chunk's slice list       | slice records (`encodeRecords`)   |
 * | `A<ino:8>S`           | a symlink's target              | one byte per char                 |
 * | `A<ino:8>X<name>`     | xattr `name` of `ino`           | the attribute's bytes             |
 * | `K<slice:8>`          | a committed slice               | refs, size, block records         |
 * | `I<slice:8><block:4>` | an inline block                 | the stored (encoded) block        |
 * | `B<hash>`             | a dedup blob by content hash    | refs, object key (`encodeBlob`)   |
 * | `G<slice:8>`          | a freed slice to delete         | size, blob keys (`encodeGarbage`) |
 * | `O<ino:8>`            | an unlinked inode still open    | one zero byte                     |
 * | `P<ino:8>`            | pattern after opening `ino`     | JSON `PatternEntry[]`             |
 * | `S<sid:8>`            | a mount's session               | JSON (`sessions.ts`)              |
 * | `T<ino:8>`            | a detached tree (clone, rm)     | JSON (`trees.ts`)                 |
 * | `U<ino:8><sid:8>`     | `ino` is open in session `sid`  | one zero byte                     |
 * | `L<ino:8>F`           | guard of `ino`'s flocks         | one byte 1                        |
 * | `L<ino:8>F<lk:16>`    | a `flock` of `ino`              | type, pid (`kv_locks.ts`)         |
 * | `L<ino:8>P`           | guard of `ino`'s POSIX locks    | one byte 1                        |
 * | `L<ino:8>P<lk:16>`    | POSIX record locks on `ino`     | pid, ranges (`kv_locks.ts`)       |
 * | `Q<ino:8>L`           | the quota of directory `ino`    | JSON limits (`quotas.ts`)         |
 * | `Q<ino:8>U`           | what that quota's tree uses     | JSON usage (`quotas.ts`)          |
 *
 * Counters and sizes are f64 (`encodeNum`); the attribute record is 84 bytes; an entry is the type
 * (mode >> 12) in a byte and the inode as f64; a chunk holds 24-byte slice records oldest first
 * (`core/slice.ts`). A slice's value is its reference count and size (u32 each) followed by its
 * block records (`encodeBlockRecords` of `core/block_codec.ts`). A blob's is its reference count
 * (u32) and the object key (UTF-8). A garbage entry has the layout of a slice's head with 0
 * references and the bytes it leaves in the store (0 if all its blocks were inline), then the
 * blob keys to delete with it as a JSON array, if any. Orphaned blob sets (uploaded twice by
 * racing commits) are garbage entries numbered 2^52 + `Norphan`.
 *
 * Sessions (`sessions.ts`, `core/session.ts`): each mount registers `S<sid>` (host, pid,
 * mountpoint, version, start time and a heartbeat in ms since the epoch; `expired` once another
 * mount started to clean it up) and marks each inode it has open with `U<ino><sid>` (written at
 * the first open of the inode in the session, deleted after its last close), so that an unlink on
 * any mount knows the inode is open somewhere and keeps it (`O<ino>`) until the last close there.
 *
 * Locks (`core/meta/kv_locks.ts`) are keyed by inode and by holder: `<lk:16>` is the session id of
 * the mount that took the lock (`<sid:8>`) followed by the kernel's lock owner (`<owner:8>`, a
 * u64), so one scan of `L<ino:8>F` or `L<ino:8>P` finds every holder of that inode on every mount.
 * A flock record is its type (1 shared, 2 exclusive) in a byte and the pid (u32); a POSIX record
 * is the pid (u32) and then the owner's ranges, 17 bytes each: type (`F_RDLCK`/`F_WRLCK`) in a
 * byte, first and last byte as f64 (`Infinity` to the end of the file). The guard (the prefix's
 * own key) exists while the inode has records of that kind; every transaction that changes one
 * reads and writes it, so that changes of one inode's locks always conflict on one key.
 *
 * @module
 */

import type { Ino, SliceId } from "../types.ts";
import { bytesToByteString } from "../_bytes.ts";

/** Encodes a non-negative integer below 2^53 as 8 big-endian byte chars. */
export function u64(n: number): string {
  const hi = Math.floor(n / 0x100000000);
  const lo = n >>> 0;
  return String.fromCharCode(
    (hi >>> 24) & 255,
    (hi >>> 16) & 255,
    (hi >>> 8) & 255,
    hi & 255,
    (lo >>> 24) & 255,
    (lo >>> 16) & 255,
    (lo >>> 8) & 255,
    lo & 255,
  );
}

/** Decodes 8 big-endian byte chars at `at`. */
export function readU64(s: string, at: number): number {
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < 4; i++) hi = hi * 256 + s.charCodeAt(at + i);
  for (let i = 4; i < 8; i++) lo = lo * 256 + s.charCodeAt(at + i);
  return hi * 0x100000000 + lo;
}

/** Encodes a u32 as 4 big-endian byte chars. */
export function u32(n: number): string {
  return String.fromCharCode((n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

/** Decodes 4 big-endian byte chars at `at`. */
export function readU32(s: string, at: number): number {
  return ((s.charCodeAt(at) << 24) | (s.charCodeAt(at + 1) << 16) |
    (s.charCodeAt(at + 2) << 8) | s.charCodeAt(at + 3)) >>> 0;
}

/** The volume format. */
export const keyFormat = "F";
/** The inode counter. */
export const keyInodeCounter = "Ninode";
/** The slice id counter. */
export const keySliceCounter = "Nslice";
/** Bytes used. */
export const keyUsedSpace = "Nspace";
/** Inodes used. */
export const keyUsedInodes = "Ninodes";
/** The counter of orphaned blob sets. */
export const keyOrphanCounter = "Norphan";
/** The session id counter. */
export const keySessionCounter = "Nsession";
/** The snapshot inode counter (snapshot inodes are numbered from 2^52: `trees.ts`). */
export const keySnapshotInoCounter = "Nsnapino";

/** An inode's attributes. */
export const attrKey = (ino: Ino): string => "A" + u64(ino) + "I";
/** The entries of directory `ino`. */
export const entryPrefix = (ino: Ino): string => "A" + u64(ino) + "D";
/** Entry `name` of directory `parent`. */
export const entryKey = (parent: Ino, name: string): string => "A" + u64(parent) + "D" + name;
/** The chunks of file `ino`. */
export const chunkPrefix = (ino: Ino): string => "A" + u64(ino) + "C";
/** Chunk `idx` of file `ino`. */
export const chunkKey = (ino: Ino, idx: number): string => "A" + u64(ino) + "C" + u32(idx);
/** The chunk index of a key made by {@linkcode chunkKey}. */
export const chunkIndexOf = (key: string): number => readU32(key, 10);
/** A symlink's target. */
export const symlinkKey = (ino: Ino): string => "A" + u64(ino) + "S";
/** The extended attributes of `ino`. */
export const xattrPrefix = (ino: Ino): string => "A" + u64(ino) + "X";
/** Extended attribute `name` of `ino`. */
export const xattrKey = (ino: Ino, name: string): string => "A" + u64(ino) + "X" + name;
/** A committed slice's info and block records. */
export const sliceKey = (id: SliceId): string => "K" + u64(id);
/** Every freed slice awaiting deletion. */
export const garbagePrefix = "G";
/** Freed slice `id`, awaiting deletion. */
export const garbageKey = (id: SliceId): string => "G" + u64(id);
/** The slice id of a key made by {@linkcode garbageKey}. */
export const garbageIdOf = (key: string): SliceId => readU64(key, 1) as SliceId;
/** The dedup blob of content hash `hash`. */
export const blobKey = (hash: Uint8Array): string => "B" + bytesToByteString(hash);
/** Inline block `index` of slice `id`. */
export const inlineKey = (id: SliceId, index: number): string => "I" + u64(id) + u32(index);
/** The reference of external slice `id` to the object it stands for (`core/import/external.ts`). */
export const externalKey = (id: SliceId): string => "E" + u64(id);
/** Every sustained (unlinked but open) inode. */
export const sustainedPrefix = "O";
/** Sustained inode `ino`. */
export const sustainedKey = (ino: Ino): string => "O" + u64(ino);
/** The inode of a key made by {@linkcode sustainedKey}. */
export const sustainedInoOf = (key: string): Ino => readU64(key, 1) as Ino;
/** The access pattern recorded after an open of `ino`. */
export const patternKey = (ino: Ino): string => "P" + u64(ino);

/** Every detached tree (a clone being built, a snapshot being removed). */
export const detachedPrefix = "T";
/** The detached tree rooted at `ino`. */
export const detachedKey = (ino: Ino): string => "T" + u64(ino);
/** The root inode of a key made by {@linkcode detachedKey}. */
export const detachedInoOf = (key: string): Ino => readU64(key, 1) as Ino;

/** Every session. */
export const sessionPrefix = "S";
/** Session `sid`. */
export const sessionKey = (sid: number): string => "S" + u64(sid);
/** The id of a key made by {@linkcode sessionKey}. */
export const sessionIdOf = (key: string): number => readU64(key, 1);
/** Every open of every inode in every session. */
export const openPrefix = "U";
/** The sessions that have `ino` open. */
export const openInoPrefix = (ino: Ino): string => "U" + u64(ino);
/** Inode `ino` open in session `sid`. */
export const openKey = (ino: Ino, sid: number): string => "U" + u64(ino) + u64(sid);
/** The inode and session of a key made by {@linkcode openKey}. */
export const openOf = (key: string): { ino: Ino; sid: number } => ({
  ino: readU64(key, 1) as Ino,
  sid: readU64(key, 9),
});
/** Every lock record of every inode (a dead session's cleanup scans it). */
export const lockPrefix = "L";
/** The flock records of `ino`. */
export const flockPrefix = (ino: Ino): string => "L" + u64(ino) + "F";
/** The POSIX lock records of `ino`. */
export const plockPrefix = (ino: Ino): string => "L" + u64(ino) + "P";
/** Every quota record. */
export const quotaPrefix = "Q";
/** The limits of the quota on directory `ino`. */
export const quotaLimitKey = (ino: Ino): string => "Q" + u64(ino) + "L";
/** The usage of the quota on directory `ino`. */
export const quotaUsageKey = (ino: Ino): string => "Q" + u64(ino) + "U";
/** The directory of a quota key. */
export const quotaInoOf = (key: string): Ino => readU64(key, 1) as Ino;
/** Encodes a u64 `bigint` (a kernel lock owner) as 8 big-endian byte chars. */
export function u64big(n: bigint): string {
  const v = BigInt.asUintN(64, n);
  return u32(Number(v >> 32n)) + u32(Number(v & 0xffffffffn));
}
/** The holder part of a lock key: session `sid`, kernel lock owner `owner`. */
export const lockHolder = (sid: number, owner: bigint): string => u64(sid) + u64big(owner);
/** The flock of `owner` of session `sid` on `ino`. */
export const flockKey = (ino: Ino, sid: number, owner: bigint): string =>
  flockPrefix(ino) + lockHolder(sid, owner);
/** The POSIX locks of `owner` of session `sid` on `ino`. */
export const plockKey = (ino: Ino, sid: number, owner: bigint): string =>
  plockPrefix(ino) + lockHolder(sid, owner);
/** The session id of a lock key. */
export const lockSessionOf = (key: string): number => readU64(key, 10);
/** The kernel lock owner of a lock key. */
export const lockOwnerOf = (key: string): bigint =>
  (BigInt(readU32(key, 18) >>> 0) << 32n) | BigInt(readU32(key, 22) >>> 0);
/** The inode of a lock key. */
export const lockInoOf = (key: string): Ino => readU64(key, 1) as Ino;
