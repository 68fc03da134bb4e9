/**
 * The README as a path: its embedding example runs as pasted, from an empty folder anywhere,
 * with the command the README gives, and leaves nothing in that folder.
 *
 * @module
 */

import assert from "node:assert/strict";
import { REPO_ROOT } from "./_mount.ts";
import { run } from "./_run.ts";

/** The first fenced block of `lang` after the heading `heading` of the README. */
function block(readme: string, heading: string, lang: string): string {
  const section = readme.slice(readme.indexOf(heading));
  const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)\\n```").exec(section);
  assert.ok(m, `a ${lang} block under ${heading}`);
  return m[1]!;
}

Deno.test("the README's embedding example runs as pasted from any folder", async () => {
  const readme = await Deno.readTextFile(`${REPO_ROOT}/README.md`);
  const heading = "## Embedding (`mod.ts`)";
  const code = block(readme, heading, "ts").replaceAll("/path/to/slayerfs", REPO_ROOT);
  const command = block(readme, heading, "sh").replaceAll("/path/to/slayerfs", REPO_ROOT);
  const work = await Deno.makeTempDir({ prefix: "slayerfs-readme-" });
  try {
    await Deno.mkdir(`${work}/here`);
    await Deno.mkdir(`${work}/tmp`);
    await Deno.writeTextFile(`${work}/here/demo.ts`, code);
    const r = await run("sh", ["-c", command], {
      cwd: `${work}/here`,
      env: { TMPDIR: `${work}/tmp` },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /slayerfs-demo-\w+: \/a\/b\/x\.bin has 1048582 bytes/);
    assert.deepEqual([...Deno.readDirSync(`${work}/here`)].map((e) => e.name), ["demo.ts"]);
    const [vol] = [...Deno.readDirSync(`${work}/tmp`)];
    assert.ok(vol?.name.startsWith("slayerfs-demo-"), "the example made its own folder");
    const inside = [...Deno.readDirSync(`${work}/tmp/${vol!.name}`)].map((e) => e.name);
    assert.ok(inside.includes("meta.db") && inside.includes("data"), inside.join());
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
