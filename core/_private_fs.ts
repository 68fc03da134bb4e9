/**
 * Owner-only modes for everything SlayerFS keeps on the local disk: the metadata database, the
 * file store's blocks, the disk cache, the writeback stage, the CLI's state files and log. Those
 * hold file contents (small files are inlined in the metadata), so another local user must not
 * read them, whatever the mount's own permissions say.
 *
 * Decisions: new files are created {@linkcode PRIVATE_FILE_MODE}, new folders
 * {@linkcode PRIVATE_DIR_MODE} (`mode` at creation, so there is no window with a looser mode; the
 * umask can only take bits away). A folder that already exists is tightened by
 * {@linkcode makePrivateDir} when it is one of the volume's own (its cache, stage or store folder):
 * a 0700 folder closes every file below it whatever their modes, so an old volume is private
 * after its next mount without walking its blocks.
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
 * Creates `dir` and its missing parents owner-only, and makes an existing `dir` owner-only too
 * (its parents are left alone). `/` is never changed.
 */
export async function makePrivateDir(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (dir !== "/" && dir !== "") await tightenMode(dir, PRIVATE_DIR_MODE);
}
