/**
 * A volume opened for use: the metadata engine, the block store and the {@linkcode Vfs}, plus a
 * path-based API for embedding SlayerFS in a program without mounting it.
 *
 * @module
 */

import type { BlockStore } from "./block_store.ts";
import type { KvEngine } from "./kv.ts";
import { Errno, FsError } from "./errno.ts";
import {
  DEFAULT_BLOCK_SIZE,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_INLINE_MAX,
  validateFormat,
  type VolumeFormat,
} from "./format.ts";
import { Meta } from "./meta/mod.ts";
import {
  type Attr,
  type Ctx,
  type DirEntry,
  type Fh,
  type Ino,
  nameFromText,
  nameToText,
  O_ACCMODE,
  O_CREAT,
  O_EXCL,
  O_RDONLY,
  O_TRUNC,
  ROOT_CTX,
  ROOT_INO,
  S_IFDIR,
  S_IFLNK,
  S_IFMT,
} from "./types.ts";
import { Vfs, type VfsOptions } from "./vfs.ts";
import { ExternalStore } from "./import/external.ts";
import { EncryptionKeyError, encryptionRecord, sealedStore, volumeCipher } from "./_crypto.ts";

/** Opens backends by URL (the registry in `backends/`). */
export interface BackendOpeners {
  /** Opens the metadata engine that `url` names. */
  openKvEngine(url: string): Promise<KvEngine>;
  /** Opens the block store that `url` names. */
  openBlockStore(url: string): Promise<BlockStore>;
}

/** Settings for {@linkcode formatVolume}. */
export interface FormatOptions {
  /** The volume's name. */
  name: string;
  /** The block store's URL (without secrets: it is stored in the metadata). */
  storage: string;
  /** Largest block in bytes (default 4 MiB). */
  blockSize?: number;
  /** Chunk size in bytes, a multiple of the block size (default 64 MiB). */
  chunkSize?: number;
  /** Block compression (default `"lz4"`). */
  compression?: "none" | "lz4";
  /** Store blocks with the same contents once (default off). */
  dedup?: boolean;
  /** Largest block kept in the metadata engine (default 16 KiB; 0 turns inlining off). */
  inlineMax?: number;
  /** Capacity reported by statfs, in bytes (default 1 PiB). */
  capacity?: number;
  /** Inode limit reported by statfs (default 2^40). */
  inodes?: number;
  /**
   * Encrypt every object with this 32-byte key (AES-256-GCM; see `core/_crypto.ts`). An
   * encrypted volume keeps no inline blocks: `inlineMax` must be 0 or left out.
   */
  encryptKey?: Uint8Array;
}

/** Options of {@linkcode Volume.open} and {@linkcode Volume.openWith}. */
export interface VolumeOptions extends VfsOptions {
  /** The key of an encrypted volume (required for one, refused for a volume without). */
  encryptKey?: Uint8Array;
  /**
   * Called with the size of each range read from an imported object (not through the volume's
   * store) and awaited before the range is used: a mount's download limit and its byte count.
   */
  onExternalRead?: (bytes: number) => Promise<void>;
}

/** Formats the volume in `kv` (idempotent for the same settings). */
export async function formatVolume(kv: KvEngine, options: FormatOptions): Promise<VolumeFormat> {
  const key = options.encryptKey;
  if (key && (options.inlineMax ?? 0) > 0) {
    throw new EncryptionKeyError(
      "An encrypted volume keeps no inline blocks (they would be stored unencrypted in the " +
        "metadata): leave the inline size out or make it 0",
    );
  }
  const old = await Meta.readFormat(kv);
  if (old && !!old.encryption !== !!key) {
    throw new FsError(
      Errno.EEXIST,
      `Volume "${old.name}" is already formatted ${old.encryption ? "with" : "without"} encryption`,
    );
  }
  // Formatting again checks the key against the volume's (its uuid salts the check value).
  if (old && key) await volumeCipher(old, key);
  const uuid = crypto.randomUUID();
  const format: VolumeFormat = {
    version: 1,
    name: options.name,
    uuid,
    storage: options.storage,
    blockSize: options.blockSize ?? DEFAULT_BLOCK_SIZE,
    chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
    compression: options.compression ?? "lz4",
    ...(options.dedup ? { dedup: true } : {}),
    inlineMax: options.inlineMax ?? (key ? 0 : DEFAULT_INLINE_MAX),
    ...(key ? { encryption: await encryptionRecord(key, uuid) } : {}),
    capacity: options.capacity ?? 2 ** 50,
    inodes: options.inodes ?? 2 ** 40,
    createdAt: new Date().toISOString(),
  };
  validateFormat(format);
  return await Meta.format(kv, format);
}

/** An open file of the embedding API. */
export class VolumeFile {
  readonly #vol: Volume;
  /** The file's inode. */
  readonly ino: Ino;
  /** The open handle. */
  readonly fh: Fh;
  #closed = false;

  /** @internal */
  constructor(vol: Volume, ino: Ino, fh: Fh) {
    this.#vol = vol;
    this.ino = ino;
    this.fh = fh;
  }

  /** Reads up to `length` bytes at `position` (fewer at the end of the file). */
  read(position: number, length: number): Promise<Uint8Array> {
    return this.#vol.vfs.read(this.#vol.ctx, this.ino, this.fh, position, length);
  }

  /** Writes `data` at `position`. */
  write(position: number, data: Uint8Array): Promise<number> {
    return this.#vol.vfs.write(this.#vol.ctx, this.ino, this.fh, position, data.slice());
  }

  /** Commits pending writes. */
  sync(): Promise<void> {
    return this.#vol.vfs.fsync(this.#vol.ctx, this.ino, this.fh, false);
  }

  /** Attributes including pending writes. */
  stat(): Promise<Attr> {
    return this.#vol.vfs.getattr(this.#vol.ctx, this.ino);
  }

  /** Closes the file (commits pending writes); idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const ctx = this.#vol.ctx;
    await this.#vol.vfs.flush(ctx, this.ino, this.fh, 0n);
    await this.#vol.vfs.release(ctx, this.ino, this.fh, 0n, false);
  }

  /** Closes the file. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * An open volume.
 *
 * @example
 * ```ts
 * import { MemoryBlockStore, MemoryKvEngine } from "../backends/mod.ts";
 * import { formatVolume, Volume } from "./volume.ts";
 * const kv = new MemoryKvEngine();
 * await formatVolume(kv, { name: "doc", storage: "mem://" });
 * const vol = await Volume.openWith(kv, new MemoryBlockStore());
 * await vol.mkdir("/a/b", { recursive: true });
 * await vol.writeFile("/a/b/hello.txt", new TextEncoder().encode("hi"));
 * if (new TextDecoder().decode(await vol.readFile("/a/b/hello.txt")) !== "hi") throw new Error();
 * await vol.close();
 * ```
 */
export class Volume {
  /** The metadata engine (the volume owns it: `close` closes it). */
  readonly kv: KvEngine;
  /** The block store (the volume owns it: `close` closes it). */
  readonly store: BlockStore;
  /** The filesystem, for calls the path-based API does not offer. */
  readonly vfs: Vfs;
  /** Credentials used for every call (root by default). */
  ctx: Ctx = ROOT_CTX;
  #closed = false;

  private constructor(kv: KvEngine, store: BlockStore, vfs: Vfs) {
    this.kv = kv;
    this.store = store;
    this.vfs = vfs;
  }

  /**
   * Opens the volume held by `kv` with its blocks in `store`; the volume owns both. An encrypted
   * volume needs `options.encryptKey`: its objects are sealed on top of `store`, so every layer
   * below (a writeback stage, the object store) sees only sealed objects.
   */
  static async openWith(kv: KvEngine, store: BlockStore, options?: VolumeOptions): Promise<Volume> {
    const meta = await Meta.open(kv);
    const { encryptKey, onExternalRead, ...vfsOptions } = options ?? {};
    const cipher = await volumeCipher(meta.format, encryptKey);
    const sealed = new ExternalStore(
      sealedStore(store, cipher),
      kv,
      meta.format.blockSize,
      onExternalRead,
    );
    return new Volume(kv, sealed, await Vfs.open(meta, sealed, vfsOptions));
  }

  /** Opens the volume whose metadata engine `metaUrl` names, and its block store. */
  static async open(
    metaUrl: string,
    backends: BackendOpeners,
    options?: VolumeOptions,
  ): Promise<Volume> {
    const kv = await backends.openKvEngine(metaUrl);
    try {
      const meta = await Meta.open(kv);
      const { encryptKey, onExternalRead, ...vfsOptions } = options ?? {};
      // A missing or wrong key fails before the store is opened.
      const cipher = await volumeCipher(meta.format, encryptKey);
      const store = await backends.openBlockStore(meta.format.storage);
      try {
        const sealed = new ExternalStore(
          sealedStore(store, cipher),
          kv,
          meta.format.blockSize,
          onExternalRead,
        );
        return new Volume(kv, sealed, await Vfs.open(meta, sealed, vfsOptions));
      } catch (err) {
        await store.close();
        throw err;
      }
    } catch (err) {
      await kv.close();
      throw err;
    }
  }

  /** The volume's settings. */
  get format(): VolumeFormat {
    return this.vfs.meta.format;
  }

  /** Resolves a path to its attributes (following symlinks, except the last unless `follow`). */
  async resolve(path: string, follow = true): Promise<Attr> {
    let attr = await this.vfs.getattr(this.ctx, ROOT_INO);
    const parts = splitPath(path);
    for (let i = 0, hops = 0; i < parts.length; i++) {
      if ((attr.mode & S_IFMT) !== S_IFDIR) throw new FsError(Errno.ENOTDIR, `Not a directory`);
      const next = await this.vfs.lookup(this.ctx, attr.ino, nameFromText(parts[i]!));
      if ((next.mode & S_IFMT) === S_IFLNK && (follow || i < parts.length - 1)) {
        if (++hops > 40) throw new FsError(Errno.ELOOP);
        const target = nameToText(await this.vfs.readlink(this.ctx, next.ino));
        const rest = parts.slice(i + 1);
        const base = target.startsWith("/") ? [] : parts.slice(0, i);
        parts.splice(0, parts.length, ...base, ...splitPath(target), ...rest);
        attr = await this.vfs.getattr(this.ctx, ROOT_INO);
        i = -1;
        continue;
      }
      attr = next;
    }
    return attr;
  }

  async #parent(path: string): Promise<{ dir: Attr; name: string }> {
    const parts = splitPath(path);
    const name = parts.pop();
    if (name === undefined) throw new FsError(Errno.EEXIST, "The root has no parent");
    const dir = await this.resolve("/" + parts.join("/"));
    return { dir, name };
  }

  /** Attributes of `path` (following symlinks). */
  stat(path: string): Promise<Attr> {
    return this.resolve(path, true);
  }

  /** Attributes of `path` itself. */
  lstat(path: string): Promise<Attr> {
    return this.resolve(path, false);
  }

  /** Creates a directory (and its parents with `recursive`). */
  async mkdir(path: string, options: { recursive?: boolean; mode?: number } = {}): Promise<void> {
    const mode = (options.mode ?? 0o777) & ~this.ctx.umask;
    if (!options.recursive) {
      const { dir, name } = await this.#parent(path);
      await this.vfs.mkdir(this.ctx, dir.ino, nameFromText(name), mode);
      return;
    }
    let cur = await this.vfs.getattr(this.ctx, ROOT_INO);
    for (const part of splitPath(path)) {
      const name = nameFromText(part);
      try {
        cur = await this.vfs.lookup(this.ctx, cur.ino, name);
      } catch (err) {
        if (!(err instanceof FsError) || err.errno !== Errno.ENOENT) throw err;
        cur = await this.vfs.mkdir(this.ctx, cur.ino, name, mode);
      }
      if ((cur.mode & S_IFMT) !== S_IFDIR) throw new FsError(Errno.ENOTDIR, `"${part}"`);
    }
  }

  /** Opens a file; `flags` as `open(2)` (`O_CREAT`, `O_EXCL`, `O_TRUNC`, `O_APPEND`, ...). */
  async open(path: string, flags = O_RDONLY, mode = 0o666): Promise<VolumeFile> {
    if (flags & O_CREAT) {
      const { dir, name } = await this.#parent(path);
      try {
        const { attr, opened } = await this.vfs.create(
          this.ctx,
          dir.ino,
          nameFromText(name),
          mode & ~this.ctx.umask,
          flags,
        );
        return new VolumeFile(this, attr.ino, opened.fh);
      } catch (err) {
        if (!(err instanceof FsError) || err.errno !== Errno.EEXIST || flags & O_EXCL) throw err;
      }
    }
    const attr = await this.resolve(path);
    if ((attr.mode & S_IFMT) === S_IFDIR && (flags & O_ACCMODE) !== O_RDONLY) {
      throw new FsError(Errno.EISDIR);
    }
    const opened = await this.vfs.open(this.ctx, attr.ino, flags);
    return new VolumeFile(this, attr.ino, opened.fh);
  }

  /** Writes a whole file (created or truncated). */
  async writeFile(path: string, data: Uint8Array): Promise<void> {
    await using f = await this.open(path, 1 | O_CREAT | O_TRUNC);
    await f.write(0, data);
  }

  /** Reads a whole file. */
  async readFile(path: string): Promise<Uint8Array> {
    await using f = await this.open(path);
    const { size } = await f.stat();
    return await f.read(0, size);
  }

  /** Names in a directory (without `.` and `..`), in storage order. */
  async readdir(path: string): Promise<DirEntry[]> {
    const dir = await this.resolve(path);
    const { fh } = await this.vfs.opendir(this.ctx, dir.ino, 0);
    try {
      const all: DirEntry[] = [];
      let off = 0;
      for (;;) {
        const page = await this.vfs.readdir(this.ctx, dir.ino, fh, off, 1024, false);
        if (page.length === 0) break;
        all.push(...page);
        off = page[page.length - 1]!.next;
      }
      return all.filter((e) => e.name !== "." && e.name !== "..").map((e) => ({
        ...e,
        name: nameToText(e.name),
      }));
    } finally {
      await this.vfs.releasedir(this.ctx, dir.ino, fh);
    }
  }

  /** Renames `from` to `to` (`flags`: RENAME_NOREPLACE 1, RENAME_EXCHANGE 2). */
  async rename(from: string, to: string, flags = 0): Promise<void> {
    const a = await this.#parent(from);
    const b = await this.#parent(to);
    await this.vfs.rename(
      this.ctx,
      a.dir.ino,
      nameFromText(a.name),
      b.dir.ino,
      nameFromText(b.name),
      flags,
    );
  }

  /** Creates a hard link `to` of `from`. */
  async link(from: string, to: string): Promise<void> {
    const src = await this.resolve(from, false);
    const b = await this.#parent(to);
    await this.vfs.link(this.ctx, src.ino, b.dir.ino, nameFromText(b.name));
  }

  /** Creates a symlink at `path` pointing to `target`. */
  async symlink(target: string, path: string): Promise<void> {
    const { dir, name } = await this.#parent(path);
    await this.vfs.symlink(this.ctx, dir.ino, nameFromText(name), nameFromText(target));
  }

  /** The target of a symlink. */
  async readlink(path: string): Promise<string> {
    const a = await this.resolve(path, false);
    return nameToText(await this.vfs.readlink(this.ctx, a.ino));
  }

  /** Removes a file, symlink or other non-directory. */
  async unlink(path: string): Promise<void> {
    const { dir, name } = await this.#parent(path);
    await this.vfs.unlink(this.ctx, dir.ino, nameFromText(name));
  }

  /** Removes an empty directory. */
  async rmdir(path: string): Promise<void> {
    const { dir, name } = await this.#parent(path);
    await this.vfs.rmdir(this.ctx, dir.ino, nameFromText(name));
  }

  /** Sets a file's length. */
  async truncate(path: string, size: number): Promise<void> {
    const a = await this.resolve(path);
    await this.vfs.setattr(this.ctx, a.ino, { size });
  }

  /** Flushes every open file and closes the engines; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.vfs.close();
    } finally {
      await this.store.close();
      await this.kv.close();
    }
  }

  /** Closes the volume. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function splitPath(path: string): string[] {
  return path.split("/").filter((p) => p !== "" && p !== ".").reduce<string[]>((acc, p) => {
    if (p === "..") acc.pop();
    else acc.push(p);
    return acc;
  }, []);
}
