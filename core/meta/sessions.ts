/**
 * Sessions and the opens they hold, as functions over a {@linkcode KvTxn} (the keys `S`, `U` and
 * `Nsession` of `keys.ts`). A session is one mount of the volume; `core/session.ts` registers it,
 * beats its heartbeat and cleans up the sessions of dead mounts.
 *
 * An inode open in a session carries a `U<ino><sid>` key from the first open there until after
 * the last close there. An unlink that takes the last link of an inode keeps the inode
 * (`O<ino>`, "sustained") while any such key exists ({@linkcode openedAnywhere}); whoever removes
 * the last one deletes the inode ({@linkcode forgetOpens}): the last close on any mount, or the
 * cleanup of a dead session.
 *
 * @module
 */

import type { KvTxn } from "../kv.ts";
import type { Ino } from "../types.ts";
import { decodeAttr, decodeJson, decodeNum, encodeJson, encodeNum } from "./_codec.ts";
import {
  attrKey,
  keySessionCounter,
  openInoPrefix,
  openKey,
  openOf,
  openPrefix,
  sessionIdOf,
  sessionKey,
  sessionPrefix,
} from "./keys.ts";
import { dropInode } from "./reclaim.ts";
import type { FreedSlice, Freeing } from "./slices.ts";

/** What a mount says of itself in its session record. */
export interface SessionInfo {
  /** The host name. */
  host: string;
  /** The daemon's process id. */
  pid: number;
  /** The mountpoint (or a label for a mount without one, such as an embedding program). */
  mountpoint: string;
  /** The SlayerFS version. */
  version: string;
  /** When the session started (ms since the epoch). */
  started: number;
  /**
   * The host's boot id and the daemon's pid namespace, so that a mount on the same host and in the
   * same namespace can tell that the process is gone without waiting for the timeout.
   */
  boot?: string;
}

/** A session record as stored. */
export interface SessionRecord extends SessionInfo {
  /** The session id. */
  id: number;
  /** The last heartbeat (ms since the epoch, by the session's own clock). */
  heartbeat: number;
  /** Set when another mount found it stale and began to clean it up: it is dead for good. */
  expired?: boolean;
}

const EMPTY = new Uint8Array(1);

/** Registers a new session; returns its id. */
export async function registerSession(
  tx: KvTxn,
  info: SessionInfo,
  heartbeat: number,
): Promise<number> {
  const sid = decodeNum(await tx.get(keySessionCounter)) + 1;
  tx.set(keySessionCounter, encodeNum(sid));
  const rec: SessionRecord = { ...info, id: sid, heartbeat };
  tx.set(sessionKey(sid), encodeJson(rec));
  return sid;
}

/**
 * Takes over session `sid` for a new process (`info`): false (and writes nothing) if it is gone
 * or expired.
 */
export async function resumeSession(
  tx: KvTxn,
  sid: number,
  info: SessionInfo,
  heartbeat: number,
): Promise<boolean> {
  const rec = await getSession(tx, sid);
  if (!rec || rec.expired) return false;
  tx.set(sessionKey(sid), encodeJson({ ...rec, ...info, id: sid, heartbeat }));
  return true;
}

/** Session `sid`, if it is registered. */
export async function getSession(tx: KvTxn, sid: number): Promise<SessionRecord | undefined> {
  const raw = await tx.get(sessionKey(sid));
  return raw ? decodeJson<SessionRecord>(raw) : undefined;
}

/**
 * Beats session `sid`'s heartbeat; returns false (and writes nothing) if the session is gone or
 * expired: the mount was taken for dead.
 */
export async function beat(tx: KvTxn, sid: number, heartbeat: number): Promise<boolean> {
  const rec = await getSession(tx, sid);
  if (!rec || rec.expired) return false;
  tx.set(sessionKey(sid), encodeJson({ ...rec, heartbeat }));
  return true;
}

/** Every session record, by id. */
export async function listSessions(tx: KvTxn): Promise<SessionRecord[]> {
  const pairs = await tx.scan(sessionPrefix);
  return pairs.map(([k, v]) => ({ ...decodeJson<SessionRecord>(v), id: sessionIdOf(k) }));
}

/**
 * Marks session `sid` expired if its heartbeat is older than `deadline` (or `force`); returns
 * whether it is expired now. An expired session never beats again: its mount registers anew.
 */
export async function expireSession(
  tx: KvTxn,
  sid: number,
  deadline: number,
  force = false,
): Promise<boolean> {
  const rec = await getSession(tx, sid);
  if (!rec) return false;
  if (rec.expired) return true;
  if (!force && rec.heartbeat >= deadline) return false;
  tx.set(sessionKey(sid), encodeJson({ ...rec, expired: true }));
  return true;
}

/** Deletes session `sid`'s record. */
export function deleteSession(tx: KvTxn, sid: number): void {
  tx.delete(sessionKey(sid));
}

/** Records that `ino` is open in session `sid`. */
export function recordOpen(tx: KvTxn, ino: Ino, sid: number): void {
  tx.set(openKey(ino, sid), EMPTY);
}

/** Whether any session has `ino` open (this transaction's own deletes count). */
export async function openedAnywhere(tx: KvTxn, ino: Ino): Promise<boolean> {
  return (await tx.scan(openInoPrefix(ino), { limit: 1, keysOnly: true })).length > 0;
}

/**
 * The inodes session `sid` has open, a page at a time: at most `limit` keys looked at after
 * `startAfter`; `next` is where the next page starts (undefined at the end).
 */
export async function opensOf(
  tx: KvTxn,
  sid: number,
  startAfter: string | undefined,
  limit: number,
): Promise<{ inos: Ino[]; next: string | undefined }> {
  const pairs = await tx.scan(openPrefix, {
    keysOnly: true,
    limit,
    ...(startAfter !== undefined ? { startAfter } : {}),
  });
  const inos = pairs.map(([k]) => openOf(k)).filter((o) => o.sid === sid).map((o) => o.ino);
  return { inos, next: pairs.length < limit ? undefined : pairs[pairs.length - 1]![0] };
}

/**
 * Forgets that session `sid` has `inos` open (after their last close there, or when the session
 * died). An inode whose last link went and that no session has open any more is deleted; its
 * freed slices are returned.
 */
export async function forgetOpens(tx: KvTxn, inos: readonly Ino[], sid: number): Promise<Freeing> {
  const freed: FreedSlice[] = [];
  for (const ino of inos) tx.delete(openKey(ino, sid));
  const raws = await tx.getMany(inos.map(attrKey));
  for (let i = 0; i < inos.length; i++) {
    const raw = raws[i];
    if (!raw) continue;
    const a = decodeAttr(inos[i]!, raw);
    if (a.nlink > 0 || await openedAnywhere(tx, a.ino)) continue;
    await dropInode(tx, a, freed);
  }
  return { freed };
}
