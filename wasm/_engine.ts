/**
 * Loads `_build/engine.wasm` and owns the scratch memory of the shared codec instance.
 *
 * The ABI is numeric: exports take byte offsets into the instance's memory and lengths, and
 * return numbers. Nothing managed crosses the boundary and the AssemblyScript side never
 * allocates: the host lays out each call's buffers from `heapBase()` upward, growing the memory
 * when a call needs more, and copies the input in and the result out once each.
 *
 * @module
 */

/** The raw exports of `engine.wasm` (u32 results arrive as signed i32: use `>>> 0`). */
export interface EngineExports {
  /** The instance's linear memory. */
  readonly memory: WebAssembly.Memory;
  /** First byte after the static data, 16-byte aligned. */
  heapBase(): number;
  /** Worst-case LZ4 block size for `n` input bytes. */
  lz4Bound(n: number): number;
  /** Compresses `len` bytes at `src` into `dst` of capacity `cap` (+16 slack); 0 if too small. */
  lz4Compress(src: number, len: number, dst: number, cap: number): number;
  /** Decompresses into `dst` of capacity `cap`; bytes written, or negative if malformed. */
  lz4Decompress(src: number, len: number, dst: number, cap: number): number;
  /**
   * Encodes a block in 64 KiB segments (hash each, compress each with `compress`): writes the
   * table and the whole block's hash at `table`, the stored segments at `dst`; the stored length.
   */
  segEncode(src: number, len: number, dst: number, table: number, compress: number): number;
  /** Decodes and verifies a run of segments into `dst`; bytes written, or a negative reason. */
  segDecode(
    src: number,
    len: number,
    table: number,
    rawLen: number,
    first: number,
    last: number,
    dst: number,
  ): number;
  /** The segment of the last failed `segDecode`. */
  segErrorSegment(): number;
  /** The LZ4 reason code of the last failed `segDecode` (0: another cause). */
  segErrorCode(): number;
  /** XXH3-64 (seed 0) as a signed 64-bit BigInt. */
  xxh3(ptr: number, len: number): bigint;
  /** Starts a long XXH3 hash (inputs over 240 bytes). */
  xxh3LongReset(): void;
  /** Consumes full 1024-byte blocks, never the one holding the last byte. */
  xxh3LongBlocks(ptr: number, blocks: number): void;
  /** Finishes with `tail` (1..1024) bytes at `ptr`, the 64 bytes before `ptr` being input too. */
  xxh3LongFinish(ptr: number, tail: number, total: number): bigint;
  /** Starts a streamed BLAKE3 hash. */
  blake3Reset(): void;
  /** Consumes `count` full chunks; the last chunk must come in blake3Finish. */
  blake3Update(ptr: number, count: number): void;
  /** Consumes the rest of the input and writes the hash to `out`. */
  blake3Finish(ptr: number, len: number, out: number): void;
  /** Writes the 32-byte BLAKE3 hash of `len` bytes at `ptr` to `out`. */
  blake3Hash(ptr: number, len: number, out: number): void;
  /** Lays out a cache index; 0 on success, -1 if memory cannot grow. */
  cacheInit(entries: number, capacity: bigint, smallPercent: number): number;
  /** Record id of `key` counting an access, or 0. */
  cacheGet(key: bigint): number;
  /** Record id of `key`, or 0. */
  cachePeek(key: bigint): number;
  /** Inserts or updates, then evicts; the number evicted into the buffer, or -1 (no memory). */
  cacheInsert(key: bigint, location: number, size: number, tier: number): number;
  /** Evicts into the eviction buffer; the count written (call again while it is 256). */
  cacheEvict(): number;
  /** 1 if `key` was removed. */
  cacheRemove(key: bigint): number;
  /** Number of entries. */
  cacheCount(): number;
  /** Sum of entry sizes. */
  cacheBytes(): bigint;
  /** Address of record 0. */
  cacheRecBase(): number;
  /** One past the highest record id used. */
  cacheRecEnd(): number;
  /** Address of the eviction buffer. */
  cacheEvictBuf(): number;
}

const WASM_URL = new URL("./_build/engine.wasm", import.meta.url);

async function loadBytes(): Promise<Uint8Array<ArrayBuffer>> {
  try {
    if (WASM_URL.protocol === "file:") return await Deno.readFile(WASM_URL);
    return new Uint8Array(await (await fetch(WASM_URL)).arrayBuffer());
  } catch (cause) {
    throw new Error(`Cannot load the Wasm engine from "${WASM_URL.href}"`, { cause });
  }
}

/** The compiled engine module, shared by every instance. */
export const engineModule: WebAssembly.Module = new WebAssembly.Module(await loadBytes());

/** Creates a fresh engine instance with its own memory (the cache index uses one per index). */
export function instantiateEngine(): EngineExports {
  const instance = new WebAssembly.Instance(engineModule, {});
  return instance.exports as unknown as EngineExports;
}

const PAGE = 65536;

/** The codec instance and a bump layout of its scratch memory, reset at each call. */
export class Scratch {
  /** The instance's exports. */
  readonly ex: EngineExports;
  /** Start of the scratch area. */
  readonly base: number;
  #u8: Uint8Array;

  constructor(ex: EngineExports = instantiateEngine()) {
    this.ex = ex;
    this.base = ex.heapBase();
    this.#u8 = new Uint8Array(ex.memory.buffer);
  }

  /** Grows the memory so that `[0, end)` is addressable. */
  reserve(end: number): void {
    const have = this.ex.memory.buffer.byteLength;
    if (end > have) {
      try {
        this.ex.memory.grow(Math.ceil((end - have) / PAGE));
      } catch (cause) {
        throw new RangeError(`Cannot grow Wasm memory to ${end} bytes`, { cause });
      }
    }
  }

  /** A byte view of the whole memory, refreshed after growth. */
  get u8(): Uint8Array {
    if (this.#u8.buffer !== this.ex.memory.buffer) this.#u8 = new Uint8Array(this.ex.memory.buffer);
    return this.#u8;
  }

  /** Copies `data` to the start of the scratch area, leaving `extra` more bytes after it. */
  input(data: Uint8Array, extra: number): number {
    const at = this.base;
    this.reserve(align16(at + data.length) + extra);
    this.u8.set(data, at);
    return at;
  }
}

/**
 * Inputs above this size are hashed in pieces of this size, each copied into Wasm memory just
 * before it is hashed, so the copy stays in cache and no input-sized buffer is needed.
 */
export const STREAM_PIECE = 64 * 1024;

/** Rounds `n` up to a multiple of 16. */
export function align16(n: number): number {
  return Math.ceil(n / 16) * 16;
}

let shared: Scratch | undefined;

/** The shared codec instance (created on first use). */
export function codec(): Scratch {
  shared ??= new Scratch();
  return shared;
}
