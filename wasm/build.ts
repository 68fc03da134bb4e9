/**
 * Builds `wasm/_build/engine.wasm` from the AssemblyScript sources in `wasm/assembly/`.
 *
 * asc resolves imports without extensions, while Deno (which also sees these files) needs them,
 * so the sources have no imports: this script concatenates them in a fixed order into one
 * temporary module and compiles that with `asc --config wasm/asconfig.json`.
 *
 * Run: `deno task build:wasm` (release) or `deno run -A wasm/build.ts debug`.
 *
 * @module
 */

/** The AssemblyScript compiler, pinned. */
export const ASC = "npm:assemblyscript@0.28.20/asc";

/** The sources, in concatenation order. */
export const SOURCES: readonly string[] = [
  "blake3_const.ts",
  "_blake3_gen.ts",
  "blake3.ts",
  "xxh3.ts",
  "lz4.ts",
  "segments.ts",
  "cache.ts",
  "engine.ts",
];

const HERE = new URL("./", import.meta.url);

/** The concatenated AssemblyScript source of the engine. */
export async function engineSource(): Promise<string> {
  const parts = await Promise.all(
    SOURCES.map((name) => Deno.readTextFile(new URL(`assembly/${name}`, HERE))),
  );
  return parts.map((text, i) => `// ---- ${SOURCES[i]} ----\n${text}`).join("\n");
}

/**
 * Compiles the engine for `target` ("release" or "debug") into `outFile` (by default the path the
 * target names in `asconfig.json`). Returns the output path.
 */
export async function buildEngine(target = "release", outFile?: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "slayerfs-asc-" });
  try {
    const entry = `${dir}/engine.ts`;
    await Deno.writeTextFile(entry, await engineSource());
    const config = new URL("asconfig.json", HERE).pathname;
    const args = ["run", "-A", "--no-lock", ASC, entry, "--config", config, "--target", target];
    if (outFile !== undefined) args.push("--outFile", outFile, "--textFile", "");
    const { code, stderr, stdout } = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: new URL(".", HERE).pathname,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      const log = new TextDecoder().decode(stderr) + new TextDecoder().decode(stdout);
      throw new Error(`asc failed with exit code ${code}:\n${log}`);
    }
    return outFile ??
      new URL(target === "debug" ? "_build/engine.debug.wasm" : "_build/engine.wasm", HERE)
        .pathname;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const target = Deno.args[0] ?? "release";
  console.log(`built ${await buildEngine(target)}`);
}
