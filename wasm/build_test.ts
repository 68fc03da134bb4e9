import { deepEqual } from "node:assert/strict";
import { buildEngine } from "./build.ts";

Deno.test("engine.wasm is up to date: rebuilding the sources gives the committed bytes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-wasm-build-" });
  try {
    const built = await Deno.readFile(await buildEngine("release", `${dir}/engine.wasm`));
    const committed = await Deno.readFile(new URL("./_build/engine.wasm", import.meta.url));
    deepEqual(built, committed, "wasm/_build/engine.wasm is stale: run `deno task build:wasm`");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
