/**
 * AES-256-GCM through OpenSSL's libcrypto (Deno FFI), the fast engine of `_crypto.ts`: the same
 * cipher and object layout as WebCrypto's (each can open what the other sealed), but with the
 * CPU's AES instructions. On the machines this was built on, Deno's WebCrypto AES-GCM ran at
 * 40-200 MB/s (it does not use them), libcrypto at 1-4 GB/s.
 *
 * Large inputs (64 KiB and more) are processed by a `nonblocking` FFI call, on a thread of Deno's
 * blocking pool, so the FUSE thread stays free; their buffers are views of large ArrayBuffers
 * (never on V8's heap, so they cannot move while C uses them) that no one touches meanwhile.
 * Small inputs are processed synchronously (a few microseconds). Each call has its own
 * `EVP_CIPHER_CTX`.
 *
 * @module
 */

const SYMBOLS = {
  /** const EVP_CIPHER *EVP_aes_256_gcm(void) */
  EVP_aes_256_gcm: { parameters: [], result: "pointer" },
  /** EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void) */
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  /** void EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *ctx) */
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  /** int EVP_EncryptInit_ex(ctx, const EVP_CIPHER *type, ENGINE *impl, const u8 *key, const u8 *iv) */
  EVP_EncryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  /** int EVP_DecryptInit_ex(ctx, const EVP_CIPHER *type, ENGINE *impl, const u8 *key, const u8 *iv) */
  EVP_DecryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  /** int EVP_EncryptUpdate(ctx, u8 *out, int *outl, const u8 *in, int inl) */
  EVP_EncryptUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  /** EVP_EncryptUpdate on a thread of the blocking pool. */
  EVP_EncryptUpdate_nb: {
    name: "EVP_EncryptUpdate",
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  /** int EVP_DecryptUpdate(ctx, u8 *out, int *outl, const u8 *in, int inl) */
  EVP_DecryptUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  /** EVP_DecryptUpdate on a thread of the blocking pool. */
  EVP_DecryptUpdate_nb: {
    name: "EVP_DecryptUpdate",
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
    nonblocking: true,
  },
  /** int EVP_EncryptFinal_ex(ctx, u8 *out, int *outl) */
  EVP_EncryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  /** int EVP_DecryptFinal_ex(ctx, u8 *out, int *outl): <= 0 when the tag does not match */
  EVP_DecryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  /** int EVP_CIPHER_CTX_ctrl(ctx, int type, int arg, void *ptr) */
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

const EVP_CTRL_GCM_GET_TAG = 0x10;
const EVP_CTRL_GCM_SET_TAG = 0x11;
/** Inputs of at least this many bytes go to a nonblocking call. */
const OFF_THREAD = 64 * 1024;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Lib | null | undefined;

/**
 * libcrypto's symbols, or `null` when it cannot be loaded (no library, no FFI permission).
 * `SLAYERFS_LIBCRYPTO` names the library file (default `libcrypto.so.3`).
 */
function libcrypto(): Lib | null {
  if (lib !== undefined) return lib;
  try {
    const path = Deno.env.get("SLAYERFS_LIBCRYPTO") ?? "libcrypto.so.3";
    lib = Deno.dlopen(path, SYMBOLS).symbols;
  } catch {
    lib = null;
  }
  return lib;
}

/** Thrown by {@linkcode OpenSslGcm.open} when the tag does not match. */
export class AuthError extends Error {
  /** Creates the error. */
  constructor() {
    super("AES-GCM authentication failed");
    this.name = "AuthError";
  }
}

/** AES-256-GCM with one key, through libcrypto. */
export class OpenSslGcm {
  readonly #lib: Lib;
  readonly #key: Uint8Array;
  readonly #cipher: Deno.PointerValue;

  private constructor(l: Lib, key: Uint8Array) {
    this.#lib = l;
    this.#key = key.slice();
    this.#cipher = l.EVP_aes_256_gcm();
  }

  /** The engine for the 32-byte `key`, or `undefined` if libcrypto cannot be loaded. */
  static create(key: Uint8Array): OpenSslGcm | undefined {
    const l = libcrypto();
    return l ? new OpenSslGcm(l, key) : undefined;
  }

  #ctx(encrypt: boolean, iv: Uint8Array, aad: Uint8Array): Deno.PointerValue {
    const l = this.#lib;
    const ctx = l.EVP_CIPHER_CTX_new();
    if (ctx === null) throw new Error("EVP_CIPHER_CTX_new failed");
    const outl = new Int32Array(1);
    const ok = encrypt
      ? l.EVP_EncryptInit_ex(ctx, this.#cipher, null, this.#key, iv) === 1 &&
        l.EVP_EncryptUpdate(ctx, null, outl, aad, aad.byteLength) === 1
      : l.EVP_DecryptInit_ex(ctx, this.#cipher, null, this.#key, iv) === 1 &&
        l.EVP_DecryptUpdate(ctx, null, outl, aad, aad.byteLength) === 1;
    if (!ok) {
      l.EVP_CIPHER_CTX_free(ctx);
      throw new Error("Setting up AES-256-GCM in libcrypto failed");
    }
    return ctx;
  }

  /** Writes the ciphertext of `data` and its 16-byte tag to `out` (`data.byteLength + 16`). */
  async seal(iv: Uint8Array, aad: Uint8Array, data: Uint8Array, out: Uint8Array): Promise<void> {
    const l = this.#lib;
    const ctx = this.#ctx(true, iv, aad);
    try {
      // Off the heap (an explicit ArrayBuffer): the nonblocking call writes it on another thread.
      const outl = new Int32Array(new ArrayBuffer(64));
      const n = data.byteLength;
      const ok = n === 0 ||
        (n >= OFF_THREAD
            ? await l.EVP_EncryptUpdate_nb(ctx, out, outl, data, n)
            : l.EVP_EncryptUpdate(ctx, out, outl, data, n)) === 1;
      const tag = out.subarray(n, n + 16);
      if (
        !ok || outl[0] !== n || l.EVP_EncryptFinal_ex(ctx, tag, outl) !== 1 ||
        l.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) !== 1
      ) {
        throw new Error("AES-256-GCM encryption in libcrypto failed");
      }
    } finally {
      l.EVP_CIPHER_CTX_free(ctx);
    }
  }

  /** The plaintext of `sealed` (ciphertext and 16-byte tag); {@linkcode AuthError} on a bad tag. */
  async open(iv: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array> {
    const l = this.#lib;
    const n = sealed.byteLength - 16;
    if (n < 0) throw new AuthError();
    const ctx = this.#ctx(false, iv, aad);
    try {
      const out = new Uint8Array(Math.max(n, 1));
      const outl = new Int32Array(new ArrayBuffer(64));
      const ct = sealed.subarray(0, n);
      const ok = n === 0 ||
        (n >= OFF_THREAD
            ? await l.EVP_DecryptUpdate_nb(ctx, out, outl, ct, n)
            : l.EVP_DecryptUpdate(ctx, out, outl, ct, n)) === 1;
      if (!ok || l.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, sealed.slice(n)) !== 1) {
        throw new Error("AES-256-GCM decryption in libcrypto failed");
      }
      if (l.EVP_DecryptFinal_ex(ctx, out.subarray(n), outl) <= 0) throw new AuthError();
      return out.subarray(0, n);
    } finally {
      l.EVP_CIPHER_CTX_free(ctx);
    }
  }
}
