/**
 * A block store that counts its requests (and traces each as a span `object.<method>` when given a
 * tracer) by method (`put`, `get`, `head`, `delete`, `list`):
 * latency, failures, and the bytes sent by `put` and received by `get`. A missing object (`get`
 * throwing `NotFoundError`) is an answer, not a failure. It is a `Proxy` of the store, so every
 * other member and `instanceof` are the store's.
 *
 * @module
 */

import { type BlockStore, NotFoundError } from "../block_store.ts";
import type { Counter, Histogram } from "prom-client";
import { inSpan, type Tracer } from "./trace.ts";

type Method = "put" | "get" | "head" | "delete" | "list";
const METHODS: readonly Method[] = ["put", "get", "head", "delete", "list"];

/** `store` with its requests counted in `m`. */
export function instrumentStore(
  store: BlockStore,
  m: {
    objectDuration: Histogram<"method">;
    objectErrors: Counter<"method">;
    objectBytes: Counter<"method">;
  },
  tracer?: Tracer,
): BlockStore {
  const wrapped = new Map<PropertyKey, unknown>();
  for (const method of METHODS) {
    const duration = m.objectDuration.labels({ method });
    const errors = m.objectErrors.labels({ method });
    const bytes = m.objectBytes.labels({ method });
    m.objectDuration.zero({ method });
    const call = store[method] as (...args: unknown[]) => Promise<unknown>;
    const counted = async (...args: unknown[]) => {
      const t0 = performance.now();
      try {
        const result = await call.apply(store, args);
        if (method === "get") bytes.inc((result as Uint8Array).byteLength);
        else if (method === "put") bytes.inc((args[1] as Uint8Array).byteLength);
        return result;
      } catch (err) {
        if (!(err instanceof NotFoundError)) errors.inc();
        throw err;
      } finally {
        duration.observe((performance.now() - t0) / 1000);
      }
    };
    wrapped.set(
      method,
      tracer === undefined ? counted : (...args: unknown[]) =>
        inSpan(
          tracer,
          `object.${method}`,
          objectAttributes(method, args),
          () => counted(...args),
        ),
    );
  }
  return new Proxy(store, {
    get(target, prop) {
      if (wrapped.has(prop)) return wrapped.get(prop);
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The key (or first key, and count) of a request, for its span. */
function objectAttributes(method: Method, args: unknown[]): Record<string, string | number> {
  if (method === "delete") {
    const keys = args[0] as readonly string[];
    return { "slayerfs.keys": keys.length, "slayerfs.key": keys[0] ?? "" };
  }
  return { "slayerfs.key": String(args[0]) };
}
