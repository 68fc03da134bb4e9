/**
 * Backends by URL scheme: `openKvEngine("sqlite3:///var/lib/slayerfs/meta.db")`,
 * `openBlockStore("file:///var/lib/slayerfs/blocks")`.
 *
 * Decisions: a scheme is a name mapped to a factory in a table, not a `switch`, so a backend
 * can be added ({@linkcode registerKvScheme}, {@linkcode registerStoreScheme}) without changing
 * the code that opens URLs. The built-in schemes are registered by this module, and no backend
 * module imports it back. The `s3://` factory loads `store_s3.ts` with a dynamic `import()` on
 * first use, which keeps the AWS SDK out of runs that never touch S3 (`deno compile` needs
 * `--include backends/store_s3.ts` for it, see the `compile` task); the `redis://`, `rediss://`
 * and `redis+unix://` factories load `kv_redis.ts` (and ioredis), the `etcd://` factory
 * `kv_etcd.ts` (and npm `etcd3`), and the `postgres://` and `postgresql://` factories
 * `kv_postgres.ts` (and the npm `postgres` client), the same way. `mem://NAME` URLs with the
 * same name share one engine or store in this process (a new handle each time), so tests can
 * close and reopen in-process.
 *
 * @module
 */

import type { BlockStore } from "../core/block_store.ts";
import type { KvEngine } from "../core/kv.ts";
import { MemoryKvEngine } from "./kv_memory.ts";
import { SqliteKvEngine } from "./kv_sqlite.ts";
import { FileBlockStore } from "./store_file.ts";
import { MemoryBlockStore } from "./store_memory.ts";
import { urlFlag } from "./_url.ts";

/** A bad or unknown backend URL. */
export class BackendError extends Error {
  /** The URL as given. */
  readonly url: string;
  /** Creates the error for `url`. */
  constructor(url: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackendError";
    this.url = url;
  }
}

/** Options of {@linkcode openKvEngine}; each engine uses those it understands. */
export interface OpenKvOptions {
  /** Open for reading only (writes fail with `EROFS`). */
  readOnly?: boolean;
  /** Make each commit survive a power cut (SQLite: `synchronous=FULL`). */
  durable?: boolean;
  /** How long to wait for another process's lock, in ms. */
  busyTimeoutMs?: number;
}

/** Options of {@linkcode openBlockStore}; each store uses those it understands. */
export interface OpenStoreOptions {
  /** Make each put survive a power cut (file: fsync before rename). */
  durable?: boolean;
  /**
   * Check at open that the store answers (S3: the bucket exists and may be listed). Default
   * true; `false` opens a store that is down, whose requests then fail until it is back.
   */
  verify?: boolean;
}

/**
 * Opens a metadata engine for a parsed URL (`url.protocol` is the factory's scheme); `raw` is the
 * URL as given (for a multi-host authority such as `etcd://h1:2379,h2:2379/p`, which `url` has
 * with its first host only).
 */
export type KvFactory = (url: URL, options: OpenKvOptions, raw: string) => Promise<KvEngine>;
/** Opens a block store for a parsed URL (`url.protocol` is the factory's scheme). */
export type StoreFactory = (url: URL, options: OpenStoreOptions) => Promise<BlockStore>;

const kvFactories = new Map<string, KvFactory>();
const storeFactories = new Map<string, StoreFactory>();
const memoryKv = new Map<string, MemoryKvEngine>();
const memoryStores = new Map<string, MemoryBlockStore>();

function register<F>(table: Map<string, F>, kind: string, name: string, factory: F): void {
  if (!/^[a-z][a-z0-9+.-]*$/.test(name)) {
    throw new TypeError(`Invalid ${kind} scheme name "${name}"`);
  }
  if (table.has(name)) throw new Error(`The ${kind} scheme "${name}" is already registered`);
  table.set(name, factory);
}

/**
 * Makes `openKvEngine("NAME://...")` call `factory`. Throws if `name` is already registered.
 *
 * @example
 * ```ts
 * import { MemoryKvEngine } from "./kv_memory.ts";
 * import { openKvEngine, registerKvScheme } from "./registry.ts";
 * registerKvScheme("example-kv", () => Promise.resolve(new MemoryKvEngine()));
 * const kv = await openKvEngine("example-kv://anything");
 * await kv.close();
 * ```
 */
export function registerKvScheme(name: string, factory: KvFactory): void {
  register(kvFactories, "metadata", name, factory);
}

/** Makes `openBlockStore("NAME://...")` call `factory`. Throws if `name` is already registered. */
export function registerStoreScheme(name: string, factory: StoreFactory): void {
  register(storeFactories, "storage", name, factory);
}

/** The known metadata schemes, in the order they were registered. */
export function kvSchemes(): string[] {
  return [...kvFactories.keys()];
}

/** The known storage schemes, in the order they were registered. */
export function storeSchemes(): string[] {
  return [...storeFactories.keys()];
}

function parse<F>(url: string, kind: string, table: Map<string, F>): { url: URL; factory: F } {
  const known = [...table.keys()].join(", ");
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new BackendError(url, `The ${kind} URL "${url}" has no scheme: expected one of ${known}`);
  }
  const factory = table.get(scheme);
  if (factory === undefined) {
    throw new BackendError(
      url,
      `Unknown ${kind} scheme "${scheme}": expected one of ${known}`,
    );
  }
  try {
    return { url: new URL(url), factory };
  } catch (cause) {
    // A multi-host authority (`h1:p1,h2:p2`) is no WHATWG URL: parse it with its first host.
    const first = url.replace(/^([^:]*:\/\/(?:[^@/?#]*@)?[^,/?#]*),[^/?#]*/, "$1");
    if (first !== url && URL.canParse(first)) return { url: new URL(first), factory };
    throw new BackendError(url, `Invalid ${kind} URL "${url}"`, { cause });
  }
}

/**
 * Opens the metadata engine that `url` names: `sqlite3:///ABS/PATH.db` (query `?durable=1`,
 * `?readonly=1` allowed), `mem://` (a new engine) or `mem://NAME` (shared by name in this
 * process), `etcd://[USER:PASS@]HOST:PORT[,HOST:PORT]/PREFIX` (see `kv_etcd.ts`, loaded on
 * first use), or any registered scheme. Throws {@linkcode BackendError} for a bad URL.
 *
 * @example
 * ```ts
 * import { openKvEngine } from "./registry.ts";
 * const a = await openKvEngine("mem://doc-example");
 * await a.txn(async (tx) => tx.set("k", new Uint8Array([7])));
 * await a.close();
 * const b = await openKvEngine("mem://doc-example"); // same data
 * if ((await b.txn((tx) => tx.get("k")))?.[0] !== 7) throw new Error("unexpected");
 * await b.close();
 * ```
 */
export async function openKvEngine(url: string, options: OpenKvOptions = {}): Promise<KvEngine> {
  const parsed = parse(url, "metadata", kvFactories);
  return await parsed.factory(parsed.url, options, url);
}

/**
 * Opens the block store that `url` names: `file:///ABS/DIR` (created if missing; query
 * `?durable=1` allowed), `mem://` (a new store) or `mem://NAME` (shared by name in this
 * process), `s3://BUCKET/PREFIX?...` (see `store_s3.ts`, loaded on first use), or any
 * registered scheme. Throws {@linkcode BackendError} for a bad URL.
 *
 * @example
 * ```ts
 * import { openBlockStore } from "./registry.ts";
 * const store = await openBlockStore("mem://");
 * await store.put("a", new Uint8Array([1]));
 * await store.close();
 * ```
 */
export async function openBlockStore(
  url: string,
  options: OpenStoreOptions = {},
): Promise<BlockStore> {
  const parsed = parse(url, "storage", storeFactories);
  return await parsed.factory(parsed.url, options);
}

/** Forgets the named `mem://` engines and stores, so later opens start empty. */
export function dropMemoryBackends(): void {
  memoryKv.clear();
  memoryStores.clear();
}

/** {@linkcode urlFlag}, failing with a {@linkcode BackendError}. */
function flag(url: URL, name: string): boolean | undefined {
  try {
    return urlFlag(url, name);
  } catch (cause) {
    throw new BackendError(url.href, `${(cause as Error).message} in "${url.href}"`, { cause });
  }
}

function checkQuery(url: URL, allowed: readonly string[]): void {
  for (const key of url.searchParams.keys()) {
    if (!allowed.includes(key)) {
      throw new BackendError(
        url.href,
        `Unknown parameter "${key}" in "${url.href}": expected one of ${
          allowed.join(", ") || "none"
        }`,
      );
    }
  }
}

/** The absolute local path of a `scheme:///path` URL. */
function localPath(url: URL, example: string): string {
  const path = decodeURIComponent(url.pathname);
  if ((url.host !== "" && url.host !== "localhost") || !path.startsWith("/") || path === "/") {
    throw new BackendError(
      url.href,
      `The URL "${url.href}" must name an absolute path, e.g. ${example}`,
    );
  }
  return path;
}

function memoryName(url: URL): string {
  checkQuery(url, []);
  return url.host + (url.pathname === "/" ? "" : decodeURIComponent(url.pathname));
}

registerKvScheme("sqlite3", async (url, options) => {
  checkQuery(url, ["durable", "readonly"]);
  const path = localPath(url, "sqlite3:///var/lib/slayerfs/meta.db");
  const durable = options.durable ?? flag(url, "durable");
  const readOnly = options.readOnly ?? flag(url, "readonly");
  return await SqliteKvEngine.open(path, {
    ...(durable === undefined ? {} : { durable }),
    ...(readOnly === undefined ? {} : { readOnly }),
    ...(options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs }),
  });
});

registerKvScheme("mem", (url) => {
  const name = memoryName(url);
  if (name === "") return Promise.resolve(new MemoryKvEngine());
  let origin = memoryKv.get(name);
  if (origin === undefined) memoryKv.set(name, origin = new MemoryKvEngine());
  return Promise.resolve(origin.share());
});

const openEtcd: KvFactory = async (_url, options, raw) => {
  let etcd: typeof import("./kv_etcd.ts");
  try {
    etcd = await import("./kv_etcd.ts");
  } catch (cause) {
    throw new BackendError(raw, `Cannot load the metadata engine for "etcd"`, { cause });
  }
  try {
    return await etcd.EtcdKvEngine.open(raw, options.readOnly ? { readOnly: true } : {});
  } catch (err) {
    if (err instanceof etcd.EtcdUrlError) throw new BackendError(raw, err.message, { cause: err });
    throw err;
  }
};
registerKvScheme("etcd", openEtcd);
registerKvScheme("etcds", openEtcd);

/** Opens a Redis engine, loading `kv_redis.ts` (and ioredis) on first use. */
async function openRedis(url: URL, options: OpenKvOptions): Promise<KvEngine> {
  let redis: typeof import("./kv_redis.ts");
  try {
    redis = await import("./kv_redis.ts");
  } catch (cause) {
    throw new BackendError(url.href, `Cannot load the metadata engine for "redis"`, { cause });
  }
  let target: ReturnType<typeof redis.parseRedisUrl>;
  try {
    target = redis.parseRedisUrl(url.href);
  } catch (cause) {
    throw new BackendError(url.href, (cause as Error).message, { cause });
  }
  return await redis.RedisKvEngine.open(target, options.readOnly ? { readOnly: true } : {});
}

for (const scheme of ["redis", "rediss", "redis+unix"]) registerKvScheme(scheme, openRedis);

registerStoreScheme("file", async (url, options) => {
  checkQuery(url, ["durable"]);
  const dir = localPath(url, "file:///var/lib/slayerfs/blocks");
  const durable = options.durable ?? flag(url, "durable");
  return await FileBlockStore.open(dir, durable === undefined ? {} : { durable });
});

registerStoreScheme("mem", (url) => {
  const name = memoryName(url);
  if (name === "") return Promise.resolve(new MemoryBlockStore());
  let origin = memoryStores.get(name);
  if (origin === undefined) memoryStores.set(name, origin = new MemoryBlockStore(name));
  return Promise.resolve(origin.share());
});

registerStoreScheme("s3", async (url, options) => {
  let s3: typeof import("./store_s3.ts");
  try {
    s3 = await import("./store_s3.ts");
  } catch (cause) {
    throw new BackendError(url.href, `Cannot load the storage backend for "s3"`, { cause });
  }
  if (options.verify === false) return new s3.S3BlockStore(url.href);
  return await s3.openS3BlockStore(url.href);
});

/**
 * `postgres://` and `postgresql://`: loads `kv_postgres.ts` (and the npm `postgres` client) on
 * first use. A malformed URL or an unknown parameter is a {@linkcode BackendError}.
 */
async function openPostgres(url: URL, options: OpenKvOptions): Promise<KvEngine> {
  let pg: typeof import("./kv_postgres.ts");
  try {
    pg = await import("./kv_postgres.ts");
  } catch (cause) {
    throw new BackendError(url.href, `Cannot load the metadata engine for "postgres"`, { cause });
  }
  let config: import("./kv_postgres.ts").PgConfig;
  try {
    config = pg.parsePgUrl(url.href);
  } catch (cause) {
    throw new BackendError(url.href, (cause as Error).message, { cause });
  }
  return await pg.PostgresKvEngine.open(config, options.readOnly ? { readOnly: true } : {});
}

registerKvScheme("postgres", openPostgres);
registerKvScheme("postgresql", openPostgres);
