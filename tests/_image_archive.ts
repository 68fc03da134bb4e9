/**
 * Image archives built by the tests themselves, without a registry: a small tar writer (ustar,
 * PAX for long names and xattrs), layers from a host directory, and `docker save` and OCI image
 * layout archives of those layers.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** One member of a tar written by {@linkcode tar}. */
export interface TarMember {
  /** The path (`etc/passwd`, `bin/`). */
  name: string;
  /** `0` file, `1` hard link, `2` symlink, `3` char, `4` block, `5` dir, `6` FIFO. */
  type?: string;
  /** Permission bits (default 0644, 0755 for directories). */
  mode?: number;
  /** Owner and group (default 0). */
  uid?: number;
  /** The group. */
  gid?: number;
  /** Seconds since the epoch (default 1700000000). */
  mtime?: number;
  /** A file's contents. */
  data?: Uint8Array | string;
  /** A link's target. */
  linkname?: string;
  /** Device numbers. */
  major?: number;
  /** Device numbers. */
  minor?: number;
  /** Extended attributes, written as PAX `SCHILY.xattr.NAME`. */
  xattrs?: Record<string, string>;
}

const enc = new TextEncoder();

function header(fields: {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: string;
  linkname: string;
  major: number;
  minor: number;
}): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, len: number, s: string) => h.set(enc.encode(s).subarray(0, len), off);
  const oct = (off: number, len: number, n: number) =>
    put(off, len, n.toString(8).padStart(len - 1, "0") + "\0");
  put(0, 100, fields.name);
  oct(100, 8, fields.mode);
  oct(108, 8, fields.uid);
  oct(116, 8, fields.gid);
  oct(124, 12, fields.size);
  oct(136, 12, fields.mtime);
  put(148, 8, "        ");
  put(156, 1, fields.type);
  put(157, 100, fields.linkname);
  put(257, 8, "ustar\x0000");
  oct(329, 8, fields.major);
  oct(337, 8, fields.minor);
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

const padded = (b: Uint8Array) => {
  const out = new Uint8Array(Math.ceil(b.byteLength / 512) * 512);
  out.set(b);
  return out;
};

function paxRecord(key: string, value: Uint8Array): Uint8Array {
  const body = (n: number) => `${n} ${key}=`;
  let len = enc.encode(body(0)).byteLength + value.byteLength + 1;
  while (enc.encode(body(len)).byteLength + value.byteLength + 1 !== len) {
    len = enc.encode(body(len)).byteLength + value.byteLength + 1;
  }
  return new Uint8Array([...enc.encode(body(len)), ...value, 0x0a]);
}

/** A tar archive of `members` (with the two zero blocks at the end). */
export function tar(members: TarMember[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const m of members) {
    const type = m.type ?? "0";
    const data = typeof m.data === "string" ? enc.encode(m.data) : m.data ?? new Uint8Array(0);
    const base = {
      name: m.name,
      mode: m.mode ?? (type === "5" ? 0o755 : 0o644),
      uid: m.uid ?? 0,
      gid: m.gid ?? 0,
      size: type === "0" ? data.byteLength : 0,
      mtime: m.mtime ?? 1700000000,
      type,
      linkname: m.linkname ?? "",
      major: m.major ?? 0,
      minor: m.minor ?? 0,
    };
    const pax: Uint8Array[] = [];
    if (enc.encode(m.name).byteLength > 99) pax.push(paxRecord("path", enc.encode(m.name)));
    if (enc.encode(base.linkname).byteLength > 99) {
      pax.push(paxRecord("linkpath", enc.encode(base.linkname)));
    }
    for (const [k, v] of Object.entries(m.xattrs ?? {})) {
      pax.push(paxRecord(`SCHILY.xattr.${k}`, enc.encode(v)));
    }
    if (pax.length) {
      const body = new Uint8Array(pax.reduce((n, p) => n + p.byteLength, 0));
      let off = 0;
      for (const p of pax) {
        body.set(p, off);
        off += p.byteLength;
      }
      parts.push(
        header({ ...base, name: "PaxHeader", size: body.byteLength, type: "x", linkname: "" }),
      );
      parts.push(padded(body));
    }
    parts.push(
      header({ ...base, name: base.name.slice(0, 99), linkname: base.linkname.slice(0, 99) }),
    );
    if (type === "0") parts.push(padded(data));
  }
  parts.push(new Uint8Array(1024));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** The members of a host directory tree (files, dirs, symlinks, devices), sorted by path. */
export async function membersOf(dir: string, prefix = ""): Promise<TarMember[]> {
  const out: TarMember[] = [];
  const names = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  for (const n of names.sort()) {
    const path = `${dir}/${n}`;
    const st = await Deno.lstat(path);
    const name = prefix + n;
    const common = { mode: st.mode! & 0o7777, uid: st.uid!, gid: st.gid! };
    if (st.isSymlink) out.push({ name, type: "2", linkname: await Deno.readLink(path), ...common });
    else if (st.isDirectory) {
      out.push({ name: name + "/", type: "5", ...common });
      out.push(...await membersOf(path, name + "/"));
    } else if (st.isFile) out.push({ name, data: await Deno.readFile(path), ...common });
    else if (st.isCharDevice || st.isBlockDevice) {
      const rdev = st.rdev!;
      out.push({
        name,
        type: st.isCharDevice ? "3" : "4",
        major: (rdev >> 8) & 0xfff,
        minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
        ...common,
      });
    }
  }
  return out;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** The image config of `layers` (uncompressed tars). */
function imageConfig(layers: Uint8Array[]): Uint8Array {
  return enc.encode(JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: {
      Env: ["PATH=/bin", "HELLO=world"],
      Cmd: ["/bin/sh", "-c", "echo hello from $HELLO"],
      WorkingDir: "/",
    },
    rootfs: { type: "layers", diff_ids: layers.map((l) => `sha256:${sha(l)}`) },
  }));
}

/** A `docker save` archive (manifest.json, config, `HEX/layer.tar`) of `layers`. */
export function dockerSave(layers: Uint8Array[], tag = "test:latest"): Uint8Array {
  const config = imageConfig(layers);
  const configName = `${sha(config)}.json`;
  const paths = layers.map((l) => `${sha(l)}/layer.tar`);
  return tar([
    { name: configName, data: config },
    ...layers.flatMap((l, i) => [
      { name: `${sha(l)}/`, type: "5" },
      { name: paths[i]!, data: l },
    ]),
    {
      name: "manifest.json",
      data: JSON.stringify([{ Config: configName, RepoTags: [tag], Layers: paths }]),
    },
  ]);
}

async function gzip(b: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([b.slice()]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** An OCI image layout tar of `layers` (gzip-compressed unless `gzipped` is false). */
export async function ociLayout(layers: Uint8Array[], gzipped = true): Promise<Uint8Array> {
  const config = imageConfig(layers);
  const blobs = gzipped ? await Promise.all(layers.map(gzip)) : layers;
  const manifest = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: `sha256:${sha(config)}`,
      size: config.byteLength,
    },
    layers: blobs.map((b) => ({
      mediaType: `application/vnd.oci.image.layer.v1.tar${gzipped ? "+gzip" : ""}`,
      digest: `sha256:${sha(b)}`,
      size: b.byteLength,
    })),
  }));
  const index = {
    schemaVersion: 2,
    manifests: [{
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: `sha256:${sha(manifest)}`,
      size: manifest.byteLength,
    }],
  };
  return tar([
    { name: "oci-layout", data: '{"imageLayoutVersion":"1.0.0"}' },
    { name: "index.json", data: JSON.stringify(index) },
    { name: "blobs/", type: "5" },
    { name: "blobs/sha256/", type: "5" },
    ...[config, manifest, ...blobs].map((b) => ({ name: `blobs/sha256/${sha(b)}`, data: b })),
  ]);
}
