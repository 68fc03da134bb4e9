/**
 * A metadata engine that counts its transactions (and traces each as a span `meta.txn` when given
 * a tracer): latency by kind (read-only or not), restarts
 * (extra runs of the body after a conflict) and failures (an `FsError` the body throws, such as
 * `ENOENT`, is an answer, not a failure). It is a `Proxy` of the engine, so every
 * other member (an engine's own methods and counters) and `instanceof` are the engine's.
 *
 * @module
 */

import { FsError } from "../errno.ts";
import type { KvEngine, KvTxn, TxnOptions } from "../kv.ts";
import type { Counter, Histogram } from "prom-client";
import { inSpan, type Tracer } from "./trace.ts";

/** `kv` with its transactions counted in `m`. */
export function instrumentKv(
  kv: KvEngine,
  m: { txnDuration: Histogram<"kind">; txnErrors: Counter; txnRestarts: Counter },
  tracer?: Tracer,
): KvEngine {
  const read = m.txnDuration.labels({ kind: "read" });
  const write = m.txnDuration.labels({ kind: "write" });
  // Present from the start, at zero.
  m.txnDuration.zero({ kind: "read" });
  m.txnDuration.zero({ kind: "write" });
  async function counted<T>(fn: (tx: KvTxn) => Promise<T>, options?: TxnOptions): Promise<T> {
    let runs = 0;
    const t0 = performance.now();
    try {
      return await kv.txn((tx) => {
        runs++;
        return fn(tx);
      }, options);
    } catch (err) {
      // An FsError (ENOENT, EEXIST, ...) is the body's answer, not a failed transaction.
      if (!(err instanceof FsError)) m.txnErrors.inc();
      throw err;
    } finally {
      (options?.readOnly ? read : write).observe((performance.now() - t0) / 1000);
      if (runs > 1) m.txnRestarts.inc(runs - 1);
    }
  }
  const txn = tracer === undefined ? counted : <T>(
    fn: (tx: KvTxn) => Promise<T>,
    options?: TxnOptions,
  ): Promise<T> =>
    inSpan(
      tracer,
      "meta.txn",
      { "slayerfs.txn": options?.readOnly ? "read" : "write" },
      () => counted(fn, options),
    );
  return new Proxy(kv, {
    get(target, prop) {
      if (prop === "txn") return txn;
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
