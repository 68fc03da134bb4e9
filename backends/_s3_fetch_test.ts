/**
 * Tests of `FetchHandler` (`_s3_fetch.ts`), the SDK handler that sends GETs and HEADs with
 * `fetch`: bodies read natively (whole, by their length, across a reused connection), requests
 * with a body left to the fallback, network errors the store's retries recognise.
 *
 * @module
 */

import assert from "node:assert/strict";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { startS3Server } from "../tests/_s3server.ts";
import { fetchedBody, FetchHandler, FetchNetworkError, type SdkHandler } from "./_s3_fetch.ts";

Deno.test("FetchHandler reads bodies natively, leaves requests with bodies to its fallback", async () => {
  await using server = await startS3Server();
  await server.createBucket("test");
  const u = new URL(server.endpoint);
  const handler = new FetchHandler(new NodeHttpHandler() as unknown as SdkHandler);
  try {
    const request = {
      protocol: u.protocol,
      hostname: u.hostname,
      port: Number(u.port),
      path: "/test",
      query: { "list-type": "2", prefix: "x y", "max-keys": "5" },
      headers: { host: u.host },
    };
    // Unsigned: s3rver answers with an error document, read natively all the same.
    const { response } = await handler.handle({ ...request, method: "GET" });
    const body = fetchedBody(response.body);
    assert.ok(body, "a GET's body is read by fetch");
    assert.match(new TextDecoder().decode(body), /<\?xml|<Error>|<ListBucketResult/);
    const put = await handler.handle({
      ...request,
      method: "PUT",
      path: "/test/k",
      query: {},
      body: new Uint8Array(10),
    });
    assert.equal(fetchedBody(put.response.body), undefined, "a body goes to the fallback");
    put.response.body.resume();
    // Nothing listens: a network error the store's retries recognise.
    await server.kill();
    const err = await handler.handle({ ...request, method: "GET" }).then(() => null, (e) => e);
    assert.ok(err instanceof FetchNetworkError, String(err));
    assert.equal(err.code, "ECONNREFUSED", err.message);
    const aborted = await handler.handle({ ...request, method: "GET" }, {
      abortSignal: AbortSignal.abort(new Error("stop")),
    }).then(() => null, (e) => e);
    assert.equal((aborted as Error).message, "stop");
  } finally {
    handler.destroy();
  }
});

Deno.test("FetchHandler reads a body by its length into one buffer, lets the connection be reused and refuses a short body", async () => {
  // A raw HTTP/1.1 server, so that it can send what a real server may: a body cut short of its
  // content-length, and one without a length (chunked).
  const big = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 7) & 255);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const conns: Deno.Conn[] = [];
  const serve = async (conn: Deno.Conn) => {
    const buf = new Uint8Array(64 * 1024);
    let head = "";
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return;
      head += new TextDecoder().decode(buf.subarray(0, n));
      let end: number;
      while ((end = head.indexOf("\r\n\r\n")) >= 0) {
        const path = head.split(" ")[1];
        head = head.slice(end + 4);
        const send = (h: string, body?: Uint8Array) =>
          conn.write(new TextEncoder().encode(h)).then(() => body && conn.write(body));
        if (path === "/big") {
          await send(`HTTP/1.1 200 OK\r\ncontent-length: ${big.length}\r\n\r\n`);
          for (let off = 0; off < big.length; off += 100_000) {
            await conn.write(big.subarray(off, Math.min(big.length, off + 100_000)));
          }
        } else if (path === "/chunked") {
          await send(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
          );
        } else {
          await send(
            "HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\nonly 12 byte",
          );
          conn.close();
          return;
        }
      }
    }
  };
  const accepting = (async () => {
    for await (const conn of listener) {
      connections++;
      conns.push(conn);
      void serve(conn);
    }
  })();
  const port = (listener.addr as Deno.NetAddr).port;
  const handler = new FetchHandler(new NodeHttpHandler() as unknown as SdkHandler);
  const get = (path: string) =>
    handler.handle({
      protocol: "http:",
      hostname: "127.0.0.1",
      port,
      path,
      method: "GET",
      query: {},
      headers: { host: `127.0.0.1:${port}` },
    });
  try {
    const gets = 8;
    for (let i = 0; i < gets; i++) {
      const { response } = await get("/big");
      assert.deepEqual(fetchedBody(response.body), big, `GET ${i} reads the whole body`);
    }
    // A body read to its end lets the connection go back to the pool (one left unread would
    // take a new connection per GET); when it is back is up to the client, so not exactly one.
    assert.ok(connections < gets, `${connections} connections for ${gets} GETs`);
    const chunked = await get("/chunked");
    assert.equal(new TextDecoder().decode(fetchedBody(chunked.response.body)), "hello");
    const err = await get("/short").then(() => null, (e) => e);
    assert.ok(err instanceof FetchNetworkError, `a short body is a network error: ${err}`);
  } finally {
    handler.destroy();
    listener.close();
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed by the server */ }
    }
    await accepting.catch(() => {});
  }
});
