/**
 * Reads of file data in the metadata, as functions over a {@linkcode KvTxn}: chunk slice lists,
 * the block records of committed slices and the bytes of inline blocks (see `slices.ts` for the
 * changes).
 *
 * @module
 */

import type { KvTxn } from "../kv.ts";
import type { Ino, SliceId } from "../types.ts";
import { decodeRecords, resolveSegments, type SliceRecord } from "../slice.ts";
import { BLOCK_INLINE, type BlockRecord, decodeBlockRecords } from "../block_codec.ts";
import { SLICE_INFO_SIZE } from "./_codec.ts";
import { attrKey, chunkIndexOf, chunkKey, chunkPrefix, inlineKey, sliceKey } from "./keys.ts";
import { Errno, FsError } from "../errno.ts";

/** Everything a read of one chunk needs: see {@linkcode readChunkFull}. */
export interface FullChunk {
  /** The chunk's slice list, oldest first. */
  records: SliceRecord[];
  /** The block records of each slice still visible in the chunk. */
  blocks: Map<SliceId, BlockRecord[]>;
  /** The stored bytes of their inline blocks, by `inlineKey(id, index)` of `keys.ts`. */
  inline: Map<string, Uint8Array>;
}

/** The slice list of one chunk, oldest first. */
export async function readChunk(tx: KvTxn, ino: Ino, index: number): Promise<SliceRecord[]> {
  return decodeRecords(await tx.get(chunkKey(ino, index)));
}

/**
 * One chunk's slice list together with the block records of the slices still visible in it
 * and the bytes of their inline blocks.
 */
export async function readChunkFull(tx: KvTxn, ino: Ino, index: number): Promise<FullChunk> {
  const raw = await tx.get(chunkKey(ino, index));
  // No chunk: a hole, unless the file itself is gone (deleted by another mount): then EIO, not
  // zeros.
  if (!raw && !(await tx.get(attrKey(ino)))) {
    throw new FsError(Errno.EIO, `File ${ino} was deleted (by another mount?)`);
  }
  const records = decodeRecords(raw);
  const ids = [...new Set(resolveSegments(records).map((r) => r.id))]
    .filter((id) => id !== 0);
  const raws = await tx.getMany(ids.map(sliceKey));
  const blocks = new Map<SliceId, BlockRecord[]>();
  const wanted: string[] = [];
  ids.forEach((id, i) => {
    const raw = raws[i];
    if (!raw) return;
    const recs = decodeBlockRecords(raw.subarray(SLICE_INFO_SIZE));
    blocks.set(id, recs);
    recs.forEach((b, bi) => {
      if (b.flags & BLOCK_INLINE) wanted.push(inlineKey(id, bi));
    });
  });
  const inline = new Map<string, Uint8Array>();
  const values = await tx.getMany(wanted);
  wanted.forEach((k, i) => {
    const v = values[i];
    if (v) inline.set(k, v);
  });
  return { records, blocks, inline };
}

/** The stored bytes of an inline block, or `undefined`. */
export function inlineBlock(
  tx: KvTxn,
  id: SliceId,
  index: number,
): Promise<Uint8Array | undefined> {
  return tx.get(inlineKey(id, index));
}

/** How the blocks of a committed slice are stored (empty if the slice is unknown). */
export async function sliceBlockRecords(tx: KvTxn, id: SliceId): Promise<BlockRecord[]> {
  const raw = await tx.get(sliceKey(id));
  return raw ? decodeBlockRecords(raw.subarray(SLICE_INFO_SIZE)) : [];
}

/** For each id, whether a committed slice has it. */
export async function slicesExist(tx: KvTxn, ids: readonly SliceId[]): Promise<boolean[]> {
  const raws = await tx.getMany(ids.map(sliceKey));
  return raws.map((r) => r !== undefined);
}

/** Every chunk of a file with its slice records. */
export async function listChunks(
  tx: KvTxn,
  ino: Ino,
): Promise<Array<{ index: number; records: SliceRecord[] }>> {
  return (await tx.scan(chunkPrefix(ino))).map(([k, v]) => ({
    index: chunkIndexOf(k),
    records: decodeRecords(v),
  }));
}
