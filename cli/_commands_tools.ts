/**
 * The declarations (`_spec.ts`) of the volume tools that work on any metadata engine: `dump`,
 * `load` and `fsck`. Kept beside `_commands.ts`, which lists them.
 *
 * @module
 */

import type { CommandSpec } from "./_spec.ts";

const META_URL = {
  name: "META_URL",
  help: "the volume's metadata: sqlite3:///abs/path/meta.db or another engine's URL",
};

const BATCH = {
  name: "batch",
  kind: "int",
  arg: "N",
  min: 1,
  help: "keys per scan or transaction",
  default: 500,
} as const;

const QUIET = { name: "quiet", short: "q", kind: "flag", help: "no progress bar" } as const;

/** `slayerfs dump`. */
export const DUMP: CommandSpec = {
  name: "dump",
  summary: "write a volume's metadata to a JSON file (streamed, with a progress bar)",
  description: "Reads the metadata engine in ordered scans and writes one JSON record per key " +
    "(format, counters, inodes, entries, chunks, slices, ...). Exact when no mount writes " +
    "meanwhile. The blocks stay where they are; load the dump into another engine to migrate.",
  usage: ["META_URL FILE"],
  args: [META_URL, { name: "FILE", help: "the dump file, - for standard output" }],
  arity: [2, 2],
  complete: "file",
  options: [BATCH, QUIET],
  examples: [
    "slayerfs dump sqlite3:///var/lib/slayerfs/meta.db vol1.json",
    "slayerfs dump sqlite3:///var/lib/slayerfs/meta.db - | gzip > vol1.json.gz",
  ],
};

/** `slayerfs load`. */
export const LOAD: CommandSpec = {
  name: "load",
  summary: "load a dump into a new, empty metadata engine (streamed, with a progress bar)",
  description: "Refuses a target that holds any key. Writes the volume's format record last, " +
    "so an interrupted load leaves no usable volume behind.",
  usage: ["META_URL FILE"],
  args: [META_URL, { name: "FILE", help: "a file written by slayerfs dump, - for standard input" }],
  arity: [2, 2],
  complete: "file",
  options: [BATCH, QUIET],
  examples: [
    "slayerfs load sqlite3:///var/lib/slayerfs/copy.db vol1.json",
    "gunzip -c vol1.json.gz | slayerfs load sqlite3:///var/lib/slayerfs/copy.db -",
  ],
};

/** `slayerfs fsck`. */
export const FSCK: CommandSpec = {
  name: "fsck",
  summary: "check that every slice's blocks are in the store; report broken files by path",
  description: "Lists the block store once and checks each block of each slice (size " +
    "included), inline blocks and dedup blobs, then names the files that use a broken slice, " +
    "and checks the reference counts and usage counters. Exits 1 when something is broken.",
  usage: ["META_URL"],
  args: [META_URL],
  arity: [1, 1],
  options: [
    {
      name: "repair",
      kind: "flag",
      help: "fix what can be fixed safely: slice reference counts and usage counters",
    },
    QUIET,
  ],
  examples: ["slayerfs fsck sqlite3:///var/lib/slayerfs/meta.db"],
};

/** `slayerfs clone`. */
export const CLONE: CommandSpec = {
  name: "clone",
  summary: "copy a file or a folder tree inside a mounted volume in metadata only (shared data)",
  description: "SRC and DST are paths in one mount; the mount's daemon copies the metadata and " +
    "shares the data (no block is read, written or uploaded). DST appears whole or not at all " +
    "and must not exist. Modes, owners, times, extended attributes, symlinks and hard links " +
    "inside the tree are kept; later writes to either side do not show in the other.",
  usage: ["SRC DST"],
  args: [
    { name: "SRC", help: "a file or folder inside a mounted volume" },
    { name: "DST", help: "a new path in the same mount" },
  ],
  arity: [2, 2],
  complete: "file",
  options: [{ name: "quiet", short: "q", kind: "flag", help: "print nothing on success" }],
  examples: ["slayerfs clone /mnt/vol1/models/llama /mnt/vol1/models/llama-ft"],
};

/** `slayerfs snapshot`. */
export const SNAPSHOT: CommandSpec = {
  name: "snapshot",
  summary: "create, list or remove read-only snapshots of a folder (PATH/.snapshots/NAME)",
  description: "create: a clone of PATH (without its .snapshots) at PATH/.snapshots/NAME whose " +
    "files and folders refuse every change (EROFS). ls: the snapshots of PATH. rm: removes one; " +
    "data no one else references becomes garbage for slayerfs gc --delete. .snapshots is left " +
    "out of the listing of PATH but can be entered by name.",
  usage: ["create PATH NAME", "ls PATH", "rm PATH NAME"],
  args: [
    { name: "create|ls|rm", help: "what to do" },
    { name: "PATH", help: "a folder inside a mounted volume" },
    { name: "NAME", help: "the snapshot's name" },
  ],
  arity: [2, 3],
  complete: "dir",
  options: [
    { name: "json", kind: "flag", help: "ls: print the snapshots as JSON" },
    { name: "quiet", short: "q", kind: "flag", help: "print nothing on success" },
  ],
  examples: [
    "slayerfs snapshot create /mnt/vol1/models v1",
    "slayerfs snapshot ls /mnt/vol1/models",
    "slayerfs snapshot rm /mnt/vol1/models v1",
  ],
};
