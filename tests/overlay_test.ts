/**
 * overlayfs on SlayerFS, checked against the same overlay on tmpfs: SlayerFS as `upperdir` +
 * `workdir` and as `lowerdir`, all on one mount and mixed with local disk, in the kernel's
 * `trusted.*` mode and in `userxattr` mode. One sequence of changes through the merged view
 * (create, copy-up by write and by chmod, delete a lower file and a lower directory (whiteouts),
 * an opaque directory, renames, an xattr) runs on each layout; the merged views and the upper
 * layers must match the tmpfs reference.
 *
 * @module
 */

import assert from "node:assert/strict";
import * as L from "./_libc.ts";
import { startSlayer } from "./_mount.ts";
import { mountTmpfs } from "./_tmpfs.ts";
import { run } from "./_run.ts";

const enc = new TextEncoder();
const S_IFMT = 0o170000;

/** Where each layer lives. */
interface Layout {
  lower: string;
  upper: string;
  work: string;
  merged: string;
}

/** Mounts an overlay of `l` (`userxattr` mode if asked) and returns a disposer. */
async function mountOverlay(l: Layout, userxattr: boolean): Promise<AsyncDisposable> {
  const opts = [`lowerdir=${l.lower}`, `upperdir=${l.upper}`, `workdir=${l.work}`];
  // With userxattr the kernel wants redirect_dir not "off" (its default here): nofollow.
  if (userxattr) opts.push("userxattr", "redirect_dir=nofollow");
  const r = await run("mount", ["-t", "overlay", "overlay", "-o", opts.join(","), l.merged]);
  const dmesg = r.code === 0
    ? ""
    : (await run("dmesg", [])).stdout.split("\n").slice(-5).join("\n");
  assert.equal(r.code, 0, `mount -t overlay ${opts.join(",")} failed: ${r.stderr}\n${dmesg}`);
  return {
    async [Symbol.asyncDispose]() {
      await run("umount", [l.merged]);
    },
  };
}

/** Fills a lower layer. */
async function fillLower(dir: string): Promise<void> {
  await Deno.writeFile(`${dir}/a`, enc.encode("lower a\n"));
  await Deno.writeFile(`${dir}/b`, enc.encode("lower b\n"));
  await Deno.writeFile(`${dir}/perm`, enc.encode("perm\n"), { mode: 0o644 });
  await Deno.chmod(`${dir}/perm`, 0o644);
  const big = new Uint8Array(3 << 20);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 12)) & 255;
  await Deno.writeFile(`${dir}/big`, big);
  await Deno.mkdir(`${dir}/d/deeper`, { recursive: true });
  await Deno.writeFile(`${dir}/d/x`, enc.encode("x\n"));
  await Deno.writeFile(`${dir}/d/deeper/y`, enc.encode("y\n"));
  await Deno.mkdir(`${dir}/e`);
  await Deno.writeFile(`${dir}/e/z`, enc.encode("z\n"));
  await Deno.mkdir(`${dir}/keep`);
  await Deno.writeFile(`${dir}/keep/k`, enc.encode("k\n"));
  await Deno.symlink("a", `${dir}/s`);
}

/** The sequence of changes, through the merged view. */
async function changes(m: string): Promise<void> {
  await Deno.writeFile(`${m}/new`, enc.encode("created\n"));
  await Deno.writeFile(`${m}/a`, enc.encode("appended\n"), { append: true }); // copy-up by write
  L.chmod(`${m}/perm`, 0o600); // copy-up by chmod (metadata only)
  const f = await Deno.open(`${m}/big`, { write: true });
  await f.seek(1 << 20, Deno.SeekMode.Start);
  await f.write(enc.encode("middle of a copied-up big file"));
  f.close();
  await Deno.remove(`${m}/b`); // whiteout of a lower file
  await Deno.remove(`${m}/e`, { recursive: true }); // whiteout of a lower directory
  await Deno.remove(`${m}/d`, { recursive: true }); // then recreate it: an opaque directory
  await Deno.mkdir(`${m}/d`);
  await Deno.writeFile(`${m}/d/fresh`, enc.encode("fresh\n"));
  await Deno.rename(`${m}/new`, `${m}/new2`); // rename within the upper layer
  await Deno.rename(`${m}/perm`, `${m}/perm2`); // rename of a lower file: copy-up + whiteout
  await Deno.writeFile(`${m}/keep/k2`, enc.encode("k2\n")); // a merged (impure) directory
  L.setxattr(`${m}/a`, "user.tag", enc.encode("v1"));
  await Deno.remove(`${m}/s`);
  await Deno.symlink("new2", `${m}/s`);
}

/** xattr names compared: overlay's own opaque marker and user attributes it does not own. */
function keptXattr(name: string): boolean {
  if (name.endsWith("overlay.opaque")) return true;
  return name.startsWith("user.") && !name.startsWith("user.overlay.");
}

/** A description of every entry under `root`: type, mode, size, content digest, xattrs. */
async function snapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    const abs = rel ? `${root}/${rel}` : root;
    const st = L.lstat(abs);
    const type = (st.mode & S_IFMT).toString(8);
    let what = `${rel || "."} type=${type} mode=${(st.mode & 0o7777).toString(8)}`;
    const kind = st.mode & S_IFMT;
    if (kind === 0o120000) what += ` -> ${await Deno.readLink(abs)}`;
    else if (kind === 0o020000) what += ` rdev=${st.rdev}`;
    else if (kind === 0o100000) {
      const data = await Deno.readFile(abs);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
      what += ` size=${st.size} sha=${[...digest.slice(0, 8)].map((b) => b.toString(16)).join("")}`;
    }
    if (kind !== 0o120000) {
      for (const name of L.listxattr(abs).filter(keptXattr).sort()) {
        what += ` ${name.replace(/^trusted\./, "").replace(/^user\.overlay/, "overlay")}=${
          new TextDecoder().decode(L.getxattr(abs, name))
        }`;
      }
    }
    out.push(what);
    if (kind === 0o040000) {
      const names: string[] = [];
      for await (const e of Deno.readDir(abs)) names.push(e.name);
      for (const n of names.sort()) await walk(rel ? `${rel}/${n}` : n);
    }
  }
  await walk("");
  return out;
}

/** Runs the sequence on a layout and returns the merged view and the upper layer. */
async function exercise(l: Layout, userxattr: boolean): Promise<[string[], string[]]> {
  for (const d of [l.lower, l.upper, l.work, l.merged]) await Deno.mkdir(d, { recursive: true });
  await fillLower(l.lower);
  let merged: string[];
  {
    await using _ = await mountOverlay(l, userxattr);
    await changes(l.merged);
    merged = await snapshot(l.merged);
  }
  // After unmounting the overlay and mounting it again, the merged view is the same.
  {
    await using _ = await mountOverlay(l, userxattr);
    assert.deepEqual(await snapshot(l.merged), merged, "merged view after a remount");
  }
  return [merged, await snapshot(l.upper)];
}

function layout(lowerRoot: string, upperRoot: string, tag: string): Layout {
  return {
    lower: `${lowerRoot}/${tag}-lower`,
    upper: `${upperRoot}/${tag}-upper`,
    work: `${upperRoot}/${tag}-work`,
    merged: `${lowerRoot}/${tag}-merged`,
  };
}

for (const userxattr of [false, true]) {
  const mode = userxattr ? "userxattr" : "trusted.* xattrs";
  Deno.test({
    name: `overlayfs (${mode}): SlayerFS as upper and lower, alone and mixed with local disk`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn(t) {
      await using ref = await mountTmpfs("256m");
      await using fs = await startSlayer();
      const disk = await Deno.makeTempDir({ prefix: "slayerfs-overlay-disk-" });
      try {
        const [wantMerged, wantUpper] = await exercise(layout(ref.mnt, ref.mnt, "ref"), userxattr);
        assert.ok(
          wantUpper.some((line) => line.startsWith("b type=20000 mode=0 rdev=0")),
          `the reference has a whiteout for b:\n${wantUpper.join("\n")}`,
        );
        assert.ok(
          wantUpper.some((line) => /^d type=40000 .*overlay\.opaque=y/.test(line)),
          `the reference has an opaque d:\n${wantUpper.join("\n")}`,
        );
        const layouts: Record<string, Layout> = {
          "all layers on SlayerFS": layout(fs.mnt, fs.mnt, "one"),
          "lower on local disk, upper on SlayerFS": layout(disk, fs.mnt, "mixed1"),
          "lower on SlayerFS, upper on local disk": layout(fs.mnt, disk, "mixed2"),
        };
        for (const [name, l] of Object.entries(layouts)) {
          await t.step(name, async () => {
            const [merged, upper] = await exercise(l, userxattr);
            assert.deepEqual(merged, wantMerged, "the merged view matches tmpfs's");
            assert.deepEqual(upper, wantUpper, "the upper layer matches tmpfs's");
          });
        }
      } finally {
        await Deno.remove(disk, { recursive: true }).catch(() => {});
      }
    },
  });
}
