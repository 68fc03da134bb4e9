/**
 * The Docker volumes of `slayerfs docker-plugin`: each is the folder `/docker-volumes/NAME` of a
 * SlayerFS volume (the plugin's `--meta`, or the one a volume's `meta` option names) with an
 * optional quota, mounted with `slayerfs mount --subdir` at `ROOT/NAME` while any container
 * uses it. Each volume's options are kept in the plugin's volume at
 * `/docker-volumes/.options/NAME.json`, so every plugin sharing that volume (global scope) sees
 * the same volumes. The mounts' holders (Docker's mount IDs) are kept in `ROOT/.mounts.json`
 * and checked against /proc/self/mountinfo when the plugin starts again.
 *
 * @module
 */

import { parseSize } from "../core/format.ts";
import { type AdminOp, type AdminResult, runVolumeAdmin } from "./_volume_admin.ts";
import {
  deleteQuota,
  getQuota,
  isSlayerMount,
  mountSubdir,
  setQuota,
  slayerMountsUnder,
  unmountSubdir,
} from "./_subvolumes.ts";

/** The folder holding every Docker volume's folder. */
export const VOLUMES_DIR = "/docker-volumes";
/** The folder of the volumes' option records (a name never starts with a dot). */
const OPTIONS_DIR = `${VOLUMES_DIR}/.options`;

/** What `docker volume create -o` may set. */
export interface VolumeOptions {
  /** The quota in bytes. */
  capacity?: number;
  /** The inode quota. */
  inodes?: number;
  /** Mount read-only. */
  ro?: boolean;
  /** Another SlayerFS volume to keep this one in. */
  meta?: string;
}

/** A volume's record. */
interface VolumeRecord extends VolumeOptions {
  name: string;
  created: string;
}

/** An error answered to Docker as `{"Err": message}`. */
export class DockerVolumeError extends Error {}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Parses `docker volume create -o` options; an unknown or bad one is an error. */
export function parseVolumeOptions(opts: Record<string, string> | null | undefined): VolumeOptions {
  const out: VolumeOptions = {};
  for (const [k, v] of Object.entries(opts ?? {})) {
    if (k === "capacity" || k === "size") {
      try {
        out.capacity = parseSize(v);
      } catch {
        throw new DockerVolumeError(`Invalid capacity "${v}": expected a size such as 1G`);
      }
    } else if (k === "inodes") {
      if (!/^\d+$/.test(v) || Number(v) < 1) {
        throw new DockerVolumeError(`Invalid inodes "${v}": expected a whole number >= 1`);
      }
      out.inodes = Number(v);
    } else if (k === "ro" || k === "readonly") {
      if (!["", "true", "false", "1", "0"].includes(v)) {
        throw new DockerVolumeError(`Invalid ro "${v}": expected true or false`);
      }
      out.ro = v === "" || v === "true" || v === "1";
    } else if (k === "meta") {
      if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
        throw new DockerVolumeError(`Invalid meta "${v}": expected a metadata URL`);
      }
      out.meta = v;
    } else {
      throw new DockerVolumeError(`Unknown option "${k}": capacity, inodes, ro or meta`);
    }
  }
  return out;
}

function sameOptions(a: VolumeOptions, b: VolumeOptions): boolean {
  return a.capacity === b.capacity && a.inodes === b.inodes && !!a.ro === !!b.ro &&
    a.meta === b.meta;
}

/** The plugin's volumes. */
export class DockerVolumes {
  readonly #meta: string;
  readonly #root: string;
  /** Mount holders (Docker's mount IDs) by volume name, for the volumes mounted now. */
  readonly #holders = new Map<string, Set<string>>();
  /** One chain of work per volume name: calls on one volume run one at a time. */
  readonly #chains = new Map<string, Promise<unknown>>();

  private constructor(meta: string, root: string) {
    this.#meta = meta;
    this.#root = root;
  }

  /** Opens the plugin's state in `root`, rebuilt from the state file and the mount table. */
  static async open(meta: string, root: string): Promise<DockerVolumes> {
    await Deno.mkdir(root, { recursive: true, mode: 0o700 });
    const v = new DockerVolumes(meta, root);
    let saved: Record<string, string[]> = {};
    try {
      saved = JSON.parse(await Deno.readTextFile(v.#stateFile)).mounts ?? {};
    } catch { /* first start */ }
    const mounted = new Set(slayerMountsUnder(root));
    for (const mnt of mounted) {
      const name = mnt.slice(root.length + 1);
      if (NAME.test(name)) v.#holders.set(name, new Set(saved[name] ?? []));
    }
    await v.#save();
    return v;
  }

  /** The scope Docker is told: `global` when other hosts can share the volume. */
  get scope(): "global" | "local" {
    return /^(sqlite3|mem|file):/.test(this.#meta) ? "local" : "global";
  }

  get #stateFile(): string {
    return `${this.#root}/.mounts.json`;
  }

  async #save(): Promise<void> {
    const mounts = Object.fromEntries([...this.#holders].map(([k, s]) => [k, [...s]]));
    const tmp = `${this.#stateFile}.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify({ mounts }), { mode: 0o600 });
    await Deno.rename(tmp, this.#stateFile);
  }

  /** Runs `fn` after every earlier call on volume `name`. */
  #serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    if (!NAME.test(name)) {
      return Promise.reject(new DockerVolumeError(`Invalid volume name "${name}"`));
    }
    const prev = this.#chains.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => {});
    this.#chains.set(name, tail);
    tail.then(() => {
      if (this.#chains.get(name) === tail) this.#chains.delete(name);
    });
    return next;
  }

  #admin(ops: AdminOp[], meta = this.#meta): Promise<AdminResult[]> {
    return runVolumeAdmin(meta, ops);
  }

  /** The record of volume `name` (a bare folder counts, with no options), if it exists. */
  async #record(name: string): Promise<VolumeRecord | undefined> {
    const [rec, dir] = await this.#admin([
      { op: "read", path: `${OPTIONS_DIR}/${name}.json` },
      { op: "stat", path: `${VOLUMES_DIR}/${name}` },
    ]);
    if (rec?.text) return JSON.parse(rec.text) as VolumeRecord;
    if (dir?.exists && dir.isDir) return { name, created: "" };
    return undefined;
  }

  /** The mountpoint of volume `name`. */
  mountpoint(name: string): string {
    return `${this.#root}/${name}`;
  }

  /** `VolumeDriver.Create`: makes the folder and its quota; the same options again are fine. */
  create(name: string, opts: Record<string, string> | null | undefined): Promise<void> {
    return this.#serial(name, async () => {
      const want = parseVolumeOptions(opts);
      const have = await this.#record(name);
      // A folder without a record is a creation cut short (or a folder made by hand): finish it.
      if (have?.created) {
        if (sameOptions(have, want)) return;
        throw new DockerVolumeError(`Volume "${name}" already exists with other options`);
      }
      const meta = want.meta ?? this.#meta;
      const path = `${VOLUMES_DIR}/${name}`;
      await this.#admin([{ op: "mkdirp", path }], meta);
      if (want.capacity !== undefined || want.inodes !== undefined) {
        await setQuota(meta, path, want);
      }
      const rec: VolumeRecord = { name, ...want, created: new Date().toISOString() };
      await this.#admin([
        { op: "write", path: `${OPTIONS_DIR}/${name}.json`, text: JSON.stringify(rec) },
      ]);
    });
  }

  /** `VolumeDriver.Remove`: deletes the folder, everything in it and its quota. */
  remove(name: string): Promise<void> {
    return this.#serial(name, async () => {
      if (this.#holders.has(name)) throw new DockerVolumeError(`Volume "${name}" is in use`);
      const rec = await this.#record(name);
      if (!rec) throw new DockerVolumeError(`No such volume "${name}"`);
      const meta = rec.meta ?? this.#meta;
      const path = `${VOLUMES_DIR}/${name}`;
      if (rec.capacity !== undefined || rec.inodes !== undefined) {
        await deleteQuota(meta, path);
      }
      await this.#admin([{ op: "rmrf", path }], meta);
      await this.#admin([{ op: "rmrf", path: `${OPTIONS_DIR}/${name}.json` }]);
      await Deno.remove(this.mountpoint(name)).catch(() => {});
    });
  }

  /** `VolumeDriver.Mount`: mounts the volume once, however many holders it has. */
  mount(name: string, id: string): Promise<string> {
    return this.#serial(name, async () => {
      const mnt = this.mountpoint(name);
      const holders = this.#holders.get(name);
      if (holders && isSlayerMount(mnt)) {
        holders.add(id);
        await this.#save();
        return mnt;
      }
      const rec = await this.#record(name);
      if (!rec) throw new DockerVolumeError(`No such volume "${name}"`);
      if (isSlayerMount(mnt)) await unmountSubdir(mnt); // a dead or stray mount
      await mountSubdir(rec.meta ?? this.#meta, `${VOLUMES_DIR}/${name}`, mnt, {
        readonly: rec.ro ?? false,
        log: `${this.#root}/.logs/${name}.log`,
      });
      this.#holders.set(name, new Set([id]));
      await this.#save();
      return mnt;
    });
  }

  /** `VolumeDriver.Unmount`: drops holder `id`; the last one unmounts. */
  unmount(name: string, id: string): Promise<void> {
    return this.#serial(name, async () => {
      const holders = this.#holders.get(name);
      if (!holders) return;
      holders.delete(id);
      if (holders.size === 0) {
        await unmountSubdir(this.mountpoint(name));
        this.#holders.delete(name);
      }
      await this.#save();
    });
  }

  /** `VolumeDriver.Path`: the mountpoint while mounted, else "". */
  path(name: string): string {
    return this.#holders.has(name) ? this.mountpoint(name) : "";
  }

  /** `VolumeDriver.Get`: the volume with its quota usage as status. */
  get(name: string): Promise<{ Name: string; Mountpoint: string; Status: object }> {
    return this.#serial(name, async () => {
      const rec = await this.#record(name);
      if (!rec) throw new DockerVolumeError(`No such volume "${name}"`);
      const status: Record<string, unknown> = {
        meta: (rec.meta ?? this.#meta).replace(/\/\/[^/@]*@/, "//***@"),
        readonly: rec.ro ?? false,
      };
      if (rec.capacity !== undefined || rec.inodes !== undefined) {
        const q = await getQuota(rec.meta ?? this.#meta, `${VOLUMES_DIR}/${name}`)
          .catch(() => undefined);
        if (q) Object.assign(status, { quota: q });
      }
      return { Name: name, Mountpoint: this.path(name), Status: status };
    });
  }

  /** `VolumeDriver.List`: every volume (records, and bare folders under /docker-volumes). */
  async list(): Promise<{ Name: string; Mountpoint: string }[]> {
    const [recs, dirs] = await this.#admin([
      { op: "list", path: OPTIONS_DIR },
      { op: "list", path: VOLUMES_DIR },
    ]);
    const names = new Set<string>();
    for (const n of recs?.names ?? []) if (n.endsWith(".json")) names.add(n.slice(0, -5));
    for (const n of dirs?.names ?? []) if (NAME.test(n)) names.add(n);
    return [...names].filter((n) => NAME.test(n)).sort()
      .map((n) => ({ Name: n, Mountpoint: this.path(n) }));
  }
}
