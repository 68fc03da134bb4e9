/**
 * What an imported image's `image.json` holds.
 *
 * @module
 */

/** What `image.json` holds. */
export interface ImageInfo {
  /** The image's name on the volume. */
  name: string;
  /** The archive's format. */
  format: "docker-save" | "oci";
  /** When it was imported (ISO 8601). */
  importedAt: string;
  /** `sha256:…` of the image config. */
  configDigest: string;
  /** The layers, lowest first. */
  layers: Array<{ path: string; size: number; digest?: string; diffId?: string }>;
  /** Bytes of regular files written (the image's size). */
  fileBytes: number;
  /** Tar entries applied. */
  entries: number;
  /** The image config's `config` (Env, Cmd, Entrypoint, WorkingDir, User, ...). */
  config: Record<string, unknown>;
  /** `architecture` and `os` of the image config. */
  architecture?: string;
  /** The image's operating system. */
  os?: string;
}
