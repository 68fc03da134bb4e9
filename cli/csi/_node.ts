/**
 * The CSI Node service: `NodePublishVolume` mounts the volume's folder at the target path with
 * `slayerfs mount --subdir` (`-o ro` for a read-only publish or access mode), one mount per
 * target; `NodeUnpublishVolume` unmounts it and removes the target folder;
 * `NodeGetVolumeStats` reports the folder's quota and usage. What is published where is kept in
 * `ROOT/node.json` (owner-only: it holds metadata URLs), so a restarted driver still answers.
 *
 * @module
 */

import { runVolumeAdmin } from "../_volume_admin.ts";
import { getQuota, isSlayerMount, mountSubdir, unmountSubdir } from "../_subvolumes.ts";
import {
  Code,
  CsiError,
  envFor,
  metaFor,
  readOnlyMode,
  required,
  unsupported,
  validVolumeId,
  type VolumeCapability,
  volumeDir,
} from "./_common.ts";

/** One publication on this node. */
interface Published {
  volumeId: string;
  readonly: boolean;
  meta: string;
}

/** The Node service's handlers, by RPC name. */
export class NodeService {
  readonly #nodeId: string;
  readonly #meta: string | undefined;
  readonly #root: string;
  readonly #published = new Map<string, Published>();
  readonly #chains = new Map<string, Promise<unknown>>();

  private constructor(nodeId: string, meta: string | undefined, root: string) {
    this.#nodeId = nodeId;
    this.#meta = meta;
    this.#root = root;
  }

  /** Opens the node's state in `root`: the publications whose mounts are still there. */
  static async open(nodeId: string, meta: string | undefined, root: string): Promise<NodeService> {
    await Deno.mkdir(`${root}/logs`, { recursive: true, mode: 0o700 });
    const n = new NodeService(nodeId, meta, root);
    try {
      const saved = JSON.parse(await Deno.readTextFile(n.#stateFile)) as Record<string, Published>;
      for (const [target, p] of Object.entries(saved)) {
        if (isSlayerMount(target)) n.#published.set(target, p);
      }
    } catch { /* first start */ }
    await n.#save();
    return n;
  }

  get #stateFile(): string {
    return `${this.#root}/node.json`;
  }

  async #save(): Promise<void> {
    const tmp = `${this.#stateFile}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify(Object.fromEntries(this.#published)), {
      mode: 0o600,
    });
    await Deno.rename(tmp, this.#stateFile);
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

  /** `NodePublishVolume`. */
  NodePublishVolume(req: {
    volume_id?: string;
    target_path?: string;
    volume_capability?: VolumeCapability | null;
    readonly?: boolean;
    secrets?: Record<string, string>;
    volume_context?: Record<string, string>;
  }): Promise<object> {
    const id = required(req.volume_id, "volume_id");
    const target = required(req.target_path, "target_path");
    const cap = required(req.volume_capability, "volume_capability");
    const why = unsupported(cap);
    if (why) throw new CsiError(Code.INVALID_ARGUMENT, why);
    if (!target.startsWith("/")) {
      throw new CsiError(Code.INVALID_ARGUMENT, `target_path "${target}" is not absolute`);
    }
    const ro = !!req.readonly || readOnlyMode(cap);
    const meta = metaFor(req.secrets, this.#meta);
    return this.#serial(target, async () => {
      if (isSlayerMount(target)) {
        const p = this.#published.get(target);
        if (p && p.volumeId === id && p.readonly === ro) return {};
        throw new CsiError(
          Code.ALREADY_EXISTS,
          p
            ? `target_path "${target}" already holds volume "${p.volumeId}"` +
              (p.volumeId === id ? ` (readonly ${p.readonly})` : "")
            : `target_path "${target}" is already a mount`,
        );
      }
      const env = envFor(req.secrets);
      const [dir] = validVolumeId(id)
        ? await runVolumeAdmin(meta, [{ op: "stat", path: volumeDir(id) }], env)
        : [];
      if (!dir?.exists || !dir.isDir) {
        throw new CsiError(Code.NOT_FOUND, `volume "${id}" does not exist`);
      }
      await mountSubdir(meta, volumeDir(id), target, {
        readonly: ro,
        log: `${this.#root}/logs/${id}.log`,
      }, env);
      this.#published.set(target, { volumeId: id, readonly: ro, meta });
      await this.#save();
      return {};
    });
  }

  /** `NodeUnpublishVolume`: unmounts and removes the target folder; already gone is fine. */
  NodeUnpublishVolume(req: { volume_id?: string; target_path?: string }): Promise<object> {
    required(req.volume_id, "volume_id");
    const target = required(req.target_path, "target_path");
    return this.#serial(target, async () => {
      if (isSlayerMount(target)) await unmountSubdir(target);
      if (this.#published.delete(target)) await this.#save();
      await Deno.remove(target).catch(() => {});
      return {};
    });
  }

  /** `NodeGetVolumeStats`: bytes and inodes from the folder's quota (else from statfs). */
  async NodeGetVolumeStats(req: { volume_id?: string; volume_path?: string }) {
    const id = required(req.volume_id, "volume_id");
    const path = required(req.volume_path, "volume_path");
    const p = this.#published.get(path);
    if (!p || p.volumeId !== id || !isSlayerMount(path)) {
      throw new CsiError(Code.NOT_FOUND, `volume "${id}" is not published at "${path}"`);
    }
    const q = await getQuota(p.meta, volumeDir(id));
    const fs = (q.capacity === null || q.inodes === null) ? await statfs(path) : undefined;
    const usage = (total: number, used: number, unit: string) => ({
      total,
      used,
      available: Math.max(0, total - used),
      unit,
    });
    return {
      usage: [
        usage(q.capacity ?? fs!.bytes, q.usedSpace, "BYTES"),
        usage(q.inodes ?? fs!.inodes, q.usedInodes, "INODES"),
      ],
      volume_condition: { abnormal: false, message: "" },
    };
  }

  /** `NodeGetCapabilities`. */
  NodeGetCapabilities() {
    return Promise.resolve({
      capabilities: ["GET_VOLUME_STATS"].map((type) => ({ rpc: { type } })),
    });
  }

  /** `NodeGetInfo`. */
  NodeGetInfo() {
    return Promise.resolve({ node_id: this.#nodeId, max_volumes_per_node: 0 });
  }
}

/** Total bytes and inodes of the filesystem at `path` (`df`). */
async function statfs(path: string): Promise<{ bytes: number; inodes: number }> {
  const out = await new Deno.Command("df", {
    args: ["-B1", "--output=size,itotal", path],
    stdout: "piped",
    stderr: "null",
  }).output();
  const [bytes = 0, inodes = 0] = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!
    .trim().split(/\s+/).map(Number);
  return { bytes, inodes };
}
