/**
 * A reusable POSIX conformance suite: named cases that run against any directory.
 *
 * Each case creates a fresh subdirectory of the directory it is given, works only inside it,
 * asserts with `node:assert/strict` (expecting the real Linux errno where an error is expected),
 * and removes its subdirectory when it passes. tmpfs is the reference: every case passes there
 * (see `posix_tmpfs_test.ts`); the same cases run on a SlayerFS mount (`posix_mount_test.ts`)
 * and on a mount whose blocks live in S3 (`posix_s3_test.ts`).
 *
 * The cases live in one file per area, in suite order: `files.ts`, `namespace.ts`, `links.ts`,
 * `attrs.ts`, `lifetime_scale.ts`, `locks.ts`, `io.ts`; their shared helpers (errno assertions,
 * deterministic data, running as another user) are in `_helpers.ts`, and the system calls Deno
 * lacks come from `../_libc.ts`.
 *
 * To add a case, write it in the file of its area as `cases.some_name = async (d) => { … }`,
 * with a one-line doc comment saying what it checks, working only inside `d`. It then runs on
 * every directory the suite runs on, under its key as the test step name; it must pass on
 * tmpfs first. A new area gets a new file exporting its `CaseBodies`, spread into
 * {@link posixCases} below.
 *
 * Requirements on the caller: run as root; the directory and all its parents must be searchable
 * by uid 65534 (the non-root cases run shell commands as that user); a FUSE filesystem under test
 * must be served by another process and mounted with `allow_other` and `default_permissions`.
 *
 * @example Run every case against a directory, one test step each
 * ```ts ignore
 * import { posixCases } from "./suite.ts";
 *
 * Deno.test("my filesystem passes the POSIX suite", async (t) => {
 *   for (const [name, run] of Object.entries(posixCases)) {
 *     await t.step(name, () => run("/mnt/test"));
 *   }
 * });
 * ```
 *
 * @module
 */

import { attrCases } from "./attrs.ts";
import { containerCases } from "./containers.ts";
import { fileCases } from "./files.ts";
import { ioCases } from "./io.ts";
import { largeDirectory, lifetimeScaleCases } from "./lifetime_scale.ts";
import { linkCases } from "./links.ts";
import { lockCases } from "./locks.ts";
import { namespaceCases } from "./namespace.ts";

export {
  NOBODY,
  pseudoRandom,
  rejectsErrno,
  runAsNobody,
  sha256,
  throwsErrno,
} from "./_helpers.ts";
export type { RunResult } from "../_run.ts";

/** A suite case: works inside a fresh subdirectory of `dir`. */
export type PosixCase = (dir: string) => Promise<void>;

const cases = {
  ...fileCases,
  ...namespaceCases,
  ...linkCases,
  ...attrCases,
  ...lifetimeScaleCases,
  ...lockCases,
  ...ioCases,
  ...containerCases,
};

function inFreshDirs(bodies: Record<string, (d: string) => void | Promise<void>>) {
  return Object.fromEntries(
    Object.entries(bodies).map(([name, body]) => [name, async (dir: string) => {
      const sub = `${dir}/${name}-${crypto.randomUUID().slice(0, 8)}`;
      await Deno.mkdir(sub);
      await Deno.chmod(sub, 0o755);
      await body(sub);
      await Deno.remove(sub, { recursive: true });
    }]),
  );
}

/** The named POSIX cases; each runs inside a fresh subdirectory of the directory it is given. */
export const posixCases: Record<string, PosixCase> = inFreshDirs(cases);

/**
 * The cases for mounts on networked metadata engines (Redis, PostgreSQL, etcd): the same, with
 * `large_directory` at 3,000 entries (three of etcd's scan pages) instead of 10,000, which the
 * SQLite, S3 and tmpfs runs keep.
 */
export const networkedEngineCases: Record<string, PosixCase> = inFreshDirs({
  ...cases,
  large_directory: (d) => largeDirectory(d, 3_000),
});
