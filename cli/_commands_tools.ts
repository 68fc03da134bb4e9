/**
 * The declarations (`_spec.ts`) of the volume tools that work on any metadata engine (`dump`,
 * `load` and `fsck`) and of the tools that work on a mount or any folder (`bench`, `doctor` and
 * `sync`). Kept beside `_commands.ts`, which lists them.
 *
 * @module
 */

import type { CommandSpec, OptionSpec } from "./_spec.ts";

/**
 * `--config FILE`: the command's section of a YAML or TOML settings file (see `_config.ts`);
 * a command with this option reads its settings from the file and `SLAYERFS_*` variables too.
 */
export const CONFIG_OPTION: OptionSpec = {
  name: "config",
  kind: "string",
  arg: "FILE",
  complete: "file",
  help: "read settings from this YAML (.yaml, .yml) or TOML (.toml) file's section for the " +
    "command; command-line flags, then SLAYERFS_* variables, override it",
  defaultText: "$SLAYERFS_CONFIG, else none",
};

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

/** `slayerfs bench`. */
export const BENCH: CommandSpec = {
  name: "bench",
  summary: "benchmark a folder: big-file write/read, small-file create/read/stat",
  description: "Each thread writes one big file in 1 MiB writes and reads it back, then " +
    "creates, reads and stats its small files, in a fresh folder under PATH that is removed " +
    "afterwards. As root the page cache is dropped before each read stage. Prints throughput, " +
    "operations per second and milliseconds per operation; inside a SlayerFS mount also the " +
    "mount's FUSE, cache and object store counters during the run.",
  usage: ["PATH"],
  args: [{ name: "PATH", help: "any folder: inside a SlayerFS mount or not" }],
  arity: [1, 1],
  complete: "dir",
  options: [
    {
      name: "big-file-size",
      kind: "size",
      arg: "SIZE",
      unit: 2 ** 20,
      help: "size of each thread's big file (0: skip); a plain number is MiB",
      default: 2 ** 30,
    },
    {
      name: "small-file-size",
      kind: "size",
      arg: "SIZE",
      unit: 1024,
      help: "size of each small file; a plain number is KiB",
      default: 128 * 1024,
    },
    {
      name: "small-file-count",
      kind: "int",
      arg: "N",
      help: "small files per thread (0: skip)",
      default: 100,
    },
    { name: "threads", short: "p", kind: "int", arg: "N", min: 1, help: "threads", default: 1 },
    { name: "json", kind: "flag", help: "print the results as JSON, for scripts" },
    QUIET,
  ],
  examples: [
    "slayerfs bench /mnt/vol1",
    "slayerfs bench --big-file-size 256M --threads 4 --json /mnt/vol1",
  ],
};

/** `slayerfs doctor`. */
export const DOCTOR: CommandSpec = {
  name: "doctor",
  summary: "collect what a bug report needs about a mount into one .tar.gz (secrets masked)",
  description: "Versions, the daemon's command line and settings, status --json, the last " +
    "lines of its log, the system (kernel, libfuse, the volume's mounts), a metrics scrape and " +
    "a CPU profile of the running daemon. Passwords and secret keys are masked in every file.",
  usage: ["MOUNTPOINT"],
  args: [{ name: "MOUNTPOINT", help: "any path inside a mount" }],
  arity: [1, 1],
  complete: "dir",
  options: [
    {
      name: "output",
      short: "o",
      kind: "string",
      arg: "FILE",
      help: "the archive to write",
      defaultText: "slayerfs-doctor-VOLUME-TIME.tar.gz in the current folder",
      complete: "file",
    },
    {
      name: "profile-seconds",
      kind: "seconds",
      arg: "SEC",
      help: "how long to profile the daemon's CPU (0: no profile)",
      default: 10,
    },
    {
      name: "log-lines",
      kind: "int",
      arg: "N",
      help: "lines of the daemon's log to include (its last ones)",
      default: 1000,
    },
    QUIET,
  ],
  examples: [
    "slayerfs doctor /mnt/vol1",
    "slayerfs doctor --profile-seconds 30 -o /tmp/vol1-report.tar.gz /mnt/vol1",
  ],
};

/** `slayerfs sync`. */
export const SYNC: CommandSpec = {
  name: "sync",
  summary: "copy what changed between folders (a mount's too) and S3 prefixes, in parallel",
  description: "Copies the files of SRC that DST lacks, or has with another size or mtime " +
    "(--check: other contents), --threads at a time; --delete removes from DST what SRC lacks. " +
    "Each end is a local folder (a SlayerFS volume through its mount) or " +
    "s3://BUCKET/PREFIX?endpoint=URL of plain objects (keys from AWS_ACCESS_KEY_ID and " +
    "AWS_SECRET_ACCESS_KEY). --include/--exclude are tried in the order given; the first " +
    "that matches decides. Running it again copies only what is not done yet. Exits 1 with a " +
    "list of what failed.",
  usage: ["SRC DST"],
  args: [
    { name: "SRC", help: "a folder, or s3://BUCKET/PREFIX?endpoint=URL" },
    { name: "DST", help: "a folder (created if missing), or s3://BUCKET/PREFIX?endpoint=URL" },
  ],
  arity: [2, 2],
  complete: "dir",
  options: [
    {
      name: "threads",
      short: "p",
      kind: "int",
      arg: "N",
      min: 1,
      help: "files copied at once",
      default: 10,
    },
    { name: "check", kind: "flag", help: "compare the contents of files of the same size" },
    { name: "delete", kind: "flag", help: "remove files of DST that SRC does not have" },
    {
      name: "include",
      kind: "string",
      arg: "GLOB",
      multiple: true,
      help: "sync the paths that match (rules apply in the order given)",
    },
    {
      name: "exclude",
      kind: "string",
      arg: "GLOB",
      multiple: true,
      help: "leave out the paths that match (rules apply in the order given)",
    },
    { name: "dry-run", kind: "flag", help: "only list what would be copied and deleted" },
    QUIET,
  ],
  examples: [
    "slayerfs sync /data/photos /mnt/vol1/photos",
    "slayerfs sync --delete --exclude '*.tmp' /mnt/vol1/out 's3://backup/out/?endpoint=http://minio:9000'",
    "slayerfs sync --include '*.csv' --exclude '*' 's3://raw/2026/' /mnt/vol1/csv",
  ],
};

/** `slayerfs import`. */
export const IMPORT: CommandSpec = {
  name: "import",
  summary: "make files of the objects under an S3 prefix, in place (no byte copied)",
  description: "Lists s3://BUCKET/PREFIX?endpoint=URL (keys from AWS_ACCESS_KEY_ID and " +
    "AWS_SECRET_ACCESS_KEY) and creates under DEST (a folder of the volume, created if missing) " +
    "a file for each object, directories from the key's / parts. A file's data refers to the " +
    "object by key, size and ETag: reads fetch byte ranges of the object (If-Match: ETAG, so a " +
    "changed object gives EIO, never mixed bytes); writes go to the volume on top, and the " +
    "object is never modified or deleted. Running it again resumes: objects already imported " +
    "with the same ETag are skipped. --refresh also replaces the references of changed objects " +
    "and removes the files of deleted ones, except files written since the import (kept, with " +
    "a warning). Works while the volume is mounted.",
  usage: ["META_URL s3://BUCKET/PREFIX DEST"],
  args: [
    META_URL,
    { name: "SOURCE", help: "s3://BUCKET/PREFIX?endpoint=URL: the objects to import" },
    { name: "DEST", help: "the folder of the volume that gets them, e.g. /datasets/name" },
  ],
  arity: [3, 3],
  options: [
    {
      name: "refresh",
      kind: "flag",
      help: "also replace changed objects' references and remove files of deleted objects",
    },
    {
      name: "threads",
      short: "p",
      kind: "int",
      arg: "N",
      min: 1,
      help: "objects imported at once (their files committed in one transaction)",
      default: 64,
    },
    { name: "quiet", short: "q", kind: "flag", help: "no progress lines" },
  ],
  examples: [
    "slayerfs import sqlite3:///var/lib/slayerfs/meta.db 's3://data/imagenet/?endpoint=http://minio:9000' /datasets/imagenet",
    "slayerfs import --refresh sqlite3:///var/lib/slayerfs/meta.db s3://data/imagenet/ /datasets/imagenet",
  ],
};

/** `slayerfs docker-plugin`. */
export const DOCKER_PLUGIN: CommandSpec = {
  name: "docker-plugin",
  summary: "serve Docker volumes (docker volume create -d slayerfs) from folders of a volume",
  description: "Answers Docker's volume plugin protocol on a unix socket. Each Docker volume is " +
    "the folder /docker-volumes/NAME of the --meta volume (or of the one its meta option " +
    "names), with a quota from its capacity and inodes options, mounted with mount --subdir " +
    "under --root while containers use it (one mount per volume, however many containers). " +
    "Volume options: capacity=SIZE, inodes=N, ro=true, meta=META_URL. Runs in the foreground; " +
    "mounts outlive it, and a restarted plugin adopts them.",
  usage: ["--meta META_URL"],
  args: [],
  arity: [0, 0],
  options: [
    CONFIG_OPTION,
    { name: "meta", kind: "string", arg: "META_URL", help: "the volume holding the volumes" },
    {
      name: "socket",
      kind: "string",
      arg: "PATH",
      help: "the plugin's unix socket (its file name is the driver name Docker uses)",
      default: "/run/docker/plugins/slayerfs.sock",
      complete: "file",
    },
    {
      name: "root",
      kind: "string",
      arg: "DIR",
      help: "where the volumes are mounted (and the plugin's state kept)",
      default: "/var/lib/slayerfs/docker",
      complete: "dir",
    },
  ],
  examples: [
    "slayerfs docker-plugin --meta redis://10.0.0.5:6379/1",
    "docker volume create -d slayerfs -o capacity=1G -o inodes=100000 data1",
  ],
};

/** `slayerfs csi`. */
export const CSI: CommandSpec = {
  name: "csi",
  summary: "serve the Kubernetes CSI driver (identity, controller and node) on a unix socket",
  description: "A Container Storage Interface v1.9.0 driver named csi.slayerfs.io: " +
    "CreateVolume makes a folder /csi-volumes/NAME with a quota from the requested capacity, " +
    "NodePublishVolume mounts it at the target path with mount --subdir (-o ro when read-only), " +
    "ControllerExpandVolume raises the quota, NodeGetVolumeStats reports it. The metadata URL " +
    "comes from --meta, the StorageClass parameter meta, or the secret metaurl; S3 keys from the " +
    "secrets access-key and secret-key.",
  usage: ["--endpoint unix:///csi/csi.sock --node-id NODE"],
  args: [],
  arity: [0, 0],
  options: [
    CONFIG_OPTION,
    {
      name: "endpoint",
      kind: "string",
      arg: "URL",
      help: "the gRPC endpoint, unix:///PATH",
      default: "unix:///csi/csi.sock",
    },
    { name: "node-id", kind: "string", arg: "NODE", help: "this node's name (NodeGetInfo)" },
    {
      name: "meta",
      kind: "string",
      arg: "META_URL",
      help: "the volume holding the CSI volumes, unless a request names one",
    },
    {
      name: "root",
      kind: "string",
      arg: "DIR",
      help: "where the node keeps its state and logs",
      default: "/var/lib/slayerfs/csi",
      complete: "dir",
    },
  ],
  examples: [
    "slayerfs csi --endpoint unix:///csi/csi.sock --node-id $(hostname) " +
    "--meta redis://10.0.0.5:6379/1",
  ],
};

/** `slayerfs quota`. */
export const QUOTA: CommandSpec = {
  name: "quota",
  summary: "directory quotas: set, get, list, delete, check (usage recomputed)",
  description: "A quota limits the space (file lengths rounded up to 4 KiB) and the inodes of " +
    "a directory tree, nested quotas included: every change counts against each quota above " +
    "it, in the transaction that makes it. Writes and creates past a limit fail with EDQUOT. " +
    "Running mounts see a change at their next write or create. check compares the usage kept " +
    "with a walk of the tree; --repair stores the walked usage.",
  usage: [
    "set META_URL --path PATH [--capacity SIZE] [--inodes N]",
    "get META_URL --path PATH [--json]",
    "list META_URL [--json]",
    "delete META_URL --path PATH",
    "check META_URL [--path PATH] [--repair] [--json]",
  ],
  args: [META_URL],
  arity: [2, 2],
  complete: ["set", "get", "list", "delete", "check"],
  options: [
    {
      name: "path",
      kind: "string",
      arg: "PATH",
      help: "the directory, from the volume's root (/team-a)",
    },
    {
      name: "capacity",
      kind: "size",
      arg: "SIZE",
      help: "set: the space limit (0 = none); a plain number is bytes",
    },
    { name: "inodes", kind: "int", arg: "N", help: "set: the inode limit (0 = none)" },
    { name: "json", kind: "flag", help: "get, list, check: print JSON, for scripts" },
    { name: "repair", kind: "flag", help: "check: store the usage the walk found" },
  ],
  examples: [
    "slayerfs quota set sqlite3:///var/lib/slayerfs/meta.db --path /team-a --capacity 10G " +
    "--inodes 100000",
    "slayerfs quota get sqlite3:///var/lib/slayerfs/meta.db --path /team-a --json",
    "slayerfs quota check --repair sqlite3:///var/lib/slayerfs/meta.db",
  ],
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

/** `slayerfs completion`. */
export const COMPLETION: CommandSpec = {
  name: "completion",
  summary: "print a shell completion script (bash or zsh)",
  usage: ["bash|zsh"],
  args: [{ name: "bash|zsh", help: "the shell" }],
  arity: [1, 1],
  complete: ["bash", "zsh"],
  options: [],
  examples: [
    "slayerfs completion bash > /etc/bash_completion.d/slayerfs",
    'slayerfs completion zsh > "${fpath[1]}/_slayerfs"',
  ],
};

/** `slayerfs version`. */
export const VERSION: CommandSpec = {
  name: "version",
  summary: "print the versions of SlayerFS, Deno and libfuse (also --version)",
  usage: [""],
  args: [],
  arity: [0, 0],
  options: [],
  examples: ["slayerfs --version"],
};
