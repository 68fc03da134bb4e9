/**
 * Traces of a real mount (issue #12, "Logs and traces"): with `OTEL_DENO=true` and
 * `OTEL_EXPORTER_OTLP_ENDPOINT` set, the daemon sends OTLP/HTTP (JSON) to a receiver this test
 * runs, with one span per FUSE request and, below them, spans of metadata transactions, block
 * cache lookups and object store requests.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startSlayer } from "./_mount.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
}

interface OtlpTraces {
  resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
}

/** An OTLP/HTTP receiver on a loopback port: every span it was sent. */
function startReceiver(): { endpoint: string; spans: OtlpSpan[]; close(): Promise<void> } {
  const spans: OtlpSpan[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.text();
    if (new URL(req.url).pathname === "/v1/traces") {
      assert.match(req.headers.get("content-type") ?? "", /json/);
      const traces = JSON.parse(body) as OtlpTraces;
      for (const rs of traces.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
      }
    }
    return new Response("{}", { headers: { "content-type": "application/json" } });
  });
  const { port } = server.addr as Deno.NetAddr;
  return { endpoint: `http://127.0.0.1:${port}`, spans, close: () => server.shutdown() };
}

const OTEL_ENV = [
  "OTEL_DENO",
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_EXPORTER_OTLP_PROTOCOL",
  "OTEL_SERVICE_NAME",
];

Deno.test("a mount exports spans per FUSE request with metadata, cache and object children", async () => {
  const receiver = startReceiver();
  const cacheDir = await Deno.makeTempDir({ prefix: "slayerfs-trace-cache-" });
  try {
    // Only the daemon started here sees these (its environment is copied when it starts).
    Deno.env.set("OTEL_DENO", "true");
    Deno.env.set("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint);
    Deno.env.set("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
    Deno.env.set("OTEL_SERVICE_NAME", "slayerfs-test");
    let mount;
    try {
      mount = startSlayer({ extraArgs: ["--no-metrics", "--cache-dir", cacheDir] });
      await mount;
    } finally {
      for (const k of OTEL_ENV) Deno.env.delete(k);
    }
    await using fs = await mount;
    assert.match(fs.log(), /Tracing to OpenTelemetry/);
    const data = new Uint8Array(2 << 20).map((_, i) => i % 253);
    await Deno.writeFile(`${fs.mnt}/t.bin`, data);
    assert.deepEqual(await Deno.readFile(`${fs.mnt}/t.bin`), data);
    // The daemon flushes its spans when it exits.
    await fs.stop();

    const byId = new Map(receiver.spans.map((s) => [s.spanId, s]));
    const parentOf = (s: OtlpSpan) => s.parentSpanId ? byId.get(s.parentSpanId) : undefined;
    /** The nearest `fuse.*` ancestor of `s`. */
    const request = (s: OtlpSpan): OtlpSpan | undefined => {
      for (let p = parentOf(s); p !== undefined; p = parentOf(p)) {
        if (p.name.startsWith("fuse.")) return p;
      }
      return undefined;
    };
    const names = new Set(receiver.spans.map((s) => s.name));
    for (const n of ["fuse.create", "fuse.write", "fuse.read", "fuse.lookup"]) {
      assert.ok(names.has(n), `${n} in ${[...names].sort().join(", ")}`);
    }
    const fuse = receiver.spans.find((s) => s.name === "fuse.read")!;
    assert.ok(fuse.attributes?.some((a) => a.key === "slayerfs.ino"), "the inode is an attribute");
    // The read after the write is a cache hit: a lookup span, no object GET.
    for (const child of ["meta.txn", "object.put", "cache."]) {
      const under = receiver.spans.filter((s) =>
        s.name.startsWith(child) && request(s) !== undefined
      );
      assert.ok(under.length > 0, `a ${child} span under a FUSE request span`);
      for (const s of under) assert.equal(s.traceId, request(s)!.traceId);
    }
    const lookup = receiver.spans.find((s) => s.name.startsWith("cache.") && request(s));
    assert.ok(lookup!.attributes?.some((a) => a.key === "slayerfs.hit"), "hit or miss recorded");
  } finally {
    for (const k of OTEL_ENV) Deno.env.delete(k);
    await receiver.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
});
