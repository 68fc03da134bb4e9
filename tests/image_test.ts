/**
 * `slayerfs image`: `docker save` and OCI layout archives written by the test (three layers with
 * whiteouts, an opaque directory, a hard link, symlinks, device nodes, a FIFO, a setuid file, an
 * xattr, a long name) imported into a volume, checked through a real mount, run with runc; bad
 * archives refused with nothing left behind; `image rm` frees the blocks; `--dedup` stores a
 * second version of an image's files once.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runCli, startSlayer } from "./_mount.ts";
import { run } from "./_run.ts";
import { startS3Server } from "./_s3server.ts";
import { busyboxRootfs, must, runcBundle } from "./_containers.ts";
import { dockerSave, membersOf, ociLayout, tar, type TarMember } from "./_image_archive.ts";

const LONG = "usr/share/" + "a-rather-long-directory-name/".repeat(4) + "file.txt";

/** The three layers of the test image on top of a busybox rootfs in `rootfs`. */
async function testLayers(rootfs: string, big: Uint8Array, mtime = 1700000000) {
  const base = (await membersOf(rootfs)).map((m) => ({ ...m, mtime }));
  const l1: TarMember[] = [
    ...base,
    { name: "etc/conf.d/", type: "5", mtime },
    { name: "etc/conf.d/a", data: "a\n", mtime },
    { name: "etc/conf.d/b", data: "b\n", mtime },
    { name: "old/", type: "5", mtime },
    { name: "old/file", data: "old\n", mtime },
    { name: "etc/motd", data: "v1\n", mtime },
    { name: "big.bin", data: big, mtime },
  ];
  const l2: TarMember[] = [
    { name: "etc/conf.d/", type: "5", mtime },
    { name: "etc/conf.d/.wh..wh..opq", mtime },
    { name: "etc/conf.d/c", data: "c\n", mtime },
    { name: ".wh.old", mtime },
    { name: "bin/.wh.rm", mtime },
    { name: "bin/suid", data: "#!/bin/sh\nid -u\n", mode: 0o4755, mtime },
    { name: "bin/hl", type: "1", linkname: "bin/busybox", mtime },
    { name: "etc/xattr", data: "x\n", xattrs: { "user.slayer": "yes" }, mtime },
    { name: "dev/sda1", type: "4", major: 8, minor: 1, mode: 0o660, gid: 6, mtime },
    { name: "run/", type: "5", mtime },
    { name: "run/fifo", type: "6", mode: 0o600, mtime },
    { name: "motd-link", type: "2", linkname: "/etc/motd", mtime },
    { name: "home/", type: "5", mtime },
    { name: "home/user/", type: "5", mode: 0o700, uid: 1000, gid: 1000, mtime },
    { name: "home/user/file", data: "mine\n", uid: 1000, gid: 1000, mode: 0o600, mtime: 1234567 },
    { name: LONG, data: "long\n", mtime },
  ];
  const l3: TarMember[] = [
    { name: "etc/", type: "5", mtime },
    { name: "etc/motd", data: "v2\n", mode: 0o640, mtime },
  ];
  return [tar(l1), tar(l2), tar(l3)];
}

/** `path`'s tree as lines: path, type and mode, owner, size, mtime, rdev, link target, data. */
async function treeOf(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string) => {
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    for (const n of names.sort()) {
      const p = `${dir}/${n}`;
      const st = await Deno.lstat(p);
      let extra = "";
      if (st.isSymlink) extra = `-> ${await Deno.readLink(p)}`;
      else if (st.isFile) {
        const data = await Deno.readFile(p);
        extra = `${data.byteLength} ${(await crypto.subtle.digest("SHA-256", data)).byteLength}`;
        extra += ` ${data.slice(0, 8).join(",")} nlink=${st.nlink}`;
      }
      const mtime = st.isDirectory ? "" : st.mtime?.getTime();
      out.push(
        `${rel}${n} ${st.mode!.toString(8)} ${st.uid}:${st.gid} ${mtime} ${st.rdev} ${extra}`,
      );
      if (st.isDirectory) await walk(p, `${rel}${n}/`);
    }
  };
  await walk(root, "");
  return out;
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

async function duBytes(dir: string): Promise<number> {
  return Number((await must("du", ["-sb", dir])).split(/\s/)[0]);
}

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, i + 65536));
  return b;
}

/** A temp dir with a formatted volume (`meta`, blocks in `blocks`) and a busybox rootfs. */
async function setup(formatArgs: string[] = []) {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-image-" });
  const meta = `sqlite3://${dir}/meta.db`;
  const blocks = `${dir}/blocks`;
  const f = await runCli(["format", "--storage", `file://${blocks}`, ...formatArgs, meta, "img"]);
  assert.equal(f.code, 0, f.stderr);
  await busyboxRootfs(`${dir}/rootfs`);
  return {
    dir,
    meta,
    s3meta: `sqlite3://${dir}/s3meta.db`,
    blocks,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Where the data of the last member with data of a ustar archive starts, and its size. */
function lastMemberData(tarBytes: Uint8Array): { start: number; size: number } {
  let last = { start: -1, size: 0 };
  for (let off = 0; off + 512 <= tarBytes.byteLength;) {
    const header = tarBytes.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const size =
      parseInt(new TextDecoder().decode(header.subarray(124, 136)).replace(/\0.*$/, ""), 8) || 0;
    if (size > 0) last = { start: off + 512, size };
    off += 512 + Math.ceil(size / 512) * 512;
  }
  assert.ok(last.start > 0, "a member with data");
  return last;
}

Deno.test({
  name: "image import: docker save and OCI archives give one tree; runc runs it",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using t = await setup();
    const layers = await testLayers(`${t.dir}/rootfs`, randomBytes(5 << 20));
    await Deno.writeFile(`${t.dir}/docker.tar`, dockerSave(layers));
    await Deno.writeFile(`${t.dir}/oci.tar`, await ociLayout(layers));
    let r = await runCli(["image", "import", t.meta, `${t.dir}/docker.tar`, "dock"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /imported dock: 3 layers/);
    r = await runCli(["image", "import", "--bundle", t.meta, `${t.dir}/oci.tar`, "oci:1"]);
    assert.equal(r.code, 0, r.stderr);
    r = await runCli(["image", "import", t.meta, `${t.dir}/oci.tar`, "oci:1"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /An image named "oci:1" exists/);
    r = await runCli(["image", "ls", t.meta]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n").slice(1).map((l) => l.split(/\s+/)[0]), [
      "dock",
      "oci:1",
    ]);

    await using fs = await startSlayer({
      meta: t.meta,
      format: false,
      extraArgs: ["-o", "rootfs"],
    });
    const dock = `${fs.mnt}/.images/dock/rootfs`;
    const oci = `${fs.mnt}/.images/oci:1/rootfs`;
    const tree = await treeOf(dock);
    assert.deepEqual(await treeOf(oci), tree, "both formats give the same tree");
    const line = (p: string) => tree.find((l) => l.startsWith(p + " ")) ?? "";
    assert.deepEqual(await names(`${dock}/etc/conf.d`), [
      "c",
    ], "the opaque directory hides the lower layer's files");
    await assert.rejects(Deno.lstat(`${dock}/old`), Deno.errors.NotFound, "whiteout of a dir");
    await assert.rejects(Deno.lstat(`${dock}/bin/rm`), Deno.errors.NotFound, "whiteout");
    assert.equal(await Deno.readTextFile(`${dock}/etc/motd`), "v2\n");
    assert.match(line("etc/motd"), /^etc\/motd 100640 0:0 /);
    assert.match(line("bin/suid"), /^bin\/suid 104755 0:0 /, "setuid kept");
    const hl = await Deno.lstat(`${dock}/bin/hl`);
    assert.equal(hl.ino, (await Deno.lstat(`${dock}/bin/busybox`)).ino, "hard link");
    assert.equal(hl.nlink, 2);
    assert.equal(await Deno.readLink(`${dock}/motd-link`), "/etc/motd");
    const sda = await Deno.lstat(`${dock}/dev/sda1`);
    assert.ok(sda.isBlockDevice && sda.rdev === 0x801 && sda.gid === 6, line("dev/sda1"));
    assert.ok((await Deno.lstat(`${dock}/dev/null`)).isCharDevice);
    assert.ok((await Deno.lstat(`${dock}/run/fifo`)).isFifo);
    const home = await Deno.lstat(`${dock}/home/user/file`);
    assert.equal(home.uid, 1000);
    assert.equal(home.mode! & 0o7777, 0o600);
    assert.equal(home.mtime?.getTime(), 1234567000);
    assert.equal(await Deno.readTextFile(`${dock}/${LONG}`), "long\n", "a PAX long name");
    const xattr = await must("python3", [
      "-c",
      `import os;print(os.getxattr("${dock}/etc/xattr","user.slayer").decode())`,
    ]);
    assert.equal(xattr.trim(), "yes");
    const info = JSON.parse(await Deno.readTextFile(`${fs.mnt}/.images/dock/image.json`));
    assert.deepEqual(info.config.Cmd, ["/bin/sh", "-c", "echo hello from $HELLO"]);
    assert.equal(info.layers.length, 3);

    // runc with a bundle of our own, and with the one import --bundle wrote.
    const bundle = `${t.dir}/bundle`;
    await runcBundle(bundle, dock, [
      "sh",
      "-c",
      "cat /etc/motd && ls /etc/conf.d && /bin/suid && busybox true && echo x > /dev/null",
    ]);
    const ids = [
      `slayerfs-img-${crypto.randomUUID().slice(0, 8)}`,
      `slayerfs-img-${crypto.randomUUID().slice(0, 8)}`,
    ];
    try {
      r = await run("runc", ["run", "--bundle", bundle, ids[0]!]);
      assert.equal(r.code, 0, `runc run: ${r.stderr}${r.stdout}`);
      assert.equal(r.stdout, "v2\nc\n0\n");
      r = await run("runc", ["run", "--bundle", `${fs.mnt}/.images/oci:1`, ids[1]!]);
      assert.equal(r.code, 0, `runc run --bundle .images/oci:1: ${r.stderr}${r.stdout}`);
      assert.equal(r.stdout, "hello from world\n");
    } finally {
      for (const id of ids) await run("runc", ["delete", "--force", id]);
    }
  },
});

Deno.test({
  name: "image import refuses bad archives and leaves nothing; image rm frees the blocks",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using t = await setup();
    const good = await testLayers(`${t.dir}/rootfs`, randomBytes(1 << 20));
    const saved = dockerSave(good);
    const bad: Array<[string, Uint8Array, RegExp]> = [
      ["truncated", saved.slice(0, saved.byteLength >> 1), /truncated/],
      ["not-an-image", tar([{ name: "x", data: "x" }]), /Not an image archive/],
    ];
    // A layer whose bytes do not match rootfs.diff_ids: one byte of its data changed.
    const patched = dockerSave(good);
    let at = patched.byteLength - 1;
    while (
      at > 0 && !(patched[at] === 0x76 && patched[at + 1] === 0x32 && patched[at + 2] === 10)
    ) {
      at--;
    }
    assert.ok(at > 0, 'layer 3 holds "v2\n"');
    patched[at + 1] = 0x33; // "v3\n": the tar is still valid, its digest is not
    bad.push(["corrupt-docker", patched, /does not match its digest/]);
    const oci = await ociLayout(good);
    const ociBad = oci.slice();
    // Inside the last blob's data (the last member), wherever the layout puts it (the layers hold
    // the machine's busybox files, so their sizes differ between machines). A flipped byte in a
    // gzip stream is caught by the tar reader (a corrupt header) or by gzip's checksum, depending
    // on where it falls: either is a one-line refusal.
    const last = lastMemberData(ociBad);
    ociBad[last.start + (last.size >> 1)]! ^= 0xff;
    bad.push(["corrupt-oci", ociBad, /does not match|corrupt/i]);
    bad.push([
      "dotdot",
      dockerSave([tar([{ name: "../../escape", data: "x" }])]),
      /"\.\." component/,
    ]);
    bad.push([
      "symlink-escape",
      dockerSave([
        tar([{ name: "evil", type: "2", linkname: "/" }]),
        tar([{ name: "evil/etc/passwd", data: "pwned\n" }]),
      ]),
      /goes through the symlink "evil"/,
    ]);
    bad.push([
      "hardlink-escape",
      dockerSave([tar([{ name: "h", type: "1", linkname: "../../etc/passwd" }])]),
      /"\.\." component/,
    ]);
    for (const [name, bytes, message] of bad) {
      await Deno.writeFile(`${t.dir}/${name}.tar`, bytes);
      const r = await runCli(["image", "import", "-q", t.meta, `${t.dir}/${name}.tar`, name]);
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message, `${name}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, `${name}: one line: ${r.stderr}`);
      console.log(`${name}: ${r.stderr.trim()}`);
    }
    let r = await runCli(["image", "ls", t.meta]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "", "no image listed");
    await Deno.writeFile(`${t.dir}/good.tar`, saved);
    r = await runCli(["image", "import", t.meta, `${t.dir}/good.tar`, "good"]);
    assert.equal(r.code, 0, r.stderr);
    const withImage = await duBytes(t.blocks);
    assert.ok(withImage > 1 << 20, `blocks stored: ${withImage}`);
    {
      await using fs = await startSlayer({ meta: t.meta, format: false });
      assert.deepEqual(
        await names(`${fs.mnt}/.images`),
        ["good"],
        "no temporary tree is left",
      );
      // The volume may be mounted meanwhile: the import is one more client of the metadata, and
      // the mount sees the new image whole.
      const live = await runCli(["image", "import", "-q", t.meta, `${t.dir}/good.tar`, "live"]);
      assert.equal(live.code, 0, live.stderr);
      assert.equal((await runCli(["image", "ls", t.meta])).code, 0);
      const deadline = Date.now() + 5000;
      while (!(await names(`${fs.mnt}/.images`)).includes("live") && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
      }
      assert.deepEqual(await names(`${fs.mnt}/.images`), ["good", "live"]);
      assert.ok((await Deno.stat(`${fs.mnt}/.images/live/rootfs/bin/busybox`)).isFile);
    }
    r = await runCli(["image", "rm", t.meta, "live"]);
    assert.equal(r.code, 0, r.stderr);
    r = await runCli(["image", "rm", t.meta, "good"]);
    assert.equal(r.code, 0, r.stderr);
    r = await runCli(["image", "rm", t.meta, "good"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No image named "good"/);
    r = await runCli(["gc", "--delete", "--min-age", "0", t.meta]);
    assert.equal(r.code, 0, r.stderr);
    const after = await duBytes(t.blocks);
    assert.ok(after < withImage - (1 << 20), `blocks freed: ${withImage} -> ${after}`);
    assert.equal((await runCli(["image", "ls", t.meta])).stdout, "");
  },
});

Deno.test({
  name: "image import into a --dedup volume stores a second version's unchanged files once",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using t = await setup(["--dedup"]);
    const big = randomBytes(6 << 20);
    const v1 = await testLayers(`${t.dir}/rootfs`, big, 1700000000);
    // Version 2: the same files, rebuilt an hour later (other layer digests), plus a new file.
    const v2 = await testLayers(`${t.dir}/rootfs`, big, 1700003600);
    v2.push(tar([{ name: "etc/version", data: "2\n" }]));
    await Deno.writeFile(`${t.dir}/v1.tar`, dockerSave(v1));
    await Deno.writeFile(`${t.dir}/v2.tar`, await ociLayout(v2));
    const before = await duBytes(t.blocks).catch(() => 0);
    let r = await runCli(["image", "import", t.meta, `${t.dir}/v1.tar`, "app:1"]);
    assert.equal(r.code, 0, r.stderr);
    const one = await duBytes(t.blocks);
    r = await runCli(["image", "import", t.meta, `${t.dir}/v2.tar`, "app:2"]);
    assert.equal(r.code, 0, r.stderr);
    const two = await duBytes(t.blocks);
    const images = JSON.parse((await runCli(["image", "ls", "--json", t.meta])).stdout);
    const size2 = images.find((i: { name: string }) => i.name === "app:2").fileBytes;
    console.log(
      `dedup: store ${before} B empty, ${one} B with app:1, ${two} B with app:2 ` +
        `(app:2 holds ${size2} B of files)`,
    );
    assert.ok(one - before > 6 << 20, "the first version is stored");
    assert.ok(two - one < size2 / 20, `the second version adds ${two - one} B for ${size2} B`);
  },
});

Deno.test({
  name: "a container start from an image on S3 fetches only what it reads; the next replays it",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using s3 = await startS3Server();
    await s3.createBucket("images");
    s3.exportCredentials();
    await using t = await setup();
    const f = await runCli(["format", "--storage", s3.storeUrl("images", "v"), t.s3meta, "s3img"]);
    assert.equal(f.code, 0, f.stderr);
    const layers = await testLayers(`${t.dir}/rootfs`, randomBytes(8 << 20));
    await Deno.writeFile(`${t.dir}/img.tar`, dockerSave(layers));
    const r = await runCli(["image", "import", t.s3meta, `${t.dir}/img.tar`, "app"]);
    assert.equal(r.code, 0, r.stderr);
    const size =
      JSON.parse((await runCli(["image", "ls", "--json", t.s3meta])).stdout)[0].fileBytes;
    await using fs = await startSlayer({
      meta: t.s3meta,
      format: false,
      extraArgs: ["--no-cache-dir", "-o", "rootfs"],
    });
    interface Status {
      storeGetBytes: number;
      predictor: { replays: number; prefetchedBlocks: number };
    }
    const status = async (ready: (s: Status) => boolean): Promise<Status> => {
      for (let i = 0;; i++) {
        const s = JSON.parse((await runCli(["status", "--json", fs.mnt])).stdout);
        if (ready(s) || i === 20) return s;
        await new Promise((r) => setTimeout(r, 500));
      }
    };
    const start = async () => {
      const id = `slayerfs-lazy-${crypto.randomUUID().slice(0, 8)}`;
      const bundle = `${t.dir}/${id}`;
      await runcBundle(bundle, `${fs.mnt}/.images/app/rootfs`, ["sh", "-c", "cat /etc/motd"]);
      try {
        const out = await run("runc", ["run", "--bundle", bundle, id]);
        assert.equal(out.code, 0, out.stderr);
        assert.equal(out.stdout, "v2\n");
      } finally {
        await run("runc", ["delete", "--force", id]);
      }
    };
    await start();
    const first = await status((s) => s.storeGetBytes > 0);
    assert.ok(first.storeGetBytes > 0, JSON.stringify(first));
    assert.ok(first.storeGetBytes < size / 2, `fetched ${first.storeGetBytes} B of ${size} B`);
    await new Promise((r) => setTimeout(r, 2500)); // the predictor's recording ends
    await fs.restart(); // a cold mount: empty memory cache, no disk cache
    await start();
    const second = await status((s) => (s.predictor?.replays ?? 0) > 0);
    assert.ok(second.predictor.replays >= 1, JSON.stringify(second.predictor));
    assert.ok(second.predictor.prefetchedBlocks >= 1, JSON.stringify(second.predictor));
    assert.ok(second.storeGetBytes < size / 2, `fetched ${second.storeGetBytes} B of ${size} B`);
  },
});
