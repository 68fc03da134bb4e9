/**
 * Owner-only modes for everything SlayerFS keeps on the local disk: the metadata database, the
 * file store's blocks, the disk cache, the writeback stage, the CLI's state files and log. Those
 * hold file contents (small files are inlined in the metadata), so another local user must not
 * read them, whatever the mount's own permissions say.
 *
 * Decisions: new files are created {@linkcode PRIVATE_FILE_MODE}, new folders
 * {@linkcode PRIVATE_DIR_MODE} (`mode` at creation, so there is no window with a looser mode; the
 * umask can only take bits away). A folder that already exists is tightened by
 * {@linkcode makePrivateDir} when it holds only the caller's own entries (a store, stage or run
 * folder; a cache's block folders): a 0700 folder closes every file below it whatever their
 * modes, so an old volume is private after its next mount without walking its blocks, and a
 * folder shared with other programs is never changed.
 *
 * @module
 */

/** The mode of every file SlayerFS creates on the local disk (`rw-------`). */
export const PRIVATE_FILE_MODE = 0o600;
/** The mode of every folder SlayerFS creates on the local disk (`rwx------`). */
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Takes the group and other bits off `path` if it has any (a `chmod` only then). A missing path is
 * no error. Returns whether it changed the mode.
 */
export async function tightenMode(path: string, mode: number): Promise<boolean> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  if (info.mode === null || (info.mode & 0o077) === 0) return false;
  await Deno.chmod(path, mode);
  return true;
}

/**
 * Creates `dir` and its missing parents owner-only. An existing `dir` is made owner-only too when
 * it is plainly the caller's own: every entry in it passes `ours` (an empty folder does), and it
 * is not a shared folder (`/`, or one with the sticky bit such as `/tmp`). Its parents are never
 * changed. So `--cache-dir /var/cache` leaves `/var/cache` alone, while a volume's cache folder
 * is closed.
 */
export async function makePrivateDir(
  dir: string,
  ours: (name: string) => boolean,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const info = await Deno.stat(dir);
  if (dir === "/" || info.mode === null || (info.mode & 0o077) === 0) return;
  if (info.mode & 0o1000) return; // sticky: shared by several users
  for await (const e of Deno.readDir(dir)) if (!ours(e.name)) return;
  await Deno.chmod(dir, PRIVATE_DIR_MODE);
}

/**
 * The lock file a mount keeps in each of its cache and staging folders (`cli/_dir_lock.ts`), so
 * that two daemons never share one; the folders' own scans leave it alone.
 */
export const DIR_LOCK_NAME = ".slayerfs.lock";
