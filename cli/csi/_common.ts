/**
 * What the CSI driver's services share: gRPC status errors, the checks of volume capabilities,
 * the metadata URL and child-process environment taken from a request's secrets, and the
 * volume folders' names.
 *
 * @module
 */

import { redact, SubvolumeError } from "../_subvolumes.ts";

/** The driver's name (`GetPluginInfo`, the CSIDriver object, the StorageClass provisioner). */
export const DRIVER_NAME = "csi.slayerfs.io";
/** The folder holding every CSI volume's folder. */
export const CSI_VOLUMES_DIR = "/csi-volumes";
/** The folder of the volumes' records (an id never starts with a dot). */
export const CSI_RECORDS_DIR = `${CSI_VOLUMES_DIR}/.records`;

/** gRPC status codes the driver answers with. */
export const Code = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  FAILED_PRECONDITION: 9,
  OUT_OF_RANGE: 11,
  INTERNAL: 13,
} as const;

/** An error answered as a gRPC status. */
export class CsiError extends Error {
  /** The gRPC status code. */
  readonly code: number;
  /** Creates the error. */
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * The gRPC status of `err` (`INTERNAL` for anything that is not a {@linkcode CsiError}), with
 * `secrets` and URL passwords redacted from its message.
 */
export function toStatus(
  err: unknown,
  secrets: readonly string[] = [],
): { code: number; details: string } {
  const code = err instanceof CsiError ? err.code : Code.INTERNAL;
  const msg = err instanceof CsiError || err instanceof SubvolumeError
    ? err.message
    : err instanceof Error
    ? err.message
    : String(err);
  return { code, details: redact(msg, secrets) };
}

/** A `VolumeCapability` as proto-loader decodes it (enums as names, oneofs named). */
export interface VolumeCapability {
  block?: Record<string, never> | null;
  mount?: { fs_type?: string; mount_flags?: string[] } | null;
  access_type?: "block" | "mount";
  access_mode?: { mode?: string } | null;
}

/** The access modes a folder of a shared filesystem serves. */
const MODES = new Set([
  "SINGLE_NODE_WRITER",
  "SINGLE_NODE_READER_ONLY",
  "MULTI_NODE_READER_ONLY",
  "MULTI_NODE_SINGLE_WRITER",
  "MULTI_NODE_MULTI_WRITER",
  "SINGLE_NODE_SINGLE_WRITER",
  "SINGLE_NODE_MULTI_WRITER",
]);

/** Why `cap` cannot be served, or `undefined` when it can. */
export function unsupported(cap: VolumeCapability): string | undefined {
  if (cap.block || cap.access_type === "block") return "block volumes are not supported";
  const mode = cap.access_mode?.mode ?? "UNKNOWN";
  if (!MODES.has(mode)) return `access mode ${mode} is not supported`;
  const fs = cap.mount?.fs_type ?? "";
  if (fs !== "" && fs !== "slayerfs" && fs !== "fuse.slayerfs") {
    return `fs_type "${fs}" is not supported (SlayerFS is a filesystem of its own)`;
  }
  return undefined;
}

/** Whether an access mode only reads. */
export function readOnlyMode(cap: VolumeCapability | null | undefined): boolean {
  const mode = cap?.access_mode?.mode ?? "";
  return mode === "MULTI_NODE_READER_ONLY" || mode === "SINGLE_NODE_READER_ONLY";
}

/** Throws `INVALID_ARGUMENT` naming `field` when `value` is missing or empty. */
export function required<T>(value: T | null | undefined, field: string): T {
  if (value === undefined || value === null || value === "" as unknown) {
    throw new CsiError(Code.INVALID_ARGUMENT, `${field} is required`);
  }
  if (Array.isArray(value) && value.length === 0) {
    throw new CsiError(Code.INVALID_ARGUMENT, `${field} is required`);
  }
  return value;
}

/**
 * The metadata URL for a request: the secret `metaurl` (which may hold a password), else the
 * driver's `--meta`. Throws `INVALID_ARGUMENT` when neither is there.
 */
export function metaFor(secrets: Record<string, string> | undefined, fallback?: string): string {
  const url = secrets?.metaurl || fallback;
  if (!url) {
    throw new CsiError(
      Code.INVALID_ARGUMENT,
      "no metadata URL: give the driver --meta or the secret metaurl",
    );
  }
  return url;
}

/** The environment a child process gets from a request's secrets (S3 keys). */
export function envFor(secrets: Record<string, string> | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  if (secrets?.["access-key"]) env.AWS_ACCESS_KEY_ID = secrets["access-key"];
  if (secrets?.["secret-key"]) env.AWS_SECRET_ACCESS_KEY = secrets["secret-key"];
  if (secrets?.["session-token"]) env.AWS_SESSION_TOKEN = secrets["session-token"];
  return env;
}

/**
 * The volume id for a `CreateVolume` name: the name itself when it is a safe folder name of at
 * most 96 characters (Kubernetes' `pvc-UUID`), else a safe prefix and a hash of the name.
 */
export async function volumeIdFor(name: string): Promise<string> {
  if (/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,95}$/.test(name)) return name;
  const hash = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(name)),
  );
  const hex = [...hash.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const prefix = name.replace(/[^a-zA-Z0-9_.-]/g, "-").replace(/^[^a-zA-Z0-9]+/, "").slice(0, 60);
  return `${prefix ? `${prefix}-` : "v-"}${hex}`;
}

/** Whether `id` is a volume id this driver could have made. */
export function validVolumeId(id: string): boolean {
  return /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(id);
}

/** The folder of volume `id`. */
export function volumeDir(id: string): string {
  return `${CSI_VOLUMES_DIR}/${id}`;
}
