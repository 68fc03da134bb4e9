/**
 * Child process for the fcntl lock cases: takes a POSIX record lock and holds it until its stdin
 * closes (or a line arrives), then exits, which releases the lock.
 *
 * Usage: `deno run -A _lock_holder.ts PATH TYPE START LEN` with TYPE `r` or `w`. Prints
 * `locked <pid>` once the lock is held, or `error <code>` if it could not be taken.
 *
 * @module
 */

import { close, F_RDLCK, F_WRLCK, LibcError, O, open, setlk } from "../_libc.ts";

const [path, type, start, len] = Deno.args;
if (path === undefined) throw new Error("Usage: _lock_holder.ts PATH TYPE START LEN");
const fd = open(path, O.RDWR);
try {
  setlk(fd, { type: type === "r" ? F_RDLCK : F_WRLCK, start: Number(start), len: Number(len) });
} catch (e) {
  console.log(`error ${e instanceof LibcError ? e.code : String(e)}`);
  Deno.exit(1);
}
console.log(`locked ${Deno.pid}`);
const buf = new Uint8Array(64);
await Deno.stdin.read(buf);
close(fd);
