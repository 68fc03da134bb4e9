/**
 * One mount per cache or staging folder: several daemons may serve one volume on one host, but
 * each disk cache and each `--writeback` stage is one daemon's alone (their indexes and budgets
 * live in its memory). A daemon holds an exclusive `flock` on {@linkcode DIR_LOCK_NAME} inside
 * each of its folders for its life (the kernel drops it when the process ends, even by kill -9).
 *
 * A default folder (`$SLAYERFS_HOME/cache/UUID`, `$SLAYERFS_HOME/writeback/UUID`) that another
 * daemon holds is replaced by the first free one of `UUID-2`, `UUID-3`...: a lone mount always
 * takes the plain one, and staged blocks left in `UUID-2` by a second mount upload at the next
 * mount that takes that folder. A folder given on the command line must be free, or the mount
 * fails with a line naming its holder.
 *
 * @module
 */

import { DIR_LOCK_NAME, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "../core/_private_fs.ts";
import { CliError } from "./_errors.ts";

/** How many numbered alternatives of a default folder to try. */
const MAX_ALTERNATIVES = 64;

/** The locks this process holds, by folder (kept open for the process's life). */
const held = new Map<string, Deno.FsFile>();

/**
 * Locks folder `dir` (creating it owner-only) for this process; if another process holds it,
 * says so with the holder's pid (when readable).
 */
export async function lockDir(dir: string): Promise<{ ok: true } | { ok: false; pid?: number }> {
  if (held.has(dir)) return { ok: true };
  await Deno.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const path = `${dir}/${DIR_LOCK_NAME}`;
  const file = await Deno.open(path, {
    read: true,
    write: true,
    create: true,
    mode: PRIVATE_FILE_MODE,
  });
  if (!await file.tryLock(true)) {
    file.close();
    const pid = Number.parseInt(await Deno.readTextFile(path).catch(() => ""), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? { ok: false, pid } : { ok: false };
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  held.set(dir, file);
  return { ok: true };
}

/**
 * Claims folder `dir` for this daemon: a `chosen` folder (given by the user) must be free; a
 * default one falls back to `dir-2`, `dir-3`... Returns the folder claimed. `what` names it in
 * errors ("cache folder", "writeback folder").
 */
export async function claimDir(dir: string, chosen: boolean, what: string): Promise<string> {
  for (let n = 1; n <= (chosen ? 1 : MAX_ALTERNATIVES); n++) {
    const path = n === 1 ? dir : `${dir}-${n}`;
    let got;
    try {
      got = await lockDir(path);
    } catch (err) {
      const reason = err instanceof Error ? err.message.replace(/ \(os error \d+\).*$/, "") : err;
      throw new CliError(`Cannot use ${what} "${path}": ${reason}`);
    }
    if (got.ok) return path;
    if (chosen) {
      throw new CliError(
        `The ${what} "${path}" is in use by another mount${
          got.pid === undefined ? "" : ` (pid ${got.pid})`
        }: give each mount of the volume its own`,
      );
    }
  }
  throw new CliError(`Every ${what} "${dir}-N" is in use: too many mounts on this host`);
}
