import assert from "node:assert/strict";
import { kvConformance } from "./kv_conformance.ts";
import { openKvEngine } from "./registry.ts";
import { parsePgUrl, PostgresKvEngine } from "./kv_postgres.ts";
import type { KvEngine } from "../core/kv.ts";
import { Errno, FsError } from "../core/errno.ts";
import { type PgTestServer, startPostgres } from "../tests/_postgres.ts";

let server: PgTestServer | undefined;
const urls = new WeakMap<KvEngine, string>();

async function pg(): Promise<PgTestServer> {
  return server ??= await startPostgres();
}

async function open(): Promise<KvEngine> {
  const url = await (await pg()).newDatabase();
  const kv = await openKvEngine(url);
  urls.set(kv, url);
  return kv;
}

kvConformance("postgres", open, {
  reopen: async (previous) => {
    const kv = await openKvEngine(urls.get(previous)!);
    urls.set(kv, urls.get(previous)!);
    return kv;
  },
});

const b = (text: string) => new TextEncoder().encode(text);
const num = (v: Uint8Array | undefined) =>
  v === undefined ? 0 : Number(new TextDecoder().decode(v));

Deno.test("parsePgUrl reads TCP and socket forms and refuses unknown parameters", () => {
  const tcp = parsePgUrl("postgresql://me:s%40cret@db.example:6543/meta?pool=3&connect_timeout=2");
  assert.equal(tcp.host, "db.example");
  assert.equal(tcp.port, 6543);
  assert.equal(tcp.password, "s@cret");
  assert.equal(tcp.pool, 3);
  assert.equal(tcp.connectTimeoutS, 2);
  assert.equal(tcp.socketPath, undefined);
  assert.equal(tcp.where, "db.example:6543");
  assert.equal(tcp.display, "postgresql://me:***@db.example:6543/meta?pool=3&connect_timeout=2");
  const sock = parsePgUrl("postgres://me@localhost/meta?host=/run/pg/&port=5433");
  assert.equal(sock.socketPath, "/run/pg/.s.PGSQL.5433");
  assert.equal(sock.user, "me");
  assert.equal(sock.retryTimeoutS, 60);
  assert.equal(parsePgUrl("postgres:///meta?host=/run/pg").socketPath, "/run/pg/.s.PGSQL.5432");
  assert.throws(() => parsePgUrl("postgres://h/db?frob=1"), /Unknown parameter "frob"/);
  assert.throws(() => parsePgUrl("postgres://h/"), /names no database/);
  assert.throws(() => parsePgUrl("postgres://h/db?pool=1.5"), /Invalid pool/);
  assert.throws(() => parsePgUrl("postgres://h/db?sslmode=maybe"), /Invalid sslmode/);
  assert.throws(() => parsePgUrl("postgres://u:pw@h:99999/db"), (err: Error) => {
    assert.doesNotMatch(err.message, /pw/, "the password is not shown");
    return true;
  });
});

Deno.test("postgres: a read is one round trip, a commit one, a transaction that does nothing none", async () => {
  const kv = await open();
  try {
    const trips = async (fn: Parameters<KvEngine["txn"]>[0], readOnly = false) => {
      const before = kv.roundTrips!;
      await kv.txn(fn, { readOnly });
      return kv.roundTrips! - before;
    };
    assert.equal(await trips(() => Promise.resolve()), 0);
    assert.equal(await trips((tx) => Promise.resolve(tx.set("a", b("1")))), 1);
    assert.equal(await trips((tx) => tx.get("a"), true), 1);
    assert.equal(await trips((tx) => tx.getMany(["a", "b", "c"]), true), 1);
    assert.equal(await trips((tx) => tx.scan("", { limit: 5 }), true), 1);
    assert.equal(
      await trips(async (tx) => {
        const n = num(await tx.get("a"));
        for (let i = 0; i < 50; i++) tx.set(`k/${i}`, b(String(n + i)));
        tx.delete("a");
      }),
      2,
    );
  } finally {
    await kv.close();
  }
});

Deno.test("postgres: two engines (two hosts) incrementing one counter lose no update", async () => {
  const url = await (await pg()).newDatabase();
  const engines = [await openKvEngine(url), await openKvEngine(url)];
  try {
    await Promise.all(
      engines.flatMap((kv) =>
        Array.from({ length: 40 }, () =>
          kv.txn(async (tx) => {
            tx.set("n", b(String(num(await tx.get("n")) + 1)));
          }))
      ),
    );
    assert.equal(num(await engines[0]!.txn((tx) => tx.get("n"))), 80);
  } finally {
    for (const kv of engines) await kv.close();
  }
});

Deno.test("postgres: a read-only open of an empty database creates nothing; read-only writes are EROFS", async () => {
  const url = await (await pg()).newDatabase();
  await assert.rejects(
    openKvEngine(url, { readOnly: true }),
    /holds no SlayerFS metadata: run slayerfs format first/,
  );
  await (await openKvEngine(url)).close(); // creates the schema
  const ro = await openKvEngine(url, { readOnly: true });
  try {
    await assert.rejects(
      ro.txn((tx) => Promise.resolve(tx.set("a", b("1")))),
      (err) => err instanceof FsError && err.errno === Errno.EROFS,
    );
  } finally {
    await ro.close();
  }
});

Deno.test("postgres: a connection dropped inside a transaction is not reused; the transaction runs again", async () => {
  const server = await pg();
  const url = await server.newDatabase();
  const db = new URL(url).pathname.slice(1);
  const kv = await openKvEngine(url);
  try {
    await kv.txn((tx) => Promise.resolve(tx.set("a", b("1"))));
    let runs = 0;
    await kv.txn(async (tx) => {
      runs++;
      const a = num(await tx.get("a"));
      if (runs === 1) {
        await server.query(
          "postgres",
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db}' AND pid <> pg_backend_pid()`,
        );
        await new Promise((r) => setTimeout(r, 200));
      }
      tx.set("a", b(String(a + 1)));
      tx.set("b", b(String(num(await tx.get("b")) + 1)));
    });
    assert.equal(runs, 2);
    assert.deepEqual(
      (await kv.txn((tx) => tx.getMany(["a", "b"]))).map(num),
      [2, 1],
    );
  } finally {
    await kv.close();
  }
});

Deno.test("postgres: transactions wait for a restarting server, and fail with EIO after retry_timeout", async () => {
  const server = await pg();
  const url = await server.newDatabase();
  // A restart can take long on a loaded machine: this engine waits for it.
  const kv = await openKvEngine(`${url}&retry_timeout=600`);
  const short = await PostgresKvEngine.open(`${url}&retry_timeout=1`);
  try {
    await kv.txn((tx) => Promise.resolve(tx.set("a", b("1"))));
    await server.halt("immediate");
    const waiting = kv.txn(async (tx) => {
      tx.set("a", b(String(num(await tx.get("a")) + 1)));
    });
    await assert.rejects(
      short.txn((tx) => tx.get("a")),
      (err) => err instanceof FsError && err.errno === Errno.EIO && /unavailable/.test(err.message),
    );
    await new Promise((r) => setTimeout(r, 1000));
    await server.start();
    await waiting;
    assert.equal(num(await kv.txn((tx) => tx.get("a"))), 2);
    assert.equal(num(await short.txn((tx) => tx.get("a"))), 2, "the short engine recovers too");
  } finally {
    await server.start();
    await short.close();
    await kv.close();
  }
});

Deno.test("postgres: volumes in schemas of one database are apart; foreign tables elsewhere do not matter", async () => {
  const server = await pg();
  const base = await server.newDatabase();
  const db = new URL(base).pathname.slice(1);
  await server.query(db, "CREATE TABLE public.other_app (id integer)");
  await assert.rejects(openKvEngine(base), /holds tables that are not SlayerFS's \(other_app\)/);
  const a = await openKvEngine(`${base}&schema=vol_a`);
  const c = await openKvEngine(`${base}&schema=vol_b`);
  try {
    await a.txn((tx) => Promise.resolve(tx.set("k", b("a"))));
    await c.txn((tx) => Promise.resolve(tx.set("k", b("b"))));
    assert.equal(new TextDecoder().decode(await a.txn((tx) => tx.get("k"))), "a");
    assert.equal(new TextDecoder().decode(await c.txn((tx) => tx.get("k"))), "b");
    const schemas = await server.query(
      db,
      "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables " +
        "WHERE table_name LIKE 'slayerfs%' ORDER BY 1",
    );
    assert.deepEqual(schemas.map((r) => r["t"]), [
      "vol_a.slayerfs_kv",
      "vol_a.slayerfs_schema",
      "vol_b.slayerfs_kv",
      "vol_b.slayerfs_schema",
    ]);
  } finally {
    await a.close();
    await c.close();
  }
  assert.throws(() => parsePgUrl(`${base}&schema=Bad-Name`), /Invalid schema "Bad-Name"/);
});

Deno.test("postgres: stop the private server", async () => {
  await server?.stop();
});
