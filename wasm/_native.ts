/**
 * Deno FFI bindings to Debian's native liblz4 and libxxhash, the references that the tests and
 * `bench/wasm_bench.ts` compare the Wasm engine against. Not part of the public API.
 *
 * Library paths can be overridden with `SLAYERFS_LIBLZ4` and `SLAYERFS_LIBXXHASH`.
 *
 * @module
 */

const LZ4_SYMBOLS = {
  // int LZ4_compress_default(const char* src, char* dst, int srcSize, int dstCapacity)
  LZ4_compress_default: { parameters: ["buffer", "buffer", "i32", "i32"], result: "i32" },
  // int LZ4_decompress_safe(const char* src, char* dst, int compressedSize, int dstCapacity)
  LZ4_decompress_safe: { parameters: ["buffer", "buffer", "i32", "i32"], result: "i32" },
  // int LZ4_compressBound(int inputSize)
  LZ4_compressBound: { parameters: ["i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

const XXH_SYMBOLS = {
  // XXH64_hash_t XXH3_64bits(const void* data, size_t len)
  XXH3_64bits: { parameters: ["buffer", "usize"], result: "u64" },
} as const satisfies Deno.ForeignLibraryInterface;

function open<S extends Deno.ForeignLibraryInterface>(
  envVar: string,
  fallback: string,
  symbols: S,
): Deno.DynamicLibrary<S> {
  const path = Deno.env.get(envVar) ?? fallback;
  try {
    return Deno.dlopen(path, symbols);
  } catch (cause) {
    throw new Error(`Cannot load "${path}" (set ${envVar} to override)`, { cause });
  }
}

/** Native liblz4 through FFI. */
export class NativeLz4 {
  readonly #lib = open("SLAYERFS_LIBLZ4", "liblz4.so.1", LZ4_SYMBOLS);

  /** `LZ4_compress_default` into a fresh buffer. */
  compress(src: Uint8Array): Uint8Array {
    const dst = new Uint8Array(this.#lib.symbols.LZ4_compressBound(src.length));
    const n = this.#lib.symbols.LZ4_compress_default(src, dst, src.length, dst.length);
    if (n <= 0) throw new Error(`LZ4_compress_default failed for ${src.length} bytes`);
    return dst.subarray(0, n);
  }

  /** `LZ4_compress_default` into `dst`; the compressed size. */
  compressInto(src: Uint8Array, dst: Uint8Array): number {
    return this.#lib.symbols.LZ4_compress_default(src, dst, src.length, dst.length);
  }

  /** `LZ4_decompress_safe` into `dst`; the decoded size, or negative on error. */
  decompressInto(src: Uint8Array, dst: Uint8Array): number {
    return this.#lib.symbols.LZ4_decompress_safe(src, dst, src.length, dst.length);
  }

  /** `LZ4_compressBound`. */
  bound(n: number): number {
    return this.#lib.symbols.LZ4_compressBound(n);
  }

  /** Unloads the library. */
  close(): void {
    this.#lib.close();
  }
}

/** Native libxxhash through FFI. */
export class NativeXxhash {
  readonly #lib = open("SLAYERFS_LIBXXHASH", "libxxhash.so.0", XXH_SYMBOLS);

  /** `XXH3_64bits` as an unsigned BigInt. */
  xxh3_64(data: Uint8Array): bigint {
    return BigInt.asUintN(64, BigInt(this.#lib.symbols.XXH3_64bits(data, BigInt(data.length))));
  }

  /** Unloads the library. */
  close(): void {
    this.#lib.close();
  }
}

/**
 * BLAKE3 hashes by the `b3sum` CLI, one per input, hashing all of them in one process run.
 * Inputs are written to a temporary directory first.
 */
export async function b3sumMany(
  inputs: readonly Uint8Array[],
  threads?: number,
): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-b3-" });
  try {
    const files = await Promise.all(inputs.map(async (data, i) => {
      const file = `${dir}/${i}`;
      await Deno.writeFile(file, data);
      return file;
    }));
    const args = threads === undefined ? [] : ["--num-threads", String(threads)];
    const out = await new Deno.Command("b3sum", { args: [...args, "--no-names", ...files] })
      .output();
    if (out.code !== 0) throw new Error(`b3sum failed: ${new TextDecoder().decode(out.stderr)}`);
    return new TextDecoder().decode(out.stdout).trim().split("\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Lowercase hex of `bytes`. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
