/**
 * Paths of inodes, found in the metadata: `status` names the hottest files by path. The metadata
 * keeps no parent of a file, so this walks the tree from the root, breadth first, and stops once
 * every inode is found or a bounded number of directories was listed.
 *
 * @module
 */

import type { Meta } from "../core/meta/mod.ts";
import { type Ino, ROOT_INO, S_IFDIR } from "../core/types.ts";

/** Paths (from the volume's root, `/a/b`) of as many of `inos` as the first `maxDirs` dirs show. */
export async function pathsOf(
  meta: Meta,
  inos: Iterable<Ino>,
  maxDirs = 10_000,
): Promise<Map<Ino, string>> {
  const wanted = new Set(inos);
  const found = new Map<Ino, string>();
  if (wanted.has(ROOT_INO)) found.set(ROOT_INO, "/");
  const queue: Array<[Ino, string]> = [[ROOT_INO, ""]];
  for (let listed = 0; queue.length && found.size < wanted.size && listed < maxDirs; listed++) {
    const [dir, path] = queue.shift()!;
    for (const e of await meta.listDir(dir)) {
      const p = `${path}/${e.name}`;
      if (wanted.has(e.ino) && !found.has(e.ino)) found.set(e.ino, p);
      if (e.type === S_IFDIR) queue.push([e.ino, p]);
    }
  }
  return found;
}
