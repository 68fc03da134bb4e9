import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  BlockCipher,
  EncryptedBlockStore,
  EncryptionKeyError,
  encryptionRecord,
  parseKey,
  readKeyFile,
  SEALED_OVERHEAD,
  volumeCipher,
} from "./_crypto.ts";
import { decodeBlock, encodeBlock, toHex } from "./block_codec.ts";
import { Errno, FsError } from "./errno.ts";
import { MemoryBlockStore, MemoryKvEngine } from "../backends/mod.ts";
import { formatVolume, Volume } from "./volume.ts";

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
const OTHER = Uint8Array.from({ length: 32 }, (_, i) => 255 - i);
const UUID = "0b3c1f4e-1111-4222-8333-444455556666";

/** Bytes that LZ4 cannot shrink, but known (a xorshift stream). */
function noise(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed | 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function rejectsEio(p: Promise<unknown>, pattern: RegExp, what: string): Promise<void> {
  return assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof FsError, `${what}: an FsError, got ${err}`);
    assert.equal(err.errno, Errno.EIO, what);
    assert.match(err.message, pattern, what);
    return true;
  });
}

Deno.test("parseKey() takes 32 raw bytes, 64 hex digits or base64, and explains anything else", () => {
  assert.deepEqual(parseKey(KEY, "k"), KEY);
  const hex = new TextEncoder().encode(toHex(KEY) + "\n");
  assert.deepEqual(parseKey(hex, "k"), KEY);
  const b64 = new TextEncoder().encode(` ${Buffer.from(KEY).toString("base64")}\r\n`);
  assert.deepEqual(parseKey(b64, "k"), KEY);
  const url = new TextEncoder().encode(Buffer.from(KEY).toString("base64url"));
  assert.deepEqual(parseKey(url, "k"), KEY);
  for (const bad of [new Uint8Array(16), new Uint8Array(33), new TextEncoder().encode("secret")]) {
    assert.throws(
      () => parseKey(bad, 'Key file "f"'),
      (e: Error) =>
        e instanceof EncryptionKeyError &&
        e.message.startsWith(`Key file "f" holds ${bad.byteLength} bytes that are not a key`) &&
        e.message.includes("openssl rand -out FILE 32"),
    );
  }
});

Deno.test("readKeyFile() reads a key file and names a missing one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-key-" });
  try {
    await Deno.writeFile(`${dir}/k`, KEY);
    assert.deepEqual(await readKeyFile(`${dir}/k`), KEY);
    await assert.rejects(
      readKeyFile(`${dir}/none`),
      new RegExp(`^EncryptionKeyError: Cannot read key file "${dir}/none": no such file$`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sealed encoded block opens and decodes to the raw block; sealing is random", async () => {
  const cipher = await BlockCipher.create(KEY, UUID);
  for (const raw of [new TextEncoder().encode("secret ".repeat(100_000)), noise(1 << 20, 3)]) {
    const enc = encodeBlock(raw, true, false);
    const key = `chunks/0/0/5_0_${raw.byteLength}`;
    const sealed = await cipher.seal(enc.data, key);
    assert.equal(sealed.byteLength, enc.data.byteLength + SEALED_OVERHEAD);
    assert.equal(Buffer.from(sealed).indexOf(Buffer.from(enc.data.subarray(100, 164))), -1);
    const again = await cipher.seal(enc.data, key);
    assert.notDeepEqual(again.subarray(1, 13), sealed.subarray(1, 13), "a new nonce each time");
    const opened = await cipher.open(sealed, key);
    assert.deepEqual(decodeBlock(opened, enc.record, raw.byteLength, key), raw);
  }
});

Deno.test("libcrypto and WebCrypto seal the same way: each opens what the other sealed", async () => {
  const native = await BlockCipher.create(KEY, UUID, "openssl");
  const web = await BlockCipher.create(KEY, UUID, "webcrypto");
  assert.equal(native.engine, "openssl", "libcrypto.so.3 loads on this machine");
  assert.equal(web.engine, "webcrypto");
  // Empty, small (synchronous FFI calls) and large (nonblocking ones, several at once).
  for (const size of [0, 1, 5000, 65535, 65536, 1 << 20, 4 << 20]) {
    const data = noise(size, size + 1);
    const key = `chunks/0/0/9_0_${size}`;
    const [a, b] = await Promise.all([native.seal(data, key), web.seal(data, key)]);
    assert.deepEqual(await web.open(a, key), data, `webcrypto opens libcrypto's, ${size} bytes`);
    assert.deepEqual(await native.open(b, key), data, `libcrypto opens webcrypto's, ${size} bytes`);
  }
  const many = await Promise.all(
    Array.from({ length: 8 }, (_, i) => native.seal(noise(256 << 10, i + 1), `k${i}`)),
  );
  const opened = await Promise.all(many.map((s, i) => native.open(s, `k${i}`)));
  opened.forEach((o, i) => assert.deepEqual(o, noise(256 << 10, i + 1), `concurrent ${i}`));
});

for (const engine of ["openssl", "webcrypto"] as const) {
  Deno.test(`${engine}: a changed byte anywhere, another object key, volume or key is EIO naming the block`, async () => {
    await tamperIsEio(engine, 5000);
    await tamperIsEio(engine, 300_000); // nonblocking FFI calls
  });
}

async function tamperIsEio(engine: "openssl" | "webcrypto", size: number): Promise<void> {
  const cipher = await BlockCipher.create(KEY, UUID, engine);
  const data = noise(size, 9);
  const key = `chunks/0/0/7_1_${size}`;
  const sealed = await cipher.seal(data, key);
  for (const at of [0, 1, 12, 13, 2500, sealed.byteLength - 1]) {
    const bad = sealed.slice();
    bad[at]! ^= 0x01;
    await rejectsEio(cipher.open(bad, key), new RegExp(`^Block "${key}" `), `byte ${at}`);
  }
  await rejectsEio(
    cipher.open(sealed, `chunks/0/0/7_2_${size}`),
    new RegExp(`^Block "chunks/0/0/7_2_${size}" fails authentication`),
    "another object key (a swapped or replayed block)",
  );
  const otherVolume = await BlockCipher.create(KEY, crypto.randomUUID(), engine);
  await rejectsEio(otherVolume.open(sealed, key), /fails authentication/, "another volume");
  const otherKey = await BlockCipher.create(OTHER, UUID, engine);
  await rejectsEio(otherKey.open(sealed, key), /fails authentication/, "another key");
  await rejectsEio(cipher.open(sealed.subarray(0, 20), key), /is not a sealed block/, "short");
  assert.deepEqual(await cipher.open(sealed, key), data, "the untouched object still opens");
}

Deno.test("the key check value refuses a wrong key and a key for a volume without encryption", async () => {
  const rec = await encryptionRecord(KEY, UUID);
  assert.equal(rec.cipher, "aes-256-gcm");
  assert.match(rec.keyCheck, /^[0-9a-f]{64}$/);
  assert.deepEqual(await encryptionRecord(KEY, UUID), rec, "deterministic");
  assert.notEqual((await encryptionRecord(KEY, crypto.randomUUID())).keyCheck, rec.keyCheck);
  const format = { name: "v", uuid: UUID, encryption: rec };
  assert.ok(await volumeCipher(format, KEY));
  await assert.rejects(volumeCipher(format, OTHER), /^EncryptionKeyError: Wrong key: it is not/);
  await assert.rejects(volumeCipher(format, undefined), /Volume "v" is encrypted: it needs/);
  await assert.rejects(volumeCipher({ name: "p", uuid: UUID }, KEY), /"p" is not encrypted/);
  assert.equal(await volumeCipher({ name: "p", uuid: UUID }, undefined), undefined);
});

Deno.test("EncryptedBlockStore keeps only sealed objects below it and reports unsealed sizes", async () => {
  const inner = new MemoryBlockStore();
  const store = new EncryptedBlockStore(inner, await BlockCipher.create(KEY, UUID));
  const data = noise(100_000, 5);
  await store.put("chunks/a", data);
  const stored = await inner.get("chunks/a");
  assert.equal(stored.byteLength, data.byteLength + SEALED_OVERHEAD);
  assert.equal(Buffer.from(stored).indexOf(Buffer.from(data.subarray(5000, 5032))), -1);
  assert.deepEqual(await store.get("chunks/a"), data);
  assert.deepEqual(await store.get("chunks/a", 10, 20), data.subarray(10, 30));
  assert.equal((await store.head("chunks/a"))?.size, data.byteLength);
  assert.deepEqual((await store.list("chunks/")).objects.map((o) => o.size), [data.byteLength]);
  // The same bytes under another key (a swap) do not open.
  await inner.put("chunks/b", stored);
  await rejectsEio(store.get("chunks/b"), /"chunks\/b" fails authentication/, "moved object");
  await store.delete(["chunks/a", "chunks/b"]);
  assert.equal(await inner.head("chunks/a"), undefined);
  await store.close();
});

Deno.test("an encrypted volume through the embedding API: needs its key, keeps no inline blocks", async () => {
  const kv = new MemoryKvEngine();
  const store = new MemoryBlockStore();
  await assert.rejects(
    formatVolume(kv, { name: "e", storage: "mem://", encryptKey: KEY, inlineMax: 4096 }),
    /keeps no inline blocks/,
  );
  const f = await formatVolume(kv, { name: "e", storage: "mem://", encryptKey: KEY });
  assert.equal(f.inlineMax, 0);
  assert.equal(f.encryption?.cipher, "aes-256-gcm");
  // Formatting again: the same key is fine, another or none is not.
  assert.equal(
    (await formatVolume(kv, { name: "e", storage: "mem://", encryptKey: KEY })).uuid,
    f.uuid,
  );
  await assert.rejects(
    formatVolume(kv, { name: "e", storage: "mem://", encryptKey: OTHER }),
    /Wrong key/,
  );
  await assert.rejects(formatVolume(kv, { name: "e", storage: "mem://" }), /with encryption/);
  const secret = new TextEncoder().encode("tiny secret file");
  const vol = await Volume.openWith(kv, store, { encryptKey: KEY, codecWorkers: 0 });
  await vol.writeFile("/small", secret);
  await vol.writeFile("/big", noise(300_000, 4));
  await vol.vfs.close(); // flushed; the engines stay open for the next opens
  const objects = (await store.list("")).objects;
  assert.equal(objects.length, 2, "the small file is an object too, not an inline block");
  for (const o of objects) {
    const body = Buffer.from(await store.get(o.key));
    assert.equal(body.indexOf(Buffer.from(secret)), -1, `${o.key} holds no plaintext`);
  }
  await assert.rejects(Volume.openWith(kv, store), /"e" is encrypted: it needs its key/);
  await assert.rejects(Volume.openWith(kv, store, { encryptKey: OTHER }), /Wrong key/);
  const again = await Volume.openWith(kv, store, { encryptKey: KEY, codecWorkers: 0 });
  assert.deepEqual(await again.readFile("/small"), secret);
  assert.deepEqual(await again.readFile("/big"), noise(300_000, 4));
  await again.close();
});
