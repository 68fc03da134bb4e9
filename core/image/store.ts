/**
 * Images kept on a volume: `/.images/NAME/rootfs` (the applied layers, usable as a container's
 * root filesystem), `/.images/NAME/image.json` (the image config: Env, Cmd, WorkingDir, the
 * layers' digests) and, with `bundle`, `/.images/NAME/config.json` (an OCI runtime config, so
 * `runc run --bundle MNT/.images/NAME ID` works). An import builds everything under a temporary
 * dot-name and renames it to NAME at the end: nothing half-imported is ever visible under NAME,
 * and a failed import removes its temporary tree.
 *
 * @module
 */

import { Errno, FsError } from "../errno.ts";
import {
  type Ino,
  nameFromText,
  nameToText,
  O_WRONLY,
  RENAME_NOREPLACE,
  ROOT_INO,
} from "../types.ts";
import type { Vfs } from "../vfs.ts";
import { type ImageArchive, openImageArchive, openLayer } from "./archive.ts";
import { LayerApplier } from "./apply.ts";
import { ArchiveError } from "./tar.ts";
import { runtimeConfig } from "./bundle.ts";
import type { ImageInfo } from "./info.ts";

export type { ImageInfo };
import { ROOT_CTX } from "../types.ts";

/** The folder, at the volume's root, that holds the images. */
export const IMAGES_DIR = ".images";

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

/** Throws unless `name` can name an image (1-128 of `A-Z a-z 0-9 . _ : @ -`, no leading dot). */
export function checkImageName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new ArchiveError(
      `Invalid image name "${name}": 1-128 letters, digits, . _ : @ -, not starting with . _ : @ -`,
    );
  }
}

const ctx = { ...ROOT_CTX, umask: 0 };

async function lookup(vfs: Vfs, dir: Ino, name: string) {
  try {
    return await vfs.lookup(ctx, dir, nameFromText(name));
  } catch (err) {
    if (err instanceof FsError && err.errno === Errno.ENOENT) return undefined;
    throw err;
  }
}

/** The `/.images` folder's inode, created (0755) when `create`. */
async function imagesDir(vfs: Vfs, create: boolean): Promise<Ino | undefined> {
  const a = await lookup(vfs, ROOT_INO, IMAGES_DIR);
  if (a || !create) return a?.ino;
  try {
    return (await vfs.mkdir(ctx, ROOT_INO, IMAGES_DIR, 0o755)).ino;
  } catch (err) {
    if (err instanceof FsError && err.errno === Errno.EEXIST) {
      return (await vfs.lookup(ctx, ROOT_INO, IMAGES_DIR)).ino;
    }
    throw err;
  }
}

async function writeFile(vfs: Vfs, dir: Ino, name: string, text: string): Promise<void> {
  const { attr, opened } = await vfs.create(ctx, dir, nameFromText(name), 0o644, O_WRONLY);
  try {
    await vfs.write(ctx, attr.ino, opened.fh, 0, new TextEncoder().encode(text));
    await vfs.flush(ctx, attr.ino, opened.fh, 0n);
  } finally {
    await vfs.release(ctx, attr.ino, opened.fh, 0n, false);
  }
}

async function readFile(vfs: Vfs, ino: Ino): Promise<Uint8Array> {
  const opened = await vfs.open(ctx, ino, 0);
  try {
    const { size } = await vfs.getattr(ctx, ino);
    return await vfs.read(ctx, ino, opened.fh, 0, size);
  } finally {
    await vfs.release(ctx, ino, opened.fh, 0n, false);
  }
}

/** Options of {@linkcode importImage}. */
export interface ImportOptions {
  /** Also write an OCI runtime `config.json` beside `rootfs`. */
  bundle?: boolean;
  /** Told of stored bytes read, out of `total`, as the layers are applied. */
  progress?: (done: number, total: number, layer: number, layers: number) => void;
}

/** Imports the image archive at `path` as `name`; returns its `image.json`. */
export async function importImage(
  vfs: Vfs,
  path: string,
  name: string,
  options: ImportOptions = {},
): Promise<ImageInfo> {
  checkImageName(name);
  const images = (await imagesDir(vfs, true))!;
  if (await lookup(vfs, images, name)) {
    throw new ArchiveError(`An image named "${name}" exists: remove it first (image rm)`);
  }
  let archive: ImageArchive;
  try {
    archive = await openImageArchive(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new ArchiveError(`No such file "${path}"`);
    throw err;
  }
  const temp = `.importing-${name}-${crypto.randomUUID().slice(0, 8)}`;
  const applierFor = (root: Ino) => new LayerApplier(vfs, root, ctx);
  const cleanup = applierFor(images);
  try {
    const top = await vfs.mkdir(ctx, images, temp, 0o755);
    const rootfs = await vfs.mkdir(ctx, top.ino, "rootfs", 0o755);
    const applier = applierFor(rootfs.ino);
    const total = archive.layers.reduce((n, l) => n + l.size, 0);
    let done = 0;
    for (const [i, layer] of archive.layers.entries()) {
      const stream = await openLayer(archive, layer, (n) => {
        done += n;
        options.progress?.(done, total, i + 1, archive.layers.length);
      });
      try {
        await applier.apply(stream.source);
        await stream.verify();
      } catch (err) {
        await stream.source.cancel();
        if (err instanceof TypeError || (err as Error)?.name === "TypeError") {
          throw new ArchiveError(`Layer ${layer.path} is corrupt: ${(err as Error).message}`);
        }
        throw err;
      }
    }
    const c = archive.config;
    const info: ImageInfo = {
      name,
      format: archive.kind,
      importedAt: new Date().toISOString(),
      configDigest: archive.configDigest,
      layers: archive.layers.map((l) => ({
        path: l.path,
        size: l.size,
        ...(l.digest ? { digest: l.digest } : {}),
        ...(l.diffId ? { diffId: l.diffId } : {}),
      })),
      fileBytes: applier.stats.fileBytes,
      entries: applier.stats.entries,
      config: (c.config ?? {}) as Record<string, unknown>,
      ...(typeof c.architecture === "string" ? { architecture: c.architecture } : {}),
      ...(typeof c.os === "string" ? { os: c.os } : {}),
    };
    await writeFile(vfs, top.ino, "image.json", JSON.stringify(info, null, 2) + "\n");
    if (options.bundle) {
      await writeFile(vfs, top.ino, "config.json", JSON.stringify(runtimeConfig(info), null, 2));
    }
    try {
      await vfs.rename(ctx, images, temp, images, nameFromText(name), RENAME_NOREPLACE);
    } catch (err) {
      if (err instanceof FsError && err.errno === Errno.EEXIST) {
        throw new ArchiveError(`An image named "${name}" was imported meanwhile`);
      }
      throw err;
    }
    return info;
  } catch (err) {
    await cleanup.removeTree(images, temp).catch(() => {});
    throw err;
  } finally {
    archive.close();
  }
}

/** The images on the volume (names not starting with a dot), with their `image.json`. */
export async function listImages(vfs: Vfs): Promise<ImageInfo[]> {
  const images = await imagesDir(vfs, false);
  if (images === undefined) return [];
  const out: ImageInfo[] = [];
  const { fh } = await vfs.opendir(ctx, images, 0);
  const names: string[] = [];
  try {
    let off = 0;
    for (;;) {
      const page = await vfs.readdir(ctx, images, fh, off, 1024, false);
      if (page.length === 0) break;
      for (const e of page) if (!e.name.startsWith(".")) names.push(e.name);
      off = page[page.length - 1]!.next;
    }
  } finally {
    await vfs.releasedir(ctx, images, fh);
  }
  for (const n of names.sort()) {
    const dir = await vfs.lookup(ctx, images, n);
    const json = await lookup(vfs, dir.ino, "image.json");
    if (!json) continue;
    try {
      out.push(JSON.parse(new TextDecoder().decode(await readFile(vfs, json.ino))));
    } catch {
      out.push({ name: nameToText(n) } as ImageInfo);
    }
  }
  return out;
}

/** Removes image `name` (its files' blocks are freed as with any deleted file). */
export async function removeImage(vfs: Vfs, name: string): Promise<void> {
  checkImageName(name);
  const images = await imagesDir(vfs, false);
  if (images === undefined || !await lookup(vfs, images, name)) {
    throw new ArchiveError(`No image named "${name}"`);
  }
  // Out of sight first, then deleted: a half-removed image is never listed.
  const gone = `.removing-${name}-${crypto.randomUUID().slice(0, 8)}`;
  await vfs.rename(ctx, images, nameFromText(name), images, gone, RENAME_NOREPLACE);
  await new LayerApplier(vfs, images, ctx).removeTree(images, gone);
}
