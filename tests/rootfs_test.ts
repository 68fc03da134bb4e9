/**
 * Root filesystems used straight from the mount: what a root mount allows by default
 * (`allow_other`, `nosuid`, `nodev`), what `-o suid,dev` / `-o rootfs` turn on (setuid binaries,
 * device nodes, so a chroot works), `-o no_allow_other`, and `runc run` of a bundle whose root
 * is on SlayerFS.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startSlayer } from "./_mount.ts";
import { run } from "./_run.ts";
import { runAsNobody } from "./posix/suite.ts";
import { busyboxRootfs, ensureApt, must, runcBundle } from "./_containers.ts";

/** The options `/proc/mounts` shows for `mnt`. */
async function mountOptions(mnt: string): Promise<string[]> {
  const line = (await Deno.readTextFile("/proc/mounts")).split("\n")
    .find((l) => l.split(" ")[1] === mnt);
  assert.ok(line, `${mnt} is in /proc/mounts`);
  return line.split(" ")[3]!.split(",");
}

/** Copies `cat` to `path` as a setuid-root binary; returns what its effective uid was as nobody. */
async function setuidEuid(path: string): Promise<string> {
  await Deno.copyFile("/usr/bin/cat", path);
  await Deno.chown(path, 0, 0);
  await Deno.chmod(path, 0o4755);
  const r = await runAsNobody(`"$1" /proc/self/status`, path);
  assert.equal(r.code, 0, r.stderr);
  const uid = r.stdout.split("\n").find((l) => l.startsWith("Uid:"));
  assert.ok(uid, r.stdout);
  return uid.split(/\s+/)[2]!; // Uid: real effective saved fs
}

/** Writes to a /dev/null node made in `dir`; returns the shell's result. */
async function writeDevNull(dir: string) {
  await must("mknod", ["-m", "666", `${dir}/null`, "c", "1", "3"]);
  return await run("sh", ["-c", `echo x > "$1"`, "sh", `${dir}/null`]);
}

Deno.test({
  name: "a root mount admits other users but is nosuid,nodev; -o rootfs turns on suid and dev",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await ensureApt({ busybox: "busybox-static" });
    await using plain = await startSlayer();
    const opts = await mountOptions(plain.mnt);
    for (const o of ["allow_other", "nosuid", "nodev", "default_permissions"]) {
      assert.ok(opts.includes(o), `default mount has ${o}: ${opts}`);
    }
    await Deno.writeTextFile(`${plain.mnt}/shared`, "for everyone\n");
    const other = await runAsNobody(`cat "$1"`, `${plain.mnt}/shared`);
    assert.equal(
      other.stdout,
      "for everyone\n",
      `another user reads the root mount: ${other.stderr}`,
    );
    assert.equal(await setuidEuid(`${plain.mnt}/suidcat`), "65534", "nosuid: setuid is ignored");
    const denied = await writeDevNull(plain.mnt);
    assert.notEqual(denied.code, 0, "nodev: a device node cannot be opened");
    assert.match(denied.stderr, /Permission denied/);

    await using rootfs = await startSlayer({ extraArgs: ["-o", "rootfs"] });
    const ropts = await mountOptions(rootfs.mnt);
    assert.ok(!ropts.includes("nosuid") && !ropts.includes("nodev"), `rootfs mount: ${ropts}`);
    assert.equal(await setuidEuid(`${rootfs.mnt}/suidcat`), "0", "suid: the binary runs as root");
    const ok = await writeDevNull(rootfs.mnt);
    assert.equal(ok.code, 0, `dev: /dev/null on the mount opens: ${ok.stderr}`);
    assert.match(rootfs.log(), /suid and dev are on/);

    // A chroot into a rootfs on the mount: /dev/null must open (perl, apt and shells need it).
    const root = `${rootfs.mnt}/root`;
    await busyboxRootfs(root);
    const inside = await run("chroot", [root, "/bin/sh", "-c", "echo hi > /dev/null && id -u"]);
    assert.equal(inside.code, 0, inside.stderr);
    assert.equal(inside.stdout.trim(), "0");
    const plainRoot = `${plain.mnt}/root`;
    await busyboxRootfs(plainRoot);
    const refused = await run("chroot", [plainRoot, "/bin/sh", "-c", "echo hi > /dev/null"]);
    assert.notEqual(refused.code, 0, "without dev, the chroot cannot open /dev/null");
  },
});

Deno.test({
  name: "-o no_allow_other keeps other users out of a root mount",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using fs = await startSlayer({ extraArgs: ["-o", "no_allow_other"] });
    assert.ok(!(await mountOptions(fs.mnt)).includes("allow_other"));
    await Deno.writeTextFile(`${fs.mnt}/f`, "x");
    const r = await runAsNobody(`cat "$1"`, `${fs.mnt}/f`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Permission denied/);
  },
});

Deno.test({
  name: "runc runs a container whose bundle and root filesystem are on the mount",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using fs = await startSlayer({ extraArgs: ["-o", "rootfs"] });
    const bundle = `${fs.mnt}/bundle`;
    await busyboxRootfs(`${bundle}/rootfs`);
    await runcBundle(bundle, "rootfs", [
      "sh",
      "-c",
      "echo hello > /tmp/out && cat /tmp/out && id -u && echo x > /dev/null && ls /bin | wc -l",
    ]);
    const id = `slayerfs-test-${crypto.randomUUID().slice(0, 8)}`;
    try {
      const r = await run("runc", ["run", "--bundle", bundle, id]);
      assert.equal(r.code, 0, `runc run: ${r.stderr}${r.stdout}`);
      const [hello, uid, applets] = r.stdout.trim().split("\n");
      assert.equal(hello, "hello");
      assert.equal(uid, "0");
      assert.ok(Number(applets) >= 10, r.stdout);
      assert.equal(await Deno.readTextFile(`${bundle}/rootfs/tmp/out`), "hello\n");
    } finally {
      await run("runc", ["delete", "--force", id]);
    }
  },
});

Deno.test({
  name: "containerd: ctr run --rootfs runs a container from a root filesystem on the mount",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await ensureApt({ containerd: "containerd", runc: "runc" });
    await using fs = await startSlayer({ extraArgs: ["-o", "rootfs"] });
    const root = `${fs.mnt}/ctr-rootfs`;
    await busyboxRootfs(root);
    const state = await Deno.makeTempDir({ prefix: "slayerfs-containerd-" });
    const sock = `${state}/containerd.sock`;
    await Deno.writeTextFile(
      `${state}/config.toml`,
      `version = 2\nroot = "${state}/root"\nstate = "${state}/state"\n` +
        `[grpc]\n  address = "${sock}"\n[ttrpc]\n  address = "${sock}.ttrpc"\n`,
    );
    const daemon = new Deno.Command("sh", {
      args: ["-c", `exec setsid containerd -c '${state}/config.toml' >>'${state}/log' 2>&1`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const id = `slayerfs-ctr-${crypto.randomUUID().slice(0, 8)}`;
    try {
      const deadline = Date.now() + 30_000;
      while ((await run("ctr", ["-a", sock, "version"])).code !== 0) {
        assert.ok(
          Date.now() < deadline,
          `containerd did not start: ${await Deno.readTextFile(`${state}/log`)}`,
        );
        await new Promise((r) => setTimeout(r, 200));
      }
      const r = await run("ctr", [
        "-a",
        sock,
        "run",
        "--rm",
        "--env",
        "PATH=/bin",
        "--rootfs",
        root,
        id,
        "/bin/sh",
        "-c",
        "echo from-ctr > /tmp/ctr && cat /tmp/ctr && echo x > /dev/null",
      ]);
      assert.equal(r.code, 0, `ctr run: ${r.stderr}${r.stdout}`);
      assert.equal(r.stdout.trim(), "from-ctr");
      assert.equal(await Deno.readTextFile(`${root}/tmp/ctr`), "from-ctr\n");
    } finally {
      await run("ctr", ["-a", sock, "task", "kill", "-s", "KILL", id]);
      await run("ctr", ["-a", sock, "container", "rm", id]);
      try {
        daemon.kill("SIGTERM");
      } catch { /* gone */ }
      await daemon.status;
      await run("pkill", ["-KILL", "-f", state]);
      const mounts = (await Deno.readTextFile("/proc/mounts")).split("\n")
        .map((l) => l.split(" ")[1] ?? "").filter((m) => m.startsWith(state))
        .sort((a, b) => b.length - a.length);
      for (const m of mounts) await run("umount", ["-l", m]);
      await Deno.remove(state, { recursive: true }).catch(() => {});
    }
  },
});
