/**
 * The OCI runtime `config.json` that `slayerfs image import --bundle` writes beside an image's
 * `rootfs`: `runc spec`'s defaults (namespaces, mounts, masked paths) with the image's command,
 * environment, working directory and user, and a writable root.
 *
 * @module
 */

import type { ImageInfo } from "./info.ts";

const CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
const DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((s): s is string => typeof s === "string") : [];

/** The runtime config of a bundle whose `rootfs` holds `image`. */
export function runtimeConfig(image: ImageInfo): Record<string, unknown> {
  const c = image.config;
  const args = [...strings(c.Entrypoint), ...strings(c.Cmd)];
  const env = strings(c.Env);
  if (!env.some((e) => e.startsWith("PATH="))) env.unshift(DEFAULT_PATH);
  const [uid, gid] = String(c.User ?? "").split(":").map((s) => Number(s));
  return {
    ociVersion: "1.0.2-dev",
    process: {
      terminal: false,
      user: {
        uid: Number.isInteger(uid) ? uid : 0,
        gid: Number.isInteger(gid) ? gid : 0,
      },
      args: args.length ? args : ["sh"],
      env,
      cwd: typeof c.WorkingDir === "string" && c.WorkingDir ? c.WorkingDir : "/",
      capabilities: { bounding: CAPS, effective: CAPS, permitted: CAPS, ambient: CAPS },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: "rootfs", readonly: false },
    hostname: "slayerfs",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      {
        destination: "/dev",
        type: "tmpfs",
        source: "tmpfs",
        options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
      },
      {
        destination: "/dev/pts",
        type: "devpts",
        source: "devpts",
        options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
      },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      {
        destination: "/sys",
        type: "sysfs",
        source: "sysfs",
        options: ["nosuid", "noexec", "nodev", "ro"],
      },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: "rwm" }] },
      namespaces: [
        { type: "pid" },
        { type: "network" },
        { type: "ipc" },
        { type: "uts" },
        { type: "mount" },
      ],
      maskedPaths: ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}
