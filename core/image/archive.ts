/**
 * Reading an image archive without extracting it: a `docker save` archive (`manifest.json`, the
 * config with `rootfs.diff_ids`, layer tars) or an OCI image layout tar (`oci-layout`,
 * `index.json`, `blobs/sha256/*`). The outer tar is indexed by member offsets; each layer is then
 * streamed from its offset (through gzip decompression when compressed) while its digests are
 * computed, and checked when the layer ends.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { ArchiveError, fileRange, FileSource, StreamSource, tarEntries } from "./tar.ts";
import { byteStringToBytes } from "../_bytes.ts";

/** One layer of an image, located in the outer archive. */
export interface LayerRef {
  /** The member's path in the archive. */
  path: string;
  /** Offset and length of the member's data in the archive. */
  offset: number;
  /** Bytes stored in the archive (compressed, for a compressed layer). */
  size: number;
  /** `sha256:…` of the stored bytes, when the format names it (OCI). */
  digest?: string;
  /** `sha256:…` of the uncompressed tar (the config's `rootfs.diff_ids`). */
  diffId?: string;
}

/** An image archive opened for import. */
export interface ImageArchive {
  /** `docker-save` or `oci`. */
  kind: "docker-save" | "oci";
  /** The image config (`config.Env`, `config.Cmd`, `rootfs.diff_ids`, ...). */
  config: Record<string, unknown>;
  /** `sha256:…` of the config blob. */
  configDigest: string;
  /** The layers, lowest first. */
  layers: LayerRef[];
  /** The archive file (the caller closes it with `close`). */
  file: Deno.FsFile;
  /** Closes the archive file. */
  close(): void;
}

const sha256 = (b: Uint8Array) => "sha256:" + createHash("sha256").update(b).digest("hex");

function member(index: Map<string, { offset: number; size: number }>, path: string) {
  const m = index.get(path.replace(/^\.\//, ""));
  if (!m) throw new ArchiveError(`The archive has no "${path}"`);
  return m;
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new ArchiveError(`${what} is not valid JSON`);
  }
}

const blobPath = (digest: unknown) => {
  const m = /^sha256:([0-9a-f]{64})$/.exec(String(digest));
  if (!m) throw new ArchiveError(`Unsupported digest "${digest}" (only sha256)`);
  return `blobs/sha256/${m[1]}`;
};

/** Opens an image archive at `path` and reads its manifest and config. */
export async function openImageArchive(path: string): Promise<ImageArchive> {
  const file = await Deno.open(path, { read: true });
  try {
    const end = (await file.stat()).size;
    const index = new Map<string, { offset: number; size: number }>();
    const src = new FileSource(file, 0, end);
    for await (const e of tarEntries(src)) {
      if (e.type !== "0" && e.type !== "7") continue;
      const name = new TextDecoder().decode(byteStringToBytes(e.name)).replace(/^\.\//, "");
      index.set(name, { offset: e.offset, size: e.size });
    }
    const read = async (path: string) => {
      const m = member(index, path);
      const b = await new FileSource(file, m.offset, m.offset + m.size).read(m.size);
      if (b.byteLength < m.size) throw new ArchiveError("The archive is truncated");
      return b;
    };
    const base = { file, close: () => file.close() };
    if (index.has("manifest.json")) {
      const list = JSON.parse(new TextDecoder().decode(await read("manifest.json")));
      const m = Array.isArray(list) ? list[0] : undefined;
      if (!m || typeof m.Config !== "string" || !Array.isArray(m.Layers)) {
        throw new ArchiveError("manifest.json lists no image (Config and Layers)");
      }
      if (list.length > 1) throw new ArchiveError("The archive holds several images: save one");
      const configBytes = await read(m.Config);
      const config = parseJson(configBytes, m.Config);
      const diffIds = (config.rootfs as { diff_ids?: unknown } | undefined)?.diff_ids;
      if (!Array.isArray(diffIds) || diffIds.length !== m.Layers.length) {
        throw new ArchiveError("The config's rootfs.diff_ids do not match manifest.json's Layers");
      }
      const layers = m.Layers.map((p: string, i: number) => ({
        path: p,
        ...member(index, p),
        diffId: String(diffIds[i]),
      }));
      return { ...base, kind: "docker-save", config, configDigest: sha256(configBytes), layers };
    }
    if (index.has("index.json") && index.has("oci-layout")) {
      let desc = parseJson(await read("index.json"), "index.json");
      let manifest: Record<string, unknown> | undefined;
      for (let depth = 0; depth < 4 && !manifest; depth++) {
        const list = desc.manifests;
        if (!Array.isArray(list) || list.length === 0) {
          throw new ArchiveError("index.json lists no manifest");
        }
        const d = list[0] as { digest: string; mediaType?: string };
        const bytes = await read(blobPath(d.digest));
        if (sha256(bytes) !== d.digest) {
          throw new ArchiveError(`Blob ${d.digest} does not match its digest`);
        }
        const doc = parseJson(bytes, `blob ${d.digest}`);
        if (Array.isArray(doc.manifests)) desc = doc;
        else manifest = doc;
      }
      if (!manifest || !Array.isArray(manifest.layers)) {
        throw new ArchiveError("No image manifest found in index.json");
      }
      const cd = (manifest.config as { digest?: string } | undefined)?.digest;
      const configBytes = await read(blobPath(cd));
      if (sha256(configBytes) !== cd) {
        throw new ArchiveError(`Config ${cd} does not match its digest`);
      }
      const config = parseJson(configBytes, "The image config");
      const diffIds = (config.rootfs as { diff_ids?: unknown[] } | undefined)?.diff_ids ?? [];
      const layers = (manifest.layers as { digest: string; mediaType?: string }[]).map((l, i) => {
        if (/zstd/.test(l.mediaType ?? "")) {
          throw new ArchiveError(`Layer ${l.digest} is zstd-compressed: not supported (use gzip)`);
        }
        const p = blobPath(l.digest);
        return {
          path: p,
          ...member(index, p),
          digest: l.digest,
          ...(diffIds[i] ? { diffId: String(diffIds[i]) } : {}),
        };
      });
      return { ...base, kind: "oci", config, configDigest: cd!, layers };
    }
    throw new ArchiveError(
      "Not an image archive: no manifest.json (docker save) or oci-layout and index.json (OCI)",
    );
  } catch (err) {
    file.close();
    throw err;
  }
}

function hashing(hash: Hash, count?: (n: number) => void): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, c) {
      hash.update(chunk);
      count?.(chunk.byteLength);
      c.enqueue(chunk);
    },
  });
}

/** An open layer: its tar stream, and the check of its digests once it is read to the end. */
export interface LayerStream {
  /** The uncompressed tar. */
  source: StreamSource;
  /** Reads what is left and throws {@linkcode ArchiveError} if a digest does not match. */
  verify(): Promise<void>;
}

/** Opens `layer` of `archive` for reading; `progress` is told of each stored byte read. */
export async function openLayer(
  archive: ImageArchive,
  layer: LayerRef,
  progress?: (bytes: number) => void,
): Promise<LayerStream> {
  const magic = await new FileSource(archive.file, layer.offset, layer.offset + layer.size).read(4);
  const rawHash = createHash("sha256");
  const diffHash = createHash("sha256");
  let stream = fileRange(archive.file, layer.offset, layer.offset + layer.size)
    .pipeThrough(hashing(rawHash, progress));
  const gzip = magic[0] === 0x1f && magic[1] === 0x8b;
  if (magic[0] === 0x28 && magic[1] === 0xb5 && magic[2] === 0x2f && magic[3] === 0xfd) {
    throw new ArchiveError(`Layer ${layer.path} is zstd-compressed: not supported (use gzip)`);
  }
  if (gzip) {
    stream = stream.pipeThrough(
      new DecompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>,
    );
  }
  const source = new StreamSource(stream.pipeThrough(hashing(diffHash)));
  return {
    source,
    async verify() {
      await source.drain();
      const raw = "sha256:" + rawHash.digest("hex");
      const diff = gzip ? "sha256:" + diffHash.digest("hex") : raw;
      if (layer.digest && raw !== layer.digest) {
        throw new ArchiveError(`Layer ${layer.path} does not match its digest ${layer.digest}`);
      }
      if (layer.diffId && diff !== layer.diffId) {
        throw new ArchiveError(
          `Layer ${layer.path} does not match its digest ${layer.diffId} (rootfs.diff_ids)`,
        );
      }
    },
  };
}
