/**
 * `/etc/fstab` and `mount -t slayerfs` through the real util-linux mount(8) and the shipped helper
 * (`ops/mount.slayerfs`, linked by `./dev install-helper`). mount(8) only looks for helpers in
 * `/sbin`, so the test runs in a private mount namespace (`unshare --mount`) where a read-only
 * overlay lays the helper's folder over `/usr/sbin` (`/sbin` links there): the machine's `/sbin`
 * and `/etc/fstab` are never touched, and the mounts are seen by that namespace only.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CLI, REPO_ROOT } from "./_mount.ts";
import { run } from "./_run.ts";

const isRoot = Deno.uid() === 0;

/** The lines `STEP name: text` the script prints, by name. */
function steps(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const [, k, v] of out.matchAll(/^STEP ([\w-]+): ?(.*)$/gm)) m.set(k!, (m.get(k!) ?? "") + v);
  return m;
}

Deno.test({
  name: "fstab: mount(8) mounts a SlayerFS volume from an fstab line and with mount -t slayerfs",
  ignore: !isRoot,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "slayerfs-fstab-" });
    const home = `${dir}/home`;
    const env = { SLAYERFS_HOME: home, SLAYERFS_CONFIG: "" };
    try {
      await Deno.mkdir(home);
      const helper = await run(`${REPO_ROOT}/dev`, ["install-helper", `${dir}/sbin`]);
      assert.equal(helper.code, 0, helper.stderr);
      assert.equal(
        await Deno.realPath(`${dir}/sbin/mount.slayerfs`),
        `${REPO_ROOT}/ops/mount.slayerfs`,
        "install-helper links the shipped helper",
      );
      const meta = `sqlite3://${dir}/meta.db`;
      const f = await run(Deno.execPath(), ["run", "-A", CLI, "format", meta, "fstabvol"], { env });
      assert.equal(f.code, 0, f.stderr);
      await Deno.writeTextFile(
        `${dir}/fstab`,
        `# a private fstab\n${meta} ${dir}/mnt slayerfs ` +
          "_netdev,nofail,x-systemd.requires=network.target,user,noatime,cache-size=40M," +
          `allow_other,writeback,log=${dir}/daemon.log 0 0\n`,
      );
      await Deno.writeTextFile(
        `${dir}/vol.yaml`,
        `mount:\n  meta-url: ${meta}\n  cache-size: 24M\n`,
      );
      for (const m of ["mnt", "mnt2", "mnt3", "mnt4"]) await Deno.mkdir(`${dir}/${m}`);
      const slayerfs = `${Deno.execPath()} run -A ${CLI}`;
      const script = `
        sbin=$(readlink -f /sbin)
        mount -t overlay overlay -o lowerdir=${dir}/sbin:$sbin $sbin || { echo "STEP overlay: failed"; exit 1; }
        echo "STEP helper: $(ls -l /sbin/mount.slayerfs)"
        mount -v -T ${dir}/fstab ${dir}/mnt; echo "STEP fstab-rc: $?"
        echo "STEP mounts: $(grep " ${dir}/mnt " /proc/mounts)"
        echo hello > ${dir}/mnt/a; cat ${dir}/mnt/a | sed 's/^/STEP read: /'
        ${slayerfs} status --json ${dir}/mnt > ${dir}/status.json; echo "STEP status-rc: $?"
        pid=$(sed -n 's/^  "pid": \\([0-9]*\\),/\\1/p' ${dir}/status.json)
        umount ${dir}/mnt; echo "STEP umount-rc: $?"
        for i in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && echo "STEP daemon: still running" || echo "STEP daemon: exited"
        mount -t slayerfs -o ro,cache-size=50M ${meta} ${dir}/mnt2; echo "STEP t-rc: $?"
        cat ${dir}/mnt2/a | sed 's/^/STEP reread: /'
        echo x 2>/dev/null > ${dir}/mnt2/b; echo "STEP ro-write-rc: $?"
        ${slayerfs} umount ${dir}/mnt2; echo "STEP umount2-rc: $?"
        mount -t slayerfs -o cach-size=1G ${meta} ${dir}/mnt3 2> ${dir}/bad.err; echo "STEP bad-rc: $?"
        sed 's/^/STEP bad-err: /' ${dir}/bad.err
        mount -t slayerfs -o config=${dir}/vol.yaml none ${dir}/mnt4; echo "STEP none-rc: $?"
        ${slayerfs} status --json ${dir}/mnt4 > ${dir}/status4.json; echo "STEP status4-rc: $?"
        ${slayerfs} umount ${dir}/mnt4; echo "STEP umount4-rc: $?"
        echo "STEP left: $(grep -c " ${dir}/mnt" /proc/mounts)"
      `;
      const r = await run("timeout", [
        "-k",
        "5",
        "150",
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
      ], { env });
      const s = steps(r.stdout);
      const why = `\n${r.stdout}\n${r.stderr}`;
      assert.equal(r.code, 0, why);
      assert.match(s.get("helper") ?? "", /mount\.slayerfs -> /, why);
      assert.equal(s.get("fstab-rc"), "0", why);
      // mount(8) turned `user` into noexec,nosuid,nodev: the helper honours noexec.
      assert.match(s.get("mounts") ?? "", /^slayerfs:fstabvol \S+ fuse\.slayerfs \S*noexec/, why);
      assert.match(s.get("mounts") ?? "", /allow_other/, why);
      assert.equal(s.get("read"), "hello", why);
      assert.equal(s.get("status-rc"), "0", why);
      const state = JSON.parse(await Deno.readTextFile(`${dir}/status.json`));
      assert.deepEqual(state.settings["cache-size"].value, 40 * 2 ** 20);
      assert.equal(state.settings["atime-mode"].value, "noatime");
      assert.equal(state.settings.writeback.value, true);
      assert.deepEqual(state.settings.options.value, ["noexec,allow_other"]);
      assert.equal(state.settings.log.value, `${dir}/daemon.log`);
      assert.match(await Deno.readTextFile(`${dir}/daemon.log`), /Serving "fstabvol"/);
      assert.equal(s.get("umount-rc"), "0", why);
      assert.equal(s.get("daemon"), "exited", why);
      assert.equal(s.get("t-rc"), "0", why);
      assert.equal(s.get("reread"), "hello", "the data written through the fstab mount" + why);
      assert.notEqual(s.get("ro-write-rc"), "0", "ro: writes fail" + why);
      assert.equal(s.get("umount2-rc"), "0", why);
      assert.equal(s.get("bad-rc"), "1", "mount(8)'s exit code for a usage error" + why);
      assert.match(
        s.get("bad-err") ?? "",
        /unknown option "cach-size" \(did you mean cache-size\?\)/,
      );
      assert.equal(s.get("none-rc"), "0", why);
      const state4 = JSON.parse(await Deno.readTextFile(`${dir}/status4.json`));
      assert.equal(state4.settings["cache-size"].source, "file");
      assert.equal(state4.settings["meta-url"].source, "file");
      assert.equal(s.get("umount4-rc"), "0", why);
      assert.equal(s.get("left"), "0", why);
    } finally {
      // Daemons still running (a failed step): each serves in the namespace only; ending them
      // unmounts there, and the namespace goes with its last process.
      for (const e of await Array.fromAsync(Deno.readDir(`${home}/run`)).catch(() => [])) {
        const pid = await Deno.readTextFile(`${home}/run/${e.name}`)
          .then((t) => JSON.parse(t).pid as number, () => undefined);
        if (pid === undefined) continue;
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
