/**
 * The cost of encryption at rest per 4 MiB block: the block codec's encode (LZ4 where it helps,
 * XXH3) and decode, without and with sealing (AES-256-GCM, `core/_crypto.ts`) by each engine
 * (libcrypto through FFI, and WebCrypto), for incompressible and text-like blocks. Each group's
 * baseline is the codec alone.
 *
 * Run: `deno bench -A bench/encrypt_bench.ts`. The numbers of a run on this machine are in
 * `bench/README.md` ("Encryption at rest").
 *
 * @module
 */

import { BlockCipher } from "../core/_crypto.ts";
import { decodeBlock, encodeBlock } from "../core/block_codec.ts";

const SIZE = 4 << 20;
const KEY_NAME = "chunks/0/0/1_0_4194304";
const KEY = crypto.getRandomValues(new Uint8Array(32));
const ciphers = {
  openssl: await BlockCipher.create(KEY, "bench", "openssl"),
  webcrypto: await BlockCipher.create(KEY, "bench", "webcrypto"),
};
if (ciphers.openssl.engine !== "openssl") throw new Error("libcrypto.so.3 did not load");

function random(): Uint8Array {
  const out = new Uint8Array(SIZE);
  for (let o = 0; o < SIZE; o += 65536) crypto.getRandomValues(out.subarray(o, o + 65536));
  return out;
}

function textLike(): Uint8Array {
  const words = ["block", "slice", "chunk", "inode", "mount", "cache", "store", "fuse", "\n"];
  const out = new Uint8Array(SIZE);
  let x = 12345;
  for (let o = 0; o < SIZE;) {
    x = (x * 1103515245 + 12345) >>> 0;
    const w = new TextEncoder().encode(words[x % words.length]! + " ");
    out.set(w.subarray(0, SIZE - o), o);
    o += w.byteLength;
  }
  return out;
}

for (const [kind, raw] of [["random", random()], ["text", textLike()]] as const) {
  const enc = encodeBlock(raw, true, false);
  const sealed = await ciphers.openssl.seal(enc.data, KEY_NAME);

  Deno.bench({
    name: `encode 4 MiB ${kind}`,
    group: `encode ${kind}`,
    baseline: true,
    n: 20,
    fn() {
      encodeBlock(raw, true, false);
    },
  });
  for (const [engine, cipher] of Object.entries(ciphers)) {
    Deno.bench({
      name: `encode + seal (${engine}) 4 MiB ${kind}`,
      group: `encode ${kind}`,
      n: 20,
      async fn() {
        await cipher.seal(encodeBlock(raw, true, false).data, KEY_NAME);
      },
    });
  }
  Deno.bench({
    name: `decode 4 MiB ${kind}`,
    group: `decode ${kind}`,
    baseline: true,
    n: 20,
    fn() {
      decodeBlock(enc.data, enc.record, SIZE, KEY_NAME);
    },
  });
  for (const [engine, cipher] of Object.entries(ciphers)) {
    Deno.bench({
      name: `open (${engine}) + decode 4 MiB ${kind}`,
      group: `decode ${kind}`,
      n: 20,
      async fn() {
        decodeBlock(await cipher.open(sealed, KEY_NAME), enc.record, SIZE, KEY_NAME);
      },
    });
  }
}
