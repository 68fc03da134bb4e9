/**
 * `slayerfs image import|ls|rm`: images on a volume, imported from a `docker save` archive or an
 * OCI image layout tar into `/.images/NAME/rootfs` (see `core/image/store.ts`).
 *
 * @module
 */

import { openBlockStore } from "../backends/mod.ts";
import { Volume } from "../core/volume.ts";
import { importImage, listImages, removeImage } from "../core/image/store.ts";
import { ArchiveError } from "../core/image/tar.ts";
import { humanBytes, Progress, table } from "./_human.ts";
import { CliError } from "./_errors.ts";
import { openMeta } from "./_meta.ts";
import { volumeKeyOf } from "./_encrypt_key.ts";
import type { ParsedArgs } from "./_spec.ts";

const ARITY: Record<string, number> = { import: 4, ls: 2, rm: 3 };

/**
 * Opens the volume for the image commands. A mounted volume is fine: the import is one more
 * client of the metadata, and the mounts see the image appear whole (close-to-open).
 */
async function openVolume(url: string, keyFile: string | undefined): Promise<Volume> {
  const encryptKey = await volumeKeyOf(url, keyFile);
  return await Volume.open(url, {
    openKvEngine: (u) => openMeta(u),
    openBlockStore: (u) => openBlockStore(u),
  }, { predict: false, ...(encryptKey ? { encryptKey } : {}) });
}

/** Runs `slayerfs image` with its checked arguments. */
export async function cmdImage(args: ParsedArgs): Promise<void> {
  const [sub, url, ...rest] = args.positionals;
  const want = ARITY[sub!];
  if (want === undefined) {
    throw new CliError(`Unknown image command "${sub}": import, ls or rm`, 2);
  }
  if (args.positionals.length !== want) {
    const usage = { import: "META_URL IMAGE.tar NAME", ls: "META_URL", rm: "META_URL NAME" }[sub!];
    throw new CliError(`Usage: slayerfs image ${sub} ${usage}`, 2);
  }
  const vol = await openVolume(url!, args.string("encrypt-key"));
  try {
    if (sub === "import") {
      const [path, name] = rest as [string, string];
      let done = 0, total = 0, layer = 0, layers = 0;
      const started = Date.now();
      const progress = new Progress(() => ({
        fraction: total ? done / total : 0,
        text: `layer ${layer}/${layers}, ${humanBytes(done)} of ${humanBytes(total)}, ` +
          `${humanBytes(done / Math.max(0.001, (Date.now() - started) / 1000))}/s`,
      }), { quiet: args.flag("quiet") });
      try {
        const info = await importImage(vol.vfs, path, name, {
          bundle: args.flag("bundle"),
          progress: (d, t, l, n) => [done, total, layer, layers] = [d, t, l, n],
        });
        progress.done();
        console.log(
          `imported ${name}: ${info.layers.length} layers, ${info.entries} entries, ` +
            `${humanBytes(info.fileBytes)} of files in /.images/${name}/rootfs`,
        );
      } catch (err) {
        progress.done();
        throw err;
      }
    } else if (sub === "ls") {
      const images = await listImages(vol.vfs);
      if (args.flag("json")) console.log(JSON.stringify(images, null, 2));
      else if (images.length) {
        const rows = [["NAME", "LAYERS", "SIZE", "IMPORTED"]];
        for (const i of images) {
          rows.push([
            i.name,
            String(i.layers?.length ?? "?"),
            humanBytes(i.fileBytes ?? 0),
            i.importedAt ?? "?",
          ]);
        }
        console.log(table(rows, "").join("\n"));
      }
    } else {
      await removeImage(vol.vfs, rest[0]!);
      console.log(`removed ${rest[0]} (its blocks are freed; slayerfs gc reports any left)`);
    }
  } catch (err) {
    if (err instanceof ArchiveError) throw new CliError(err.message);
    throw err;
  } finally {
    await vol.close();
  }
}
