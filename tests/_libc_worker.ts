/**
 * Worker thread for the blocking libc calls of `_libc.ts` (`flock`, `fcntl(F_SETLKW)`).
 *
 * Runs one call synchronously on this thread, then reads errno on the same thread, so the errno
 * belongs to the call. Replies `{ ret, errno }`.
 *
 * @module
 */

import { BLOCKING_SYMBOLS, openLibc } from "./_libc.ts";

const lib = openLibc(BLOCKING_SYMBOLS);

/** The worker global scope, typed without the DOM `Window` signatures. */
const scope = self as unknown as {
  onmessage: (e: MessageEvent<{ fn: "flock" | "fcntl"; args: unknown[] }>) => void;
  postMessage(message: unknown): void;
};

scope.onmessage = (e) => {
  const { fn, args } = e.data;
  let ret: number;
  if (fn === "flock") {
    ret = lib.symbols.flock(args[0] as number, args[1] as number);
  } else {
    ret = lib.symbols.fcntl(
      args[0] as number,
      args[1] as number,
      args[2] as Uint8Array<ArrayBuffer>,
    );
  }
  let errno = 0;
  if (ret < 0) {
    const p = lib.symbols.__errno_location();
    if (p !== null) errno = new Deno.UnsafePointerView(p).getInt32();
  }
  scope.postMessage({ ret, errno });
};
