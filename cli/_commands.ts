/**
 * What every `slayerfs` command takes, declared once: arguments, options (type, default, unit,
 * help) and examples. The parser (`_spec.ts`), `--help` (`_help.ts`), shell completion
 * (`completion.ts`) and the README test all read this table.
 *
 * @module
 */

import { DEFAULT_BLOCK_SIZE, DEFAULT_INLINE_MAX } from "../core/format.ts";
import type { CommandSpec, OptionSpec } from "./_spec.ts";
import {
  BENCH,
  CLONE,
  COMPLETION,
  CONFIG_OPTION,
  CSI,
  DOCKER_PLUGIN,
  DOCTOR,
  DUMP,
  FSCK,
  IMPORT,
  LOAD,
  QUOTA,
  SNAPSHOT,
  SYNC,
  VERSION,
} from "./_commands_tools.ts";

export { MOUNT_OPTIONS } from "./_mount_options.ts";

const MiB = 2 ** 20;

const META_URL = {
  name: "META_URL",
  help: "the volume's metadata: sqlite3:///abs/path/meta.db, mem://[name] or " +
    "redis://[USER:PASS@]HOST:PORT/DB (also rediss://, redis+unix:///PATH.sock?db=N)",
};

/** `--encrypt-key FILE`: the key of an encrypted volume (`core/_crypto.ts`). */
const ENCRYPT_KEY = (
  help: string,
  defaultText = "the key text in $SLAYERFS_ENCRYPTION_KEY, if set",
): OptionSpec => ({
  name: "encrypt-key",
  kind: "string",
  arg: "FILE",
  complete: "file",
  help,
  defaultText,
});

const FORMAT: CommandSpec = {
  name: "format",
  summary: "create a volume, or check that an existing one has the same settings",
  description: "Formatting an existing volume again with the same settings changes nothing; " +
    "with other settings it fails. A failing format creates nothing.",
  usage: ["META_URL NAME"],
  args: [META_URL, { name: "NAME", help: "the volume's name: 1-63 letters, digits, . _ -" }],
  arity: [2, 2],
  options: [
    CONFIG_OPTION,
    {
      name: "storage",
      kind: "string",
      arg: "URL",
      help: "where the blocks go: file:///abs/dir, mem://[name] or " +
        "s3://BUCKET/PREFIX?endpoint=URL&region=R&path_style=true",
      defaultText: "file:///DIR/NAME-data beside a sqlite3 metadata file; needed with redis",
    },
    {
      name: "block-size",
      kind: "size",
      arg: "SIZE",
      help: "largest block, a power of two from 64 KiB to 16 MiB; a plain number is bytes",
      default: DEFAULT_BLOCK_SIZE,
    },
    {
      name: "compress",
      kind: "choice",
      arg: "lz4|none",
      choices: ["lz4", "none"],
      help: "block compression",
      default: "lz4",
    },
    { name: "dedup", kind: "flag", help: "store identical blocks once (BLAKE3 keys)" },
    {
      name: "inline-max",
      kind: "size",
      arg: "SIZE",
      help: "keep blocks up to this size in the metadata, 0 to 64 KiB; a plain number is bytes",
      default: DEFAULT_INLINE_MAX,
    },
    {
      name: "capacity",
      kind: "size",
      arg: "SIZE",
      help: "the size df reports; a plain number is bytes",
      default: 2 ** 50,
    },
    {
      name: "inodes",
      kind: "int",
      arg: "N",
      min: 1,
      help: "the inode count df reports",
      default: 2 ** 40,
    },
    ENCRYPT_KEY(
      "encrypt every object with AES-256-GCM under the key in FILE (32 random bytes: " +
        "openssl rand -out FILE 32); keep it safe, a lost key is lost data",
      "no encryption",
    ),
  ],
  examples: [
    "slayerfs format sqlite3:///var/lib/slayerfs/meta.db vol1",
    'slayerfs format --storage "s3://bucket/vol1?endpoint=http://127.0.0.1:9000" ' +
    "--block-size 4M sqlite3:///var/lib/slayerfs/meta.db vol1",
  ],
};

const SIZE_IN_MIB = "; a plain number is MiB";

/** The mount's metrics and logging options (see README "Operations"). */
const TELEMETRY_OPTIONS: readonly OptionSpec[] = [
  {
    name: "metrics",
    kind: "string",
    arg: "ADDR",
    help: "serve Prometheus metrics at http://ADDR/metrics (the next free port if taken)",
    default: "127.0.0.1:9567",
  },
  { name: "no-metrics", kind: "flag", help: "no metrics endpoint" },
  {
    name: "log-level",
    kind: "choice",
    arg: "LEVEL",
    choices: ["debug", "info", "warning", "error"],
    help: "the lowest level logged: debug, info, warning or error",
    defaultText: "info (debug with -o debug)",
  },
  {
    name: "log-format",
    kind: "choice",
    arg: "text|json",
    choices: ["text", "json"],
    help: "log lines as text, or as JSON objects (one per line)",
    default: "text",
  },
  {
    name: "log-max-size",
    kind: "size",
    arg: "SIZE",
    unit: MiB,
    help: "rotate the log file at this size (0: never)" + SIZE_IN_MIB,
    default: 64 * MiB,
  },
  {
    name: "log-max-files",
    kind: "int",
    arg: "N",
    min: 0,
    help: "rotated log files kept (FILE.1 ... FILE.N)",
    default: 5,
  },
];

const MOUNT: CommandSpec = {
  name: "mount",
  summary: "mount a volume (in the background by default)",
  description: "Returns once the mount is ready; a detached daemon keeps serving and logs to " +
    "--log. A missing mountpoint folder is created. With MOUNTPOINT alone, mounts the embedded " +
    "default volume in $SLAYERFS_HOME, formatted on first use.",
  usage: ["META_URL MOUNTPOINT", "MOUNTPOINT"],
  args: [META_URL, { name: "MOUNTPOINT", help: "an empty folder (created if missing)" }],
  arity: [1, 2],
  complete: "dir",
  options: [
    CONFIG_OPTION,
    {
      name: "background",
      short: "d",
      kind: "flag",
      help: "serve from a detached daemon and return once mounted (the default)",
    },
    {
      name: "foreground",
      short: "f",
      kind: "flag",
      help: "serve in this terminal until unmounted or interrupted",
    },
    {
      name: "o",
      kind: "string",
      arg: "OPTS",
      multiple: true,
      help: "mount options, comma separated (see below; repeatable)",
    },
    {
      name: "upgrade",
      kind: "flag",
      help: "replace the daemon serving MOUNTPOINT by a new one (the code on disk now) that " +
        "takes its live connection over: open files stay open, nothing fails",
    },
    {
      name: "supervise",
      kind: "flag",
      help: "run a small supervisor that restarts a daemon that crashed on the same connection " +
        "(files open through the dead one fail with EBADF; new opens work)",
    },
    {
      name: "cache-size",
      kind: "size",
      arg: "SIZE",
      unit: MiB,
      help: "the memory block cache" + SIZE_IN_MIB,
      default: 32 * MiB,
    },
    {
      name: "cache-dir",
      kind: "string",
      arg: "DIR",
      multiple: true,
      complete: "dir",
      help: "a disk cache folder (repeatable)",
      defaultText: "$SLAYERFS_HOME/cache/UUID for remote storage, none for local",
    },
    {
      name: "cache-dir-size",
      kind: "size",
      arg: "SIZE",
      unit: MiB,
      help: "the size of each disk cache folder" + SIZE_IN_MIB,
      defaultText: "half the free space of its filesystem",
    },
    { name: "no-cache-dir", kind: "flag", help: "no disk cache, even for remote storage" },
    {
      name: "cache-large-write",
      kind: "flag",
      help: "also keep written blocks of the full block size in the disk cache (not only shorter " +
        "ones)",
    },
    {
      name: "writeback",
      kind: "flag",
      help: "stage writes on local disk and upload them in the background",
    },
    {
      name: "writeback-dir",
      kind: "string",
      arg: "DIR",
      complete: "dir",
      help: "the staging folder",
      defaultText: "$SLAYERFS_HOME/writeback/UUID",
    },
    {
      name: "writeback-size",
      kind: "size",
      arg: "SIZE",
      unit: MiB,
      help: "the staging capacity" + SIZE_IN_MIB,
      defaultText: "the free space, less 10% kept free",
    },
    {
      name: "upload-limit",
      kind: "int",
      arg: "MBIT",
      min: 1,
      help: "the most Mbit/s this mount uploads to the object store",
      defaultText: "no limit",
    },
    {
      name: "download-limit",
      kind: "int",
      arg: "MBIT",
      min: 1,
      help: "the most Mbit/s this mount downloads from the object store",
      defaultText: "no limit",
    },
    {
      name: "upload-window",
      kind: "string",
      arg: "HH:MM-HH:MM",
      help: "with --writeback: upload staged blocks only in this daily window (local time)",
      defaultText: "always",
    },
    {
      name: "atime-mode",
      kind: "choice",
      arg: "MODE",
      choices: ["noatime", "relatime", "strictatime"],
      help: "when reads update atime: never, when older than mtime/ctime or a day, or always",
      default: "noatime",
    },
    {
      name: "subdir",
      kind: "string",
      arg: "PATH",
      help: "mount only this directory of the volume (it must exist); its quota is what df shows",
    },
    {
      name: "session-timeout",
      kind: "seconds",
      arg: "SEC",
      help: "after this long without this mount's heartbeat, another mount of the volume takes " +
        "it for dead and cleans up after it",
      default: 60,
    },
    {
      name: "log",
      kind: "string",
      arg: "FILE",
      complete: "file",
      help: "the background daemon's log file",
      defaultText: "$SLAYERFS_HOME/slayerfs.log",
    },
    ENCRYPT_KEY("the key file of an encrypted volume"),
    ...TELEMETRY_OPTIONS,
  ],
  examples: [
    "slayerfs mount sqlite3:///var/lib/slayerfs/meta.db /mnt/vol1",
    "slayerfs mount --cache-dir /var/cache/slayerfs --cache-dir-size 20G --writeback " +
    "sqlite3:///var/lib/slayerfs/meta.db /mnt/vol1",
    "slayerfs mount /mnt/slayerfs   # the embedded default volume",
  ],
};

const UMOUNT: CommandSpec = {
  name: "umount",
  aliases: ["unmount"],
  summary: "unmount, then wait for the daemon to flush and exit",
  usage: ["MOUNTPOINT"],
  args: [{ name: "MOUNTPOINT", help: "a SlayerFS mountpoint" }],
  arity: [1, 1],
  complete: "dir",
  options: [
    { name: "lazy", short: "l", kind: "flag", help: "detach now even if busy" },
    {
      name: "flush",
      kind: "flag",
      help: "first wait until every block staged with --writeback is uploaded",
    },
  ],
  examples: ["slayerfs umount /mnt/vol1", "slayerfs umount --flush /mnt/vol1"],
};

const STATUS: CommandSpec = {
  name: "status",
  summary: "show a mount's state, or a volume's format and usage",
  usage: ["PATH|META_URL"],
  args: [{ name: "PATH|META_URL", help: "any path inside a mount, or a volume's metadata URL" }],
  arity: [1, 1],
  complete: "dir",
  options: [{ name: "json", kind: "flag", help: "print the raw state as JSON, for scripts" }],
  examples: [
    "slayerfs status /mnt/vol1",
    "slayerfs status --json /mnt/vol1",
    "slayerfs status sqlite3:///var/lib/slayerfs/meta.db",
  ],
};

const STATS: CommandSpec = {
  name: "stats",
  summary: "show a mount's live statistics every second (ops, throughput, cache, objects)",
  description: "Reads the mount's metrics endpoint (see --metrics of mount) and prints one " +
    "line per interval: FUSE operations per second and their mean latency, read and write " +
    "throughput, the block cache's hit rate, object store requests and bytes, metadata " +
    "transactions, staged blocks, and the daemon's CPU and memory. Runs until interrupted, " +
    "or for --count lines.",
  usage: ["MOUNTPOINT"],
  args: [{ name: "MOUNTPOINT", help: "any path inside a mount" }],
  arity: [1, 1],
  complete: "dir",
  options: [
    {
      name: "interval",
      kind: "seconds",
      arg: "SEC",
      help: "seconds between lines",
      default: 1,
    },
    {
      name: "count",
      short: "n",
      kind: "int",
      arg: "N",
      min: 1,
      help: "stop after N lines",
      defaultText: "until interrupted",
    },
  ],
  examples: ["slayerfs stats /mnt/vol1", "slayerfs stats --count 5 /mnt/vol1"],
};

const INFO: CommandSpec = {
  name: "info",
  summary: "show a file's sizes, chunks, slices and blocks, or a directory's summary",
  usage: ["PATH"],
  args: [{ name: "PATH", help: "a file or directory inside a SlayerFS mount" }],
  arity: [1, 1],
  complete: "file",
  options: [],
  examples: ["slayerfs info /mnt/vol1/data.bin"],
};

const WARMUP: CommandSpec = {
  name: "warmup",
  summary: "read files (folders recursively) into the cache, with a progress bar",
  usage: ["PATH..."],
  args: [{ name: "PATH...", help: "files or folders inside a mount" }],
  arity: [1, Infinity],
  complete: "file",
  options: [
    { name: "threads", kind: "int", arg: "N", min: 1, help: "files read at once", default: 8 },
    { name: "quiet", short: "q", kind: "flag", help: "no progress bar" },
  ],
  examples: ["slayerfs warmup /mnt/vol1/datasets/imagenet"],
};

const GC: CommandSpec = {
  name: "gc",
  summary: "report, or delete, objects no file refers to (safe while mounted)",
  description: "Lists the block store once and checks every object against the metadata: " +
    "objects of freed slices not deleted yet, and leaked uploads.",
  usage: ["META_URL"],
  args: [META_URL],
  arity: [1, 1],
  options: [
    { name: "delete", kind: "flag", help: "delete what it finds" },
    {
      name: "min-age",
      kind: "seconds",
      arg: "SEC",
      help: "leave unreferenced objects younger than this alone (may be in flight)",
      default: 3600,
    },
  ],
  examples: ["slayerfs gc sqlite3:///var/lib/slayerfs/meta.db", "slayerfs gc --delete META_URL"],
};

const IMAGE: CommandSpec = {
  name: "image",
  summary: "import container images into a volume (docker save or OCI tar), list and remove them",
  description: "import applies the layers in order into /.images/NAME/rootfs on the volume " +
    "(whiteouts, opaque directories, owners, modes, xattrs, links and device nodes kept), " +
    "checks every layer's digest, and makes the image visible under NAME only when complete " +
    "(also while the volume is mounted).",
  usage: [
    "import [--bundle] [-q] META_URL IMAGE.tar NAME",
    "ls [--json] META_URL",
    "rm META_URL NAME",
  ],
  args: [
    META_URL,
    { name: "IMAGE.tar", help: "a docker save archive or an OCI image layout tar" },
    { name: "NAME", help: "the image's name on the volume: letters, digits, . _ : @ -" },
  ],
  arity: [2, 4],
  complete: ["import", "ls", "rm"],
  options: [
    {
      name: "bundle",
      kind: "flag",
      help: "also write an OCI runtime config.json (runc run --bundle)",
    },
    { name: "json", kind: "flag", help: "ls: print image.json of every image" },
    { name: "quiet", short: "q", kind: "flag", help: "no progress bar" },
    ENCRYPT_KEY("the key file of an encrypted volume"),
  ],
  examples: [
    "slayerfs image import sqlite3:///var/lib/slayerfs/meta.db busybox.tar busybox",
    "slayerfs image ls sqlite3:///var/lib/slayerfs/meta.db",
    "slayerfs image rm sqlite3:///var/lib/slayerfs/meta.db busybox",
  ],
};

const DESTROY: CommandSpec = {
  name: "destroy",
  summary: "delete a volume: its objects and all its metadata (asks for its name first)",
  description: "Refuses while the volume is mounted anywhere (a live session); sessions of " +
    "mounts that died and were not cleaned up yet need --force. Cannot be undone.",
  usage: ["META_URL"],
  args: [META_URL],
  arity: [1, 1],
  options: [
    { name: "yes", short: "y", kind: "flag", help: "do not ask for the volume's name" },
    { name: "force", kind: "flag", help: "go on despite sessions of dead mounts" },
  ],
  examples: [
    "slayerfs destroy sqlite3:///var/lib/slayerfs/meta.db",
    "slayerfs destroy --yes META_URL",
  ],
};

const CONFIG: CommandSpec = {
  name: "config",
  summary: "show the effective settings of mount (or format) and where each came from",
  description: "Merges the command line, SLAYERFS_* variables, the --config file and the " +
    "defaults as the command would, and prints every setting with its source (flag, env, file " +
    "with its line, or default); passwords and keys in URLs are masked.",
  usage: [
    "show [MOUNT OPTIONS] [META_URL] [MOUNTPOINT]",
    "show format [FORMAT OPTIONS] [META_URL] [NAME]",
    "show docker-plugin|csi [OPTIONS]",
  ],
  args: [
    { name: "show", help: "the only action so far" },
    {
      name: "format",
      help: "show format's (or docker-plugin's, or csi's) settings instead of mount's",
    },
  ],
  arity: [1, 4],
  complete: ["show"],
  options: [
    { name: "json", kind: "flag", help: "print the settings as JSON, for scripts" },
    // Every option of the commands that read settings, once (their names do not collide).
    ...[...MOUNT.options, ...FORMAT.options, ...DOCKER_PLUGIN.options, ...CSI.options].filter((
      o,
      i,
      all,
    ) => all.findIndex((x) => x.name === o.name) === i),
  ],
  examples: [
    "slayerfs config show --config /etc/slayerfs/vol1.yaml",
    "SLAYERFS_CACHE_SIZE=1G slayerfs config show --json --config vol1.toml --log-level debug",
    "slayerfs config show format --config /etc/slayerfs/vol1.yaml",
  ],
};

/** Every command, in the order `slayerfs --help` lists them. */
export const COMMANDS: readonly CommandSpec[] = [
  FORMAT,
  MOUNT,
  UMOUNT,
  STATUS,
  STATS,
  INFO,
  WARMUP,
  CLONE,
  SNAPSHOT,
  GC,
  DUMP,
  LOAD,
  FSCK,
  BENCH,
  DOCTOR,
  SYNC,
  IMPORT,
  QUOTA,
  IMAGE,
  DOCKER_PLUGIN,
  CSI,
  DESTROY,
  CONFIG,
  COMPLETION,
  VERSION,
];

/** The command called `name` (or one of its aliases), if any. */
export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
}
