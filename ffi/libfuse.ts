/**
 * The raw libfuse3 layer: the symbol table of `libfuse3.so.3` (low-level API), library loading,
 * and the x86_64 struct layouts of libfuse 3.14. The C library comes from `core/libc.ts`.
 *
 * Nothing here knows about {@linkcode FsOps}; the typed adapter lives in `adapter.ts`. Layouts
 * were checked with `offsetof`/`sizeof` against `/usr/include/fuse3/fuse_lowlevel.h` (libfuse
 * 3.14, glibc, x86_64).
 *
 * @module
 */

import { libraryPath } from "../core/libc.ts";

/** The libfuse3 low-level symbols SlayerFS calls, each with its C signature. */
export const FUSE_SYMBOLS = {
  /** struct fuse_session *fuse_session_new(struct fuse_args *args, const struct fuse_lowlevel_ops *op, size_t op_size, void *userdata); */
  fuse_session_new: { parameters: ["pointer", "pointer", "usize", "pointer"], result: "pointer" },
  /** int fuse_session_mount(struct fuse_session *se, const char *mountpoint); */
  fuse_session_mount: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int fuse_session_fd(struct fuse_session *se); */
  fuse_session_fd: { parameters: ["pointer"], result: "i32" },
  /** void fuse_session_exit(struct fuse_session *se); */
  fuse_session_exit: { parameters: ["pointer"], result: "void" },
  /** int fuse_session_exited(struct fuse_session *se); */
  fuse_session_exited: { parameters: ["pointer"], result: "i32" },
  /** void fuse_session_unmount(struct fuse_session *se); — off the JS thread (may run fusermount3) */
  fuse_session_unmount: { parameters: ["pointer"], result: "void", nonblocking: true },
  /** void fuse_session_destroy(struct fuse_session *se); */
  fuse_session_destroy: { parameters: ["pointer"], result: "void" },
  /** int fuse_session_loop(struct fuse_session *se); — runs on its own thread */
  fuse_session_loop: { parameters: ["pointer"], result: "i32", nonblocking: true },
  /** int fuse_session_loop_mt_312(struct fuse_session *se, struct fuse_loop_config *config); */
  fuse_session_loop_mt_312: {
    parameters: ["pointer", "pointer"],
    result: "i32",
    nonblocking: true,
    optional: true,
  },
  /** struct fuse_loop_config *fuse_loop_cfg_create(void); */
  fuse_loop_cfg_create: { parameters: [], result: "pointer", optional: true },
  /** void fuse_loop_cfg_destroy(struct fuse_loop_config *config); */
  fuse_loop_cfg_destroy: { parameters: ["pointer"], result: "void", optional: true },
  /** void fuse_loop_cfg_set_max_threads(struct fuse_loop_config *config, unsigned int value); */
  fuse_loop_cfg_set_max_threads: { parameters: ["pointer", "u32"], result: "void", optional: true },
  /** int fuse_session_receive_buf(struct fuse_session *se, struct fuse_buf *buf); */
  fuse_session_receive_buf: { parameters: ["pointer", "pointer"], result: "i32" },
  /** void fuse_session_process_buf(struct fuse_session *se, const struct fuse_buf *buf); — calls back into JS synchronously (Deno 2 allows it without a flag) */
  fuse_session_process_buf: { parameters: ["pointer", "pointer"], result: "void" },
  /** void fuse_opt_free_args(struct fuse_args *args); */
  fuse_opt_free_args: { parameters: ["pointer"], result: "void" },
  /** const struct fuse_ctx *fuse_req_ctx(fuse_req_t req); */
  fuse_req_ctx: { parameters: ["pointer"], result: "pointer" },
  /** int fuse_req_interrupted(fuse_req_t req); */
  fuse_req_interrupted: { parameters: ["pointer"], result: "i32", optional: true },
  /** int fuse_reply_err(fuse_req_t req, int err); — err is a positive errno */
  fuse_reply_err: { parameters: ["pointer", "i32"], result: "i32" },
  /** void fuse_reply_none(fuse_req_t req); */
  fuse_reply_none: { parameters: ["pointer"], result: "void" },
  /** int fuse_reply_entry(fuse_req_t req, const struct fuse_entry_param *e); */
  fuse_reply_entry: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int fuse_reply_create(fuse_req_t req, const struct fuse_entry_param *e, const struct fuse_file_info *fi); */
  fuse_reply_create: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  /** int fuse_reply_attr(fuse_req_t req, const struct stat *attr, double attr_timeout); */
  fuse_reply_attr: { parameters: ["pointer", "buffer", "f64"], result: "i32" },
  /** int fuse_reply_readlink(fuse_req_t req, const char *link); */
  fuse_reply_readlink: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int fuse_lowlevel_notify_inval_inode(struct fuse_session *se, fuse_ino_t ino, off_t off, off_t len); */
  fuse_lowlevel_notify_inval_inode: { parameters: ["pointer", "u64", "i64", "i64"], result: "i32" },
  /**
   * int fuse_lowlevel_notify_inval_entry(struct fuse_session *se, fuse_ino_t parent, const char *name, size_t namelen);
   * — on a worker thread: the kernel may wait for a request the JS thread has to answer
   */
  fuse_lowlevel_notify_inval_entry: {
    parameters: ["pointer", "u64", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  /** int fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi); */
  fuse_reply_open: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int fuse_reply_write(fuse_req_t req, size_t count); */
  fuse_reply_write: { parameters: ["pointer", "usize"], result: "i32" },
  /** int fuse_reply_buf(fuse_req_t req, const char *buf, size_t size); — JS bytes, copied during the call */
  fuse_reply_buf: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  /**
   * int fuse_reply_buf(fuse_req_t req, const char *buf, size_t size); — JS bytes, sent from a
   * worker thread (the kernel's copy of a large read leaves the JS thread free)
   */
  fuse_reply_buf_async: {
    name: "fuse_reply_buf",
    parameters: ["pointer", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  /** int fuse_reply_buf(fuse_req_t req, const char *buf, size_t size); — libc memory */
  fuse_reply_buf_ptr: {
    name: "fuse_reply_buf",
    parameters: ["pointer", "pointer", "usize"],
    result: "i32",
  },
  /** int fuse_reply_iov(fuse_req_t req, const struct iovec *iov, int count); */
  fuse_reply_iov: { parameters: ["pointer", "pointer", "i32"], result: "i32" },
  /** int fuse_reply_statfs(fuse_req_t req, const struct statvfs *stbuf); */
  fuse_reply_statfs: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int fuse_reply_xattr(fuse_req_t req, size_t count); */
  fuse_reply_xattr: { parameters: ["pointer", "usize"], result: "i32" },
  /** int fuse_reply_lock(fuse_req_t req, const struct flock *lock); */
  fuse_reply_lock: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int fuse_reply_lseek(fuse_req_t req, off_t off); */
  fuse_reply_lseek: { parameters: ["pointer", "i64"], result: "i32" },
  /** size_t fuse_add_direntry(fuse_req_t req, char *buf, size_t bufsize, const char *name, const struct stat *stbuf, off_t off); */
  fuse_add_direntry: {
    parameters: ["pointer", "pointer", "usize", "buffer", "buffer", "i64"],
    result: "usize",
  },
  /** size_t fuse_add_direntry_plus(fuse_req_t req, char *buf, size_t bufsize, const char *name, const struct fuse_entry_param *e, off_t off); */
  fuse_add_direntry_plus: {
    parameters: ["pointer", "pointer", "usize", "buffer", "buffer", "i64"],
    result: "usize",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded libfuse3 symbols. */
export type FuseLib = Deno.DynamicLibrary<typeof FUSE_SYMBOLS>["symbols"];

/** The library file opened unless `SLAYERFS_LIBFUSE` names another one. */
export const DEFAULT_LIBFUSE = "libfuse3.so.3";

let fuseLib: Deno.DynamicLibrary<typeof FUSE_SYMBOLS> | undefined;

/**
 * Opens libfuse3 once per process (the path comes from `SLAYERFS_LIBFUSE`, else
 * {@linkcode DEFAULT_LIBFUSE}) and returns its symbols.
 *
 * @throws {Error} with the loader's error as `cause` when the library cannot be loaded.
 */
export function loadLibfuse(): FuseLib {
  if (fuseLib) return fuseLib.symbols;
  const path = libraryPath("SLAYERFS_LIBFUSE", DEFAULT_LIBFUSE);
  try {
    fuseLib = Deno.dlopen(path, FUSE_SYMBOLS);
  } catch (cause) {
    throw new Error(
      `Cannot load libfuse3 from "${path}": install it with \`apt-get install fuse3\` ` +
        "or point SLAYERFS_LIBFUSE at libfuse3.so.3",
      { cause },
    );
  }
  return fuseLib.symbols;
}

/** `sizeof(struct fuse_lowlevel_ops)`: 44 function pointers. */
export const OPS_SIZE = 352;

/** Slot index of each callback in `struct fuse_lowlevel_ops` (multiply by 8 for the offset). */
export const OPS_SLOT = {
  init: 0,
  destroy: 1,
  lookup: 2,
  forget: 3,
  getattr: 4,
  setattr: 5,
  readlink: 6,
  mknod: 7,
  mkdir: 8,
  unlink: 9,
  rmdir: 10,
  symlink: 11,
  rename: 12,
  link: 13,
  open: 14,
  read: 15,
  write: 16,
  flush: 17,
  release: 18,
  fsync: 19,
  opendir: 20,
  readdir: 21,
  releasedir: 22,
  fsyncdir: 23,
  statfs: 24,
  setxattr: 25,
  getxattr: 26,
  listxattr: 27,
  removexattr: 28,
  access: 29,
  create: 30,
  getlk: 31,
  setlk: 32,
  bmap: 33,
  ioctl: 34,
  poll: 35,
  write_buf: 36,
  retrieve_reply: 37,
  forget_multi: 38,
  flock: 39,
  fallocate: 40,
  readdirplus: 41,
  copy_file_range: 42,
  lseek: 43,
} as const;

/** `struct stat` (144 bytes). Times are `{i64 sec; i64 nsec}`. */
export const STAT = {
  SIZE: 144,
  ino: 8,
  nlink: 16,
  mode: 24,
  uid: 28,
  gid: 32,
  rdev: 40,
  size: 48,
  blksize: 56,
  blocks: 64,
  atime: 72,
  mtime: 88,
  ctime: 104,
} as const;

/** `struct fuse_entry_param` (176 bytes). */
export const ENTRY = {
  SIZE: 176,
  ino: 0,
  generation: 8,
  attr: 16,
  attrTimeout: 160,
  entryTimeout: 168,
} as const;

/** `struct fuse_file_info` (40 bytes); `bits` is the bitfield word. */
export const FILE_INFO = {
  SIZE: 40,
  flags: 0,
  bits: 4,
  fh: 16,
  lockOwner: 24,
  /** Bits of the word at `bits`. */
  WRITEPAGE: 1 << 0,
  DIRECT_IO: 1 << 1,
  KEEP_CACHE: 1 << 2,
  FLUSH: 1 << 3,
  NONSEEKABLE: 1 << 4,
  FLOCK_RELEASE: 1 << 5,
  CACHE_READDIR: 1 << 6,
} as const;

/** `struct fuse_conn_info` (128 bytes): the fields SlayerFS reads or sets, all `unsigned`. */
export const CONN_INFO = {
  protoMajor: 0,
  protoMinor: 4,
  maxWrite: 8,
  maxRead: 12,
  maxReadahead: 16,
  capable: 20,
  want: 24,
  maxBackground: 28,
  congestionThreshold: 32,
  timeGran: 36,
} as const;

/** `struct fuse_ctx` as returned by `fuse_req_ctx` (16 bytes). */
export const FUSE_CTX = { uid: 0, gid: 4, pid: 8, umask: 12 } as const;

/** `struct flock` (32 bytes). `l_len` 0 means "to end of file". */
export const FLOCK = { SIZE: 32, type: 0, whence: 2, start: 8, len: 16, pid: 24 } as const;

/** `struct statvfs` (112 bytes, all fields 64-bit). */
export const STATVFS = {
  SIZE: 112,
  bsize: 0,
  frsize: 8,
  blocks: 16,
  bfree: 24,
  bavail: 32,
  files: 40,
  ffree: 48,
  favail: 56,
  fsid: 64,
  flag: 72,
  namemax: 80,
} as const;

/** `struct fuse_buf` (40 bytes). */
export const FUSE_BUF = { SIZE: 40, size: 0, flags: 8, mem: 16, fd: 24, pos: 32 } as const;

/** `struct fuse_args` (24 bytes). */
export const FUSE_ARGS = { SIZE: 24, argc: 0, argv: 8, allocated: 16 } as const;

/** `struct fuse_forget_data` (16 bytes): `{u64 ino; u64 nlookup}`. */
export const FORGET_DATA = { SIZE: 16, ino: 0, nlookup: 8 } as const;

/** `FUSE_CAP_*` bits of `fuse_conn_info.capable`/`want` (libfuse 3.14). */
export const FUSE_CAP = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  DONT_MASK: 1 << 6,
  SPLICE_WRITE: 1 << 7,
  SPLICE_MOVE: 1 << 8,
  SPLICE_READ: 1 << 9,
  FLOCK_LOCKS: 1 << 10,
  IOCTL_DIR: 1 << 11,
  AUTO_INVAL_DATA: 1 << 12,
  READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  NO_OPEN_SUPPORT: 1 << 17,
  PARALLEL_DIROPS: 1 << 18,
  POSIX_ACL: 1 << 19,
  HANDLE_KILLPRIV: 1 << 20,
  CACHE_SYMLINKS: 1 << 23,
  NO_OPENDIR_SUPPORT: 1 << 24,
  EXPLICIT_INVAL_DATA: 1 << 25,
} as const;

/** `FUSE_SET_ATTR_*` bits of `setattr`'s `to_set`. */
export const FUSE_SET_ATTR = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  FORCE: 1 << 9,
  CTIME: 1 << 10,
} as const;

/** libc constants (x86_64 Linux). */
export const LIBC = {
  F_GETFL: 3,
  F_SETFL: 4,
  O_NONBLOCK: 0o4000,
  O_CLOEXEC: 0o2000000,
  POLLIN: 1,
  EAGAIN: 11,
  EINTR: 4,
  /** `struct pollfd` is `{int fd; short events; short revents}`. */
  POLLFD_SIZE: 8,
} as const;
