/**
 * The HTTP endpoint Prometheus scrapes: `GET /metrics` answers the exposition text; `/` a line
 * pointing there. It binds `HOST:PORT`, and when the port is taken, the next free one (up to
 * {@linkcode PORT_TRIES} ports on), as JuiceFS does, so that several mounts on one host each get
 * one without configuration.
 *
 * @example
 * ```ts
 * import { serveMetrics } from "./http.ts";
 *
 * const server = serveMetrics(
 *   { text: () => Promise.resolve("up 1\n"), contentType: "text/plain" },
 *   "127.0.0.1:0",
 * );
 * const res = await fetch(`http://${server.address}/metrics`);
 * if ((await res.text()) !== "up 1\n") throw new Error("unexpected");
 * await server.close();
 * ```
 *
 * @module
 */

/** How many ports are tried, from the one asked for, before giving up. */
export const PORT_TRIES = 100;

/** What the endpoint serves. */
export interface MetricsSource {
  /** The exposition text. */
  text(): Promise<string>;
  /** Its content type. */
  readonly contentType: string;
}

/** A running endpoint. */
export interface MetricsServer {
  /** The address it listens on, `HOST:PORT` (`[HOST]:PORT` for IPv6). */
  readonly address: string;
  /** Stops listening. */
  close(): Promise<void>;
}

/**
 * Reads `HOST:PORT`, `[V6]:PORT`, `:PORT` (every interface) or `PORT` (loopback); a bad one is a
 * `TypeError` naming it.
 */
export function parseAddress(addr: string): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):(\d+)$/.exec(addr) ?? /^()()(\d+)$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new TypeError(
      `Invalid metrics address "${addr}": expected HOST:PORT, e.g. 127.0.0.1:9567`,
    );
  }
  const hostname = m[1] || (addr.startsWith(":") ? "0.0.0.0" : m[2] || "127.0.0.1");
  return { hostname, port };
}

/**
 * Serves `source` at `addr` (see {@linkcode parseAddress}), or at the next free port after a
 * taken one; throws `Deno.errors.AddrInUse` when none of {@linkcode PORT_TRIES} is free.
 */
export function serveMetrics(source: MetricsSource, addr: string): MetricsServer {
  const { hostname, port } = parseAddress(addr);
  const handler = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("Method not allowed\n", { status: 405 });
    }
    if (path === "/metrics") {
      try {
        return new Response(await source.text(), {
          headers: { "content-type": source.contentType },
        });
      } catch (err) {
        return new Response(`Collecting the metrics failed: ${err}\n`, { status: 500 });
      }
    }
    if (path === "/") return new Response("SlayerFS metrics: GET /metrics\n");
    return new Response("Not found\n", { status: 404 });
  };
  for (let p = port, tries = 0;; p++, tries++) {
    try {
      const server = Deno.serve({ hostname, port: p, onListen() {} }, handler);
      const a = server.addr as Deno.NetAddr;
      return {
        address: a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`,
        // Bounded: a scraper's idle keep-alive connection must not hold up an unmount.
        close: () =>
          Promise.race([server.shutdown(), new Promise<void>((r) => setTimeout(r, 1000))]),
      };
    } catch (err) {
      if (
        !(err instanceof Deno.errors.AddrInUse) || port === 0 || tries >= PORT_TRIES - 1 ||
        p >= 65535
      ) {
        throw err;
      }
    }
  }
}
