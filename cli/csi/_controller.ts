/**
 * The CSI Controller service: a volume is the folder `/csi-volumes/ID` of a SlayerFS volume,
 * with a quota of the requested capacity; its record (`/csi-volumes/.records/ID.json`: name,
 * capacity, parameters) makes `CreateVolume` idempotent and tells a name reused with other
 * parameters (`ALREADY_EXISTS`).
 *
 * @module
 */

import { runVolumeAdmin } from "../_volume_admin.ts";
import { deleteQuota, setQuota } from "../_subvolumes.ts";
import {
  Code,
  CSI_RECORDS_DIR,
  CsiError,
  envFor,
  metaFor,
  required,
  unsupported,
  validVolumeId,
  type VolumeCapability,
  volumeDir,
  volumeIdFor,
} from "./_common.ts";

/** A volume's record. */
interface VolumeRecord {
  name: string;
  id: string;
  capacity: number;
  parameters: Record<string, string>;
  created: string;
}

type Secrets = Record<string, string> | undefined;

/** A `CapacityRange` as decoded (int64 as strings). */
interface CapacityRange {
  required_bytes?: string | number;
  limit_bytes?: string | number;
}

/** The bytes a capacity range asks for (0: no limit); `OUT_OF_RANGE` when it contradicts. */
function capacityOf(range: CapacityRange | null | undefined): number {
  const req = Number(range?.required_bytes ?? 0);
  const limit = Number(range?.limit_bytes ?? 0);
  if (req < 0 || limit < 0) throw new CsiError(Code.INVALID_ARGUMENT, "negative capacity");
  if (limit > 0 && req > limit) {
    throw new CsiError(
      Code.OUT_OF_RANGE,
      `required_bytes ${req} is more than limit_bytes ${limit}`,
    );
  }
  return req || limit;
}

function checkCapabilities(caps: VolumeCapability[]): void {
  for (const cap of caps) {
    const why = unsupported(cap);
    if (why) throw new CsiError(Code.INVALID_ARGUMENT, why);
  }
}

function sameParameters(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** The Controller service's handlers, by RPC name. */
export class ControllerService {
  readonly #meta: string | undefined;
  /** One call at a time per volume name. */
  readonly #chains = new Map<string, Promise<unknown>>();

  /** Creates the service; `meta` is the driver's `--meta`. */
  constructor(meta: string | undefined) {
    this.#meta = meta;
  }

  #serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.#chains.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = next.catch(() => {});
    this.#chains.set(key, tail);
    tail.then(() => {
      if (this.#chains.get(key) === tail) this.#chains.delete(key);
    });
    return next;
  }

  async #record(meta: string, id: string, secrets: Secrets): Promise<VolumeRecord | undefined> {
    const [rec, dir] = await runVolumeAdmin(meta, [
      { op: "read", path: `${CSI_RECORDS_DIR}/${id}.json` },
      { op: "stat", path: volumeDir(id) },
    ], envFor(secrets));
    if (rec?.text) return JSON.parse(rec.text) as VolumeRecord;
    // A folder without a record: made by hand (static provisioning), no quota.
    if (dir?.exists && dir.isDir) return { name: id, id, capacity: 0, parameters: {}, created: "" };
    return undefined;
  }

  async #write(meta: string, rec: VolumeRecord, secrets: Secrets): Promise<void> {
    await runVolumeAdmin(meta, [
      { op: "write", path: `${CSI_RECORDS_DIR}/${rec.id}.json`, text: JSON.stringify(rec) },
    ], envFor(secrets));
  }

  /** `CreateVolume`. */
  async CreateVolume(req: {
    name?: string;
    capacity_range?: CapacityRange | null;
    volume_capabilities?: VolumeCapability[];
    parameters?: Record<string, string>;
    secrets?: Record<string, string>;
    volume_content_source?: unknown;
  }): Promise<object> {
    const name = required(req.name, "name");
    checkCapabilities(required(req.volume_capabilities, "volume_capabilities"));
    const capacity = capacityOf(req.capacity_range);
    const parameters = req.parameters ?? {};
    const meta = metaFor(req.secrets, this.#meta);
    const id = await volumeIdFor(name);
    return await this.#serial(id, async () => {
      const have = await this.#record(meta, id, req.secrets);
      // A folder without a record is a creation cut short (or a folder made by hand): finish it.
      if (have?.created) {
        if (have.name !== name || have.capacity !== capacity) {
          throw new CsiError(
            Code.ALREADY_EXISTS,
            `volume "${name}" exists with another capacity (${have.capacity} bytes)`,
          );
        }
        if (!sameParameters(have.parameters, parameters)) {
          throw new CsiError(Code.ALREADY_EXISTS, `volume "${name}" exists with other parameters`);
        }
      } else {
        const env = envFor(req.secrets);
        await runVolumeAdmin(meta, [{ op: "mkdirp", path: volumeDir(id) }], env);
        if (capacity > 0) await setQuota(meta, volumeDir(id), { capacity }, env);
        await this.#write(meta, {
          name,
          id,
          capacity,
          parameters,
          created: new Date().toISOString(),
        }, req.secrets);
      }
      return {
        volume: {
          capacity_bytes: capacity,
          volume_id: id,
          volume_context: { subdir: volumeDir(id) },
        },
      };
    });
  }

  /** `DeleteVolume`: a volume already gone is fine. */
  async DeleteVolume(req: { volume_id?: string; secrets?: Record<string, string> }) {
    const id = required(req.volume_id, "volume_id");
    if (!validVolumeId(id)) return {}; // never one of ours, so nothing to delete
    const meta = metaFor(req.secrets, this.#meta);
    return await this.#serial(id, async () => {
      const rec = await this.#record(meta, id, req.secrets);
      if (!rec) return {};
      const env = envFor(req.secrets);
      if (rec.capacity > 0) await deleteQuota(meta, volumeDir(id), env);
      await runVolumeAdmin(meta, [
        { op: "rmrf", path: volumeDir(id) },
        { op: "rmrf", path: `${CSI_RECORDS_DIR}/${id}.json` },
      ], env);
      return {};
    });
  }

  /** `ValidateVolumeCapabilities`. */
  async ValidateVolumeCapabilities(req: {
    volume_id?: string;
    volume_context?: Record<string, string>;
    volume_capabilities?: VolumeCapability[];
    parameters?: Record<string, string>;
    secrets?: Record<string, string>;
  }) {
    const id = required(req.volume_id, "volume_id");
    const caps = required(req.volume_capabilities, "volume_capabilities");
    const meta = metaFor(req.secrets, this.#meta);
    if (!validVolumeId(id) || !await this.#record(meta, id, req.secrets)) {
      throw new CsiError(Code.NOT_FOUND, `volume "${id}" does not exist`);
    }
    const why = caps.map(unsupported).find((w) => w !== undefined);
    if (why) return { message: why };
    return {
      confirmed: {
        volume_context: req.volume_context ?? {},
        volume_capabilities: caps,
        parameters: req.parameters ?? {},
      },
    };
  }

  /** `ControllerGetCapabilities`. */
  ControllerGetCapabilities() {
    return Promise.resolve({
      capabilities: ["CREATE_DELETE_VOLUME", "EXPAND_VOLUME"].map((type) => ({ rpc: { type } })),
    });
  }

  /** `ControllerExpandVolume`: raises the quota (online; nothing to do on the node). */
  async ControllerExpandVolume(req: {
    volume_id?: string;
    capacity_range?: CapacityRange | null;
    secrets?: Record<string, string>;
  }) {
    const id = required(req.volume_id, "volume_id");
    const capacity = capacityOf(required(req.capacity_range, "capacity_range"));
    if (capacity <= 0) throw new CsiError(Code.INVALID_ARGUMENT, "capacity_range asks for 0 bytes");
    const meta = metaFor(req.secrets, this.#meta);
    if (!validVolumeId(id)) throw new CsiError(Code.NOT_FOUND, `volume "${id}" does not exist`);
    return await this.#serial(id, async () => {
      const rec = await this.#record(meta, id, req.secrets);
      if (!rec) throw new CsiError(Code.NOT_FOUND, `volume "${id}" does not exist`);
      if (rec.capacity === 0 || capacity > rec.capacity) {
        await setQuota(meta, volumeDir(id), { capacity }, envFor(req.secrets));
        await this.#write(meta, { ...rec, capacity }, req.secrets);
        return { capacity_bytes: capacity, node_expansion_required: false };
      }
      return { capacity_bytes: rec.capacity, node_expansion_required: false };
    });
  }
}
