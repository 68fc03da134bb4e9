/**
 * The daemon's control socket: how `slayerfs clone` and `slayerfs snapshot` reach the mount that
 * holds their paths. The daemon listens on a Unix socket (mode 0600, so only its own user, as a
 * rule root, may use it) whose path it records in its state file (`control`); a command connects,
 * sends one JSON request on a line, and reads one JSON answer on a line: `{ok: true, result}` or
 * `{ok: false, errno, message}`.
 *
 * Going through the daemon (rather than opening the metadata beside it) lets it write what open
 * files buffered before a clone, works for `mem://` volumes, and ties the work to the mount's
 * session: if the daemon dies half-way, whoever cleans up its session reclaims the half-built tree.
 *
 * @module
 */

import { Errno, FsError } from "../core/errno.ts";
import { CliError } from "./_errors.ts";
import { runDir } from "./_state.ts";

/** One request: an operation and its string arguments. */
export interface ControlRequest {
  op: string;
  args: string[];
}

type Answer = { ok: true; result: unknown } | { ok: false; errno: number; message: string };

/** Where a daemon with pid `pid` listens (in the run folder, or /tmp if that path is too long). */
export function controlPath(pid: number): string {
  const p = `${runDir()}/control-${pid}.sock`;
  return p.length < 100 ? p : `${Deno.env.get("TMPDIR") ?? "/tmp"}/slayerfs-control-${pid}.sock`;
}

/** Serves requests at `path` with `handle` until the returned function is called. */
export async function serveControl(
  path: string,
  handle: (req: ControlRequest) => Promise<unknown>,
): Promise<() => Promise<void>> {
  await Deno.remove(path).catch(() => {});
  const listener = Deno.listen({ transport: "unix", path });
  await Deno.chmod(path, 0o600);
  const conns = new Set<Deno.Conn>();
  const one = async (conn: Deno.Conn) => {
    let answer: Answer;
    try {
      const line = await readLine(conn);
      const req = JSON.parse(line) as ControlRequest;
      answer = { ok: true, result: await handle(req) };
    } catch (err) {
      answer = err instanceof FsError ? { ok: false, errno: err.errno, message: err.message } : {
        ok: false,
        errno: Errno.EIO,
        message: err instanceof Error ? err.message : String(err),
      };
    }
    try {
      await writeAll(conn, new TextEncoder().encode(JSON.stringify(answer) + "\n"));
    } catch {
      // the command went away
    }
  };
  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      one(conn).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {});
  return async () => {
    listener.close();
    await loop;
    await Deno.remove(path).catch(() => {});
  };
}

async function readLine(conn: Deno.Conn): Promise<string> {
  const parts: Uint8Array[] = [];
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    parts.push(buf.slice(0, n));
    if (buf[n - 1] === 10) break;
  }
  return new TextDecoder().decode(
    parts.reduce((a, b) => {
      const c = new Uint8Array(a.length + b.length);
      c.set(a);
      c.set(b, a.length);
      return c;
    }, new Uint8Array()),
  );
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

const ERRNO_TEXT: Record<number, string> = {
  [Errno.EEXIST]: "File exists",
  [Errno.ENOENT]: "No such file or directory",
  [Errno.EROFS]: "Read-only file system",
  [Errno.ENOTDIR]: "Not a directory",
  [Errno.EINVAL]: "Invalid argument",
};

/**
 * Sends `req` to the daemon listening at `path` and returns its result; a failure becomes a
 * {@linkcode CliError} (exit 1) with the daemon's message and the errno's name.
 */
export async function callControl(path: string | undefined, req: ControlRequest): Promise<unknown> {
  if (!path) {
    throw new CliError("The mount's daemon has no control socket (mounted by an older version?)");
  }
  let conn: Deno.Conn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch (err) {
    throw new CliError(`Cannot reach the mount's daemon at ${path}: ${(err as Error).message}`);
  }
  try {
    await writeAll(conn, new TextEncoder().encode(JSON.stringify(req) + "\n"));
    const line = await readLine(conn);
    if (!line) throw new CliError("The mount's daemon closed the control connection");
    const a = JSON.parse(line) as Answer;
    if (a.ok) return a.result;
    const name = Object.entries(Errno).find(([, n]) => n === a.errno)?.[0] ?? `errno ${a.errno}`;
    const text = ERRNO_TEXT[a.errno];
    throw new CliError(
      `${a.message}${text && !a.message.includes(text) ? ` (${text})` : ""} [${name}]`,
    );
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}
