/**
 * Worker thread for the blocking libc calls of `_libc_locks.ts` (`flock`, `fcntl(F_SETLKW)`).
 *
 * Runs one call synchronously on this thread, then reads errno on the same thread, so the errno
 * belongs to the call. Replies a {@link BlockingReply}.
 *
 * @module
 */

import { BLOCKING_SYMBOLS, errnoOf, openLibc } from "./_libc_ffi.ts";
import type { BlockingCall, BlockingReply } from "./_libc_locks.ts";

const lib = openLibc(BLOCKING_SYMBOLS);

/** The worker global scope, typed without the DOM `Window` signatures. */
const scope = self as unknown as {
  onmessage: (e: MessageEvent<BlockingCall>) => void;
  postMessage(message: BlockingReply): void;
};

scope.onmessage = (e) => {
  const { fn, args } = e.data;
  const ret = fn === "flock"
    ? lib.symbols.flock(args[0], args[1])
    : lib.symbols.fcntl(args[0], args[1], args[2] ?? null);
  scope.postMessage({ ret, errno: ret < 0 ? errnoOf(lib.symbols) : 0 });
};
