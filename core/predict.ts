/**
 * Predictive prefetch: learn which files and blocks are read after a file is opened, and fetch
 * them in parallel the next time that file is opened.
 *
 * When a file is opened while nothing is being recorded, it becomes a trigger and a recording
 * starts: every read, in any file, adds the blocks it touches, in first-touch order, until reads
 * stop for `idleMs`. The pattern is saved in the metadata engine (so it survives remounts and is
 * shared by every mount of the volume). Every open of a file that has a pattern replays it, also
 * while another recording runs (so back-to-back starts and epochs replay; a file opened again
 * within `idleMs` of its last replay is not replayed twice): its blocks are fetched into the cache
 * with bounded parallelism, ahead of the reads that will follow — a container start or a training
 * epoch then reads from the cache instead of waiting on S3 one request at a time. A file found
 * without a pattern is not asked again until this mount records one for it.
 *
 * A replay fetches whole blocks, so a file read sparsely during the recording (random reads: a
 * few KiB here and there in each block it touched) is left out of the pattern: replaying it would
 * fetch many times what was read (a file read at random, then opened again, fetched every block
 * it had touched). A file is kept when the bytes read in its touched blocks are at least a quarter
 * of the blocks' extent as far as the reads reached in each (a small file read whole, or a block
 * read from its start, counts fully).
 *
 * @module
 */

import pLimit from "p-limit";
import type { BlockStore } from "./block_store.ts";
import type { PatternEntry } from "./meta/mod.ts";
import type { Ino } from "./types.ts";

/** Where patterns are kept: the two methods of `Meta` (`core/meta/`) a predictor calls. */
export interface PatternMeta {
  /** The pattern recorded after opening `ino`, if any. */
  getPattern(ino: Ino): Promise<PatternEntry[] | undefined>;
  /** Saves the pattern that follows an open of `ino`. */
  setPattern(ino: Ino, pattern: readonly PatternEntry[]): Promise<void>;
}

/** What a predictor needs of the block layer (`DataEngine` of `core/data.ts`). */
export interface PrefetchData {
  /** The volume's block size (a pattern counts blocks). */
  readonly blockSize: number;
  /** The block store, whose concurrency bounds a replay by default. */
  readonly store: Pick<BlockStore, "limits">;
  /** Fetches the blocks of `[off, off+len)` of `ino` into the cache; returns their number. */
  warm(ino: Ino, off: number, len: number): Promise<number>;
}

/** Options of the {@linkcode Predictor}. */
export interface PredictorOptions {
  /** A recording ends after this long without reads (ms, default 2000). */
  idleMs?: number;
  /** The most blocks a pattern keeps (default 65,536). */
  maxBlocks?: number;
  /** Parallel fetches while replaying (default: the store's concurrency). */
  concurrency?: number;
}

interface Recording {
  trigger: Ino;
  /** Per file: the blocks touched, each with the furthest offset read in it (from its start). */
  entries: Map<Ino, Map<number, number>>;
  /** Per file: the bytes read (re-reads count again). */
  bytes: Map<Ino, number>;
  blocks: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** When the last read was recorded (`performance.now()`). */
  lastRead: number;
}

/** A file whose reads cover less than this share of its touched blocks' extent is left out. */
const MIN_DENSITY = 0.25;

/** Counters for `slayerfs status`. */
export interface PredictorStats {
  /** Patterns saved. */
  recorded: number;
  /** Patterns replayed. */
  replays: number;
  /** Blocks fetched by replays. */
  prefetchedBlocks: number;
}

/** Records access patterns and replays them. */
export class Predictor {
  readonly #meta: PatternMeta;
  readonly #data: PrefetchData;
  readonly #idleMs: number;
  readonly #maxBlocks: number;
  readonly #concurrency: number;
  #rec: Recording | undefined;
  #replaying = new Set<Ino>();
  /** When each trigger was last replayed (one container start opens its binary many times). */
  #replayedAt = new Map<Ino, number>();
  /** Files found without a pattern (forgotten when this predictor saves one). */
  #noPattern = new Set<Ino>();
  #closed = false;
  #saves = new Set<Promise<void>>();
  /** What it has done so far. */
  readonly stats: PredictorStats = { recorded: 0, replays: 0, prefetchedBlocks: 0 };

  /** Creates a predictor over a volume's metadata and block layer. */
  constructor(meta: PatternMeta, data: PrefetchData, options: PredictorOptions = {}) {
    this.#meta = meta;
    this.#data = data;
    this.#idleMs = options.idleMs ?? 2000;
    this.#maxBlocks = options.maxBlocks ?? 65536;
    this.#concurrency = options.concurrency ?? data.store.limits.concurrency;
  }

  /**
   * A file was opened for reading: it starts a recording unless one runs, and its own pattern, if
   * it has one, is replayed whether or not a recording runs (back-to-back container starts, a
   * second image started during the first's recording, training epochs).
   */
  onOpen(ino: Ino): void {
    if (this.#closed) return;
    if (!this.#rec) {
      this.#rec = {
        trigger: ino,
        entries: new Map(),
        bytes: new Map(),
        blocks: 0,
        timer: undefined,
        lastRead: 0,
      };
      this.#arm();
    }
    if (this.#noPattern.has(ino)) return;
    const last = this.#replayedAt.get(ino);
    if (last !== undefined && Date.now() - last < this.#idleMs) return; // one start, many execs
    this.#replay(ino).catch(() => {});
  }

  /**
   * `ino` was just created here: it has no pattern, so its opens need not ask the metadata engine
   * for one (one read transaction less per first open of a new file), until this mount records one.
   */
  created(ino: Ino): void {
    if (this.#closed) return;
    this.#rememberNoPattern(ino);
  }

  #rememberNoPattern(ino: Ino): void {
    if (this.#noPattern.size > 100_000) this.#noPattern.clear();
    this.#noPattern.add(ino);
  }

  /** Bytes `[off, off+len)` of `ino` were read. */
  onRead(ino: Ino, off: number, len: number): void {
    const rec = this.#rec;
    if (!rec || len <= 0) return;
    const bs = this.#data.blockSize;
    let blocks = rec.entries.get(ino);
    if (!blocks) rec.entries.set(ino, blocks = new Map());
    rec.bytes.set(ino, (rec.bytes.get(ino) ?? 0) + len);
    for (let b = Math.floor(off / bs); b * bs < off + len; b++) {
      const reach = Math.min(bs, off + len - b * bs);
      const had = blocks.get(b);
      if (had === undefined) {
        if (rec.blocks >= this.#maxBlocks) break;
        rec.blocks++;
      }
      if (had === undefined || reach > had) blocks.set(b, reach);
    }
    this.#arm();
  }

  /**
   * The recording ends `idleMs` after its last read: one timer, set again when it fires early
   * (a timer cleared and set on every read costs a few percent of a random 4 KiB read).
   */
  #arm(): void {
    const rec = this.#rec!;
    rec.lastRead = performance.now();
    if (rec.timer !== undefined) return;
    const wait = (ms: number) => {
      const timer = setTimeout(() => {
        if (this.#rec !== rec) return;
        const left = rec.lastRead + this.#idleMs - performance.now();
        if (left > 0) return wait(left);
        rec.timer = undefined;
        this.#finish();
      }, ms);
      Deno.unrefTimer(timer);
      rec.timer = timer;
    };
    wait(this.#idleMs);
  }

  #finish(): void {
    const rec = this.#rec;
    this.#rec = undefined;
    if (!rec || rec.blocks < 2) return;
    const pattern: PatternEntry[] = [];
    for (const [ino, blocks] of rec.entries) {
      let extent = 0;
      for (const reach of blocks.values()) extent += reach;
      if ((rec.bytes.get(ino) ?? 0) < MIN_DENSITY * extent) continue; // read sparsely: random
      pattern.push({ ino, blocks: [...blocks.keys()] });
    }
    // Saved even when every file was left out: it replaces an older pattern of the trigger.
    this.#noPattern.delete(rec.trigger);
    const p = this.#meta.setPattern(rec.trigger, pattern).then(() => {
      this.stats.recorded++;
    }).catch(() => {}).finally(() => this.#saves.delete(p));
    this.#saves.add(p);
  }

  async #replay(trigger: Ino): Promise<void> {
    if (this.#replaying.has(trigger)) return;
    this.#replaying.add(trigger);
    this.#replayedAt.set(trigger, Date.now());
    const pattern = await this.#meta.getPattern(trigger).catch(() => undefined);
    if (!pattern?.length) {
      this.#replaying.delete(trigger);
      this.#rememberNoPattern(trigger);
      return;
    }
    this.stats.replays++;
    try {
      const bs = this.#data.blockSize;
      const limit = pLimit(this.#concurrency);
      const fetch = async (ino: Ino, b: number) => {
        if (this.#closed) return;
        try {
          const n = await this.#data.warm(ino, b * bs, bs);
          this.stats.prefetchedBlocks += n;
        } catch {
          // A file removed since: skip it.
        }
      };
      const jobs: Promise<void>[] = [];
      for (const e of pattern) for (const b of e.blocks) jobs.push(limit(fetch, e.ino, b));
      await Promise.all(jobs);
    } finally {
      this.#replaying.delete(trigger);
    }
  }

  /** Ends the current recording (saving it) and stops replays. */
  async close(): Promise<void> {
    if (this.#rec?.timer !== undefined) clearTimeout(this.#rec.timer);
    this.#finish();
    this.#closed = true;
    await Promise.all([...this.#saves]);
  }
}
