import assert from "node:assert/strict";
import { makePrivateDir, PRIVATE_DIR_MODE, tightenMode } from "./_private_fs.ts";

const mode = (path: string) => Deno.statSync(path).mode! & 0o7777;

Deno.test("makePrivateDir() creates 0700 folders, parents included", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await makePrivateDir(`${dir}/a/b`, () => true);
    assert.equal(mode(`${dir}/a`), PRIVATE_DIR_MODE);
    assert.equal(mode(`${dir}/a/b`), PRIVATE_DIR_MODE);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("makePrivateDir() tightens its own folder, not a shared one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.chmod(dir, 0o755);
    for (const name of ["own", "shared", "sticky"]) {
      await Deno.mkdir(`${dir}/${name}`);
      await Deno.writeTextFile(`${dir}/${name}/${name === "shared" ? "theirs" : "00"}`, "");
    }
    await Deno.chmod(`${dir}/own`, 0o755);
    await Deno.chmod(`${dir}/shared`, 0o755);
    await Deno.chmod(`${dir}/sticky`, 0o1777);
    const ours = (name: string) => name === "00";
    await makePrivateDir(`${dir}/own`, ours);
    await makePrivateDir(`${dir}/shared`, ours);
    await makePrivateDir(`${dir}/sticky`, ours);
    assert.equal(mode(`${dir}/own`), 0o700);
    assert.equal(mode(`${dir}/shared`), 0o755);
    assert.equal(mode(`${dir}/sticky`), 0o1777);
    assert.equal(mode(dir), 0o755, "the parent is left alone");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tightenMode() changes only a mode open to others", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/f`, "", { mode: 0o644 });
    await Deno.chmod(`${dir}/f`, 0o644);
    assert.equal(await tightenMode(`${dir}/f`, 0o600), true);
    assert.equal(mode(`${dir}/f`), 0o600);
    assert.equal(await tightenMode(`${dir}/f`, 0o600), false);
    assert.equal(await tightenMode(`${dir}/missing`, 0o600), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
