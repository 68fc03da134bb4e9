/**
 * OpenTelemetry traces of a mount, through Deno's built-in OpenTelemetry (enabled by
 * `OTEL_DENO=true`, exported over OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT`): one span per FUSE
 * request (`fuse.read`, `fuse.lookup`, ...) with the inode, and below it a span per metadata
 * transaction (`meta.txn`), block cache lookup (`cache.get`) and object store request
 * (`object.get`, `object.put`, ...; Deno adds the HTTP request of an S3 call below that). The
 * context follows the request through its awaits, so children find their parent by themselves.
 *
 * @module
 */

/** Deno's tracer (the OpenTelemetry `Tracer` API). */
export type Tracer = ReturnType<typeof Deno.telemetry.tracerProvider.getTracer>;
type Span = ReturnType<Tracer["startSpan"]>;
type Attributes = Record<string, string | number | boolean>;

/** `SpanStatusCode.ERROR` of the OpenTelemetry API. */
const ERROR = 2;

/**
 * The tracer of the daemon when Deno's OpenTelemetry is on (`OTEL_DENO=true` or `1` when the
 * process started), else `undefined`: no span is made at all.
 */
export function daemonTracer(): Tracer | undefined {
  let on: string | undefined;
  try {
    on = Deno.env.get("OTEL_DENO");
  } catch {
    return undefined;
  }
  if (!/^(true|1)$/i.test(on ?? "") || Deno.telemetry === undefined) return undefined;
  return Deno.telemetry.tracerProvider.getTracer("slayerfs");
}

function fail(span: Span, err: unknown): void {
  span.setStatus({ code: ERROR, message: err instanceof Error ? err.message : String(err) });
}

/**
 * Runs `fn` in an active span called `name` (the parent of the spans `fn` makes), ended when its
 * promise settles; a rejection marks the span as failed.
 */
export function inSpan<T>(
  tracer: Tracer,
  name: string,
  attributes: Attributes,
  fn: () => Promise<T>,
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, (span: Span) => {
    let p: Promise<T>;
    try {
      p = fn();
    } catch (err) {
      fail(span, err);
      span.end();
      throw err;
    }
    return p.then(
      (v) => {
        span.end();
        return v;
      },
      (err) => {
        fail(span, err);
        span.end();
        throw err;
      },
    );
  });
}

/** A `Proxy` of `target` whose methods named in `names` call `wrap` instead. */
function wrapMethods<T extends object>(
  target: T,
  names: ReadonlySet<PropertyKey>,
  wrap: (name: string, fn: (...args: unknown[]) => unknown, args: unknown[]) => unknown,
): T {
  const cache = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(t, prop) {
      const value = Reflect.get(t, prop, t);
      if (typeof value !== "function") return value;
      let bound = cache.get(prop);
      if (bound === undefined) {
        const fn = (value as (...a: unknown[]) => unknown).bind(t);
        bound = names.has(prop) ? (...args: unknown[]) => wrap(String(prop), fn, args) : fn;
        cache.set(prop, bound);
      }
      return bound;
    },
  });
}

/** The filesystem methods the FUSE adapter calls (see `core/fs_ops.ts`). */
const FS_METHODS = new Set<PropertyKey>([
  "lookup",
  "getattr",
  "setattr",
  "readlink",
  "mknod",
  "mkdir",
  "unlink",
  "rmdir",
  "symlink",
  "rename",
  "link",
  "open",
  "read",
  "write",
  "flush",
  "release",
  "fsync",
  "opendir",
  "readdir",
  "readdirplus",
  "releasedir",
  "fsyncdir",
  "statfs",
  "setxattr",
  "getxattr",
  "listxattr",
  "removexattr",
  "access",
  "create",
  "getlk",
  "setlk",
  "flock",
  "fallocate",
  "copyFileRange",
  "lseek",
]);

/**
 * `ops` (an `FsOps`) with a span `fuse.<method>` around every call, carrying `attributes` (the
 * volume, the mountpoint) and the inode (`slayerfs.ino`, the call's second argument).
 */
export function traceOps<T extends object>(ops: T, tracer: Tracer, attributes: Attributes): T {
  return wrapMethods(ops, FS_METHODS, (name, fn, args) => {
    const ino = args[1];
    const attrs = typeof ino === "bigint" || typeof ino === "number"
      ? { ...attributes, "slayerfs.ino": Number(ino) }
      : attributes;
    return inSpan(tracer, `fuse.${name}`, attrs, async () => await fn(...args));
  });
}

/**
 * A block cache with a span per lookup: `cache.get` (a slower tier), `cache.get_range` and
 * `cache.get_sync` (memory), each with `slayerfs.hit`.
 */
export function traceCache<T extends object>(cache: T, tracer: Tracer): T {
  return wrapMethods(cache, new Set(["get", "getRange", "getSync"]), (name, fn, args) => {
    const attributes = { "slayerfs.block": String(args[0]) };
    if (name === "getSync") {
      const span = tracer.startSpan("cache.get_sync", { attributes });
      const v = fn(...args);
      span.setAttribute("slayerfs.hit", v !== undefined);
      span.end();
      return v;
    }
    const spanName = name === "get" ? "cache.get" : "cache.get_range";
    return tracer.startActiveSpan(spanName, { attributes }, async (span: Span) => {
      try {
        const v = await fn(...args);
        span.setAttribute("slayerfs.hit", v !== undefined);
        return v;
      } catch (err) {
        fail(span, err);
        throw err;
      } finally {
        span.end();
      }
    });
  });
}
