/**
 * The etcd engine against a private etcd started by the test: the conformance suite, and what is
 * particular to etcd (scans in the read set, URL errors, foreign data under the prefix).
 *
 * @module
 */

import assert from "node:assert/strict";
import { kvConformance } from "./kv_conformance.ts";
import { EtcdKvEngine } from "./kv_etcd.ts";
import { startEtcd } from "../tests/_etcd.ts";

const etcd = await startEtcd();
let n = 0;
const newUrl = () => etcd.url(`conformance${++n}`);

// The last test stops the server. When it does not run (a filter, a failure), etcd dies with
// this process (see tests/_etcd.ts) and its data goes here.
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(etcd.directory, { recursive: true });
  } catch { /* already removed */ }
});

kvConformance("etcd", () => EtcdKvEngine.open(newUrl()), {
  reopen: (kv) => EtcdKvEngine.open((kv as EtcdKvEngine).url),
});

Deno.test("etcd: stop the private server", async () => {
  await etcd.stop();
  assert.ok(true);
});
