/**
 * The `-o` mount options of `slayerfs mount`, declared once beside the command table
 * (`_commands.ts`, which exports them): `--help`, shell completion, the config file and the
 * README test read them from there.
 *
 * @module
 */

/** The `-o` mount options, each with its help text (`NAME=VALUE` for those that take a value). */
export const MOUNT_OPTIONS: readonly { readonly name: string; readonly help: string }[] = [
  {
    name: "allow_other",
    help: "let other users use the mount (default for root; needs user_allow_other otherwise)",
  },
  { name: "no_allow_other", help: "only the mounting user may use the mount (root's default off)" },
  { name: "suid", help: "honour setuid/setgid bits (root only; for rootfs and images)" },
  { name: "dev", help: "allow device nodes to be opened (root only; for rootfs and images)" },
  { name: "rootfs", help: "suid and dev together: for a container rootfs or chroot on the mount" },
  {
    name: "ro",
    help: "read-only: every change fails with EROFS; nothing is written to the volume",
  },
  { name: "noexec", help: "do not allow programs on the mount to be executed" },
  { name: "debug", help: "log debug lines and libfuse's request trace" },
  { name: "nonempty", help: "mount on a folder that is not empty" },
  { name: "writeback_cache", help: "the kernel buffers writes (FUSE writeback cache)" },
  { name: "attr_timeout=SEC", help: "how long the kernel caches attributes" },
  { name: "entry_timeout=SEC", help: "how long the kernel caches names" },
  { name: "negative_timeout=SEC", help: "how long the kernel caches a missing name" },
  { name: "default_permissions", help: "the kernel checks permissions (always on)" },
  { name: "fs_flock", help: "send flock(2) to SlayerFS, shared by every mount (the default)" },
  { name: "local_flock", help: "keep flock(2) in the kernel: seen by this mount only" },
  { name: "loop=js|mt", help: "the request loop: the JS thread (default) or libfuse's threads" },
  { name: "loop_spin_us=N", help: "how long the JS loop spins for the next request (500)" },
  {
    name: "read_around=SIZE",
    help: "a random read also fills the kernel's page cache around it (64K; 0 = off)",
  },
  {
    name: "io_deadline=SEC",
    help: "EIO for a request the store cannot answer in time (60; 0 = none)",
  },
  {
    name: "random_fill=SIZE",
    help: "files read at random go whole to the disk cache, up to SIZE (0 = off)",
  },
  {
    name: "readahead=SIZE",
    help: "the most a sequential read fetches ahead (192M with a disk cache, else 32M; 0 = off)",
  },
];
