import { kvConformance } from "./kv_conformance.ts";
import { openKvEngine } from "./registry.ts";
import type { KvEngine } from "../core/kv.ts";
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

Deno.test("postgres: stop the private server", async () => {
  await server?.stop();
});
