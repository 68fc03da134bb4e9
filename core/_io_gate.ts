/**
 * When a short blocking call may run on the JS thread. A local `open` or `pread` that has to wait
 * for the disk is normally made off the thread (a Deno worker thread), which costs two thread
 * switches, tens of microseconds each on a virtual machine, more than a cold 64 KiB read from a
 * local disk. While the thread has nothing else to do (the FUSE request loop serves one request at
 * a time and this is it), waiting on it delays nothing: the FUSE loop tells so through
 * {@linkcode setMayBlock}. Elsewhere (tests, tools, the libfuse thread loop) the answer is no.
 *
 * @example
 * ```ts
 * import { mayBlock, setMayBlock } from "./_io_gate.ts";
 * import { equal } from "node:assert/strict";
 *
 * equal(mayBlock(), false);
 * const undo = setMayBlock(() => true);
 * equal(mayBlock(), true);
 * undo();
 * equal(mayBlock(), false);
 * ```
 *
 * @module
 */

const never = () => false;
let probe: () => boolean = never;

/** Whether a blocking call of at most a disk read may run on the JS thread now. */
export function mayBlock(): boolean {
  return probe();
}

/** Installs the probe {@linkcode mayBlock} asks; returns a function that removes it. */
export function setMayBlock(p: () => boolean): () => void {
  probe = p;
  return () => {
    if (probe === p) probe = never;
  };
}
