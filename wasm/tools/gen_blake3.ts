/**
 * Generates `wasm/assembly/_blake3_gen.ts`: the BLAKE3 compression function unrolled over its
 * 7 rounds, once for one block (scalar u32 locals) and once for four chunks side by side (one
 * chunk per i32x4 lane). AssemblyScript cannot pass locals by reference, so the rounds are written
 * out here instead of through a `g()` helper.
 *
 * Run: `deno run -A wasm/tools/gen_blake3.ts`
 *
 * @module
 */

const PERM = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];

/** The message word order for each of the 7 rounds. */
function schedule(): number[][] {
  const rounds: number[][] = [];
  let s = Array.from({ length: 16 }, (_, i) => i);
  for (let r = 0; r < 7; r++) {
    rounds.push(s);
    s = PERM.map((p) => s[p]!);
  }
  return rounds;
}

const G_LANES = [
  [0, 4, 8, 12],
  [1, 5, 9, 13],
  [2, 6, 10, 14],
  [3, 7, 11, 15],
  [0, 5, 10, 15],
  [1, 6, 11, 12],
  [2, 7, 8, 13],
  [3, 4, 9, 14],
];

type Ops = {
  add3: (a: string, b: string, m: string) => string;
  add: (a: string, b: string) => string;
  xorRot: (a: string, b: string, n: number) => string;
};

const scalarOps: Ops = {
  add3: (a, b, m) => `${a} + ${b} + ${m}`,
  add: (a, b) => `${a} + ${b}`,
  xorRot: (a, b, n) => `rotr<u32>(${a} ^ ${b}, ${n})`,
};

const simdOps: Ops = {
  add3: (a, b, m) => `i32x4.add(i32x4.add(${a}, ${b}), ${m})`,
  add: (a, b) => `i32x4.add(${a}, ${b})`,
  xorRot: (a, b, n) => `rotr${n}(v128.xor(${a}, ${b}))`,
};

function rounds(ops: Ops, indent: string): string {
  const lines: string[] = [];
  for (const s of schedule()) {
    G_LANES.forEach(([a, b, c, d], i) => {
      const [va, vb, vc, vd] = [`v${a}`, `v${b}`, `v${c}`, `v${d}`];
      const mx = `m${s[2 * i]}`;
      const my = `m${s[2 * i + 1]}`;
      lines.push(`${va} = ${ops.add3(va, vb, mx)};`);
      lines.push(`${vd} = ${ops.xorRot(vd, va, 16)};`);
      lines.push(`${vc} = ${ops.add(vc, vd)};`);
      lines.push(`${vb} = ${ops.xorRot(vb, vc, 12)};`);
      lines.push(`${va} = ${ops.add3(va, vb, my)};`);
      lines.push(`${vd} = ${ops.xorRot(vd, va, 8)};`);
      lines.push(`${vc} = ${ops.add(vc, vd)};`);
      lines.push(`${vb} = ${ops.xorRot(vb, vc, 7)};`);
    });
  }
  return lines.map((l) => indent + l).join("\n");
}

/** 4x4 transpose of u32 lanes: rows r0..r3 into columns o0..o3. */
function transpose(r: string[], o: string[], indent: string, decl: string): string {
  const [a, b, c, d] = r;
  const t = o.map((x) => `${x}t`);
  return [
    `const ${t[0]} = i32x4.shuffle(${a}, ${b}, 0, 4, 1, 5);`,
    `const ${t[1]} = i32x4.shuffle(${a}, ${b}, 2, 6, 3, 7);`,
    `const ${t[2]} = i32x4.shuffle(${c}, ${d}, 0, 4, 1, 5);`,
    `const ${t[3]} = i32x4.shuffle(${c}, ${d}, 2, 6, 3, 7);`,
    `${decl}${o[0]} = i32x4.shuffle(${t[0]}, ${t[2]}, 0, 1, 4, 5);`,
    `${decl}${o[1]} = i32x4.shuffle(${t[0]}, ${t[2]}, 2, 3, 6, 7);`,
    `${decl}${o[2]} = i32x4.shuffle(${t[1]}, ${t[3]}, 0, 1, 4, 5);`,
    `${decl}${o[3]} = i32x4.shuffle(${t[1]}, ${t[3]}, 2, 3, 6, 7);`,
  ].map((l) => indent + l).join("\n");
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function scalar(): string {
  const i2 = "  ";
  return `/**
 * Compresses one 64-byte block at \`block\` with chaining value \`cv\` (8 words) and writes the
 * first 8 output words (the new chaining value, or the root hash) to \`out\` (may equal \`cv\`).
 */
function compressBlock(
  cv: usize,
  block: usize,
  counter: u64,
  blockLen: u32,
  flags: u32,
  out: usize,
): void {
${range(8).map((i) => `${i2}let v${i} = load<u32>(cv, ${4 * i});`).join("\n")}
${range(4).map((i) => `${i2}let v${8 + i}: u32 = IV${i};`).join("\n")}
${i2}let v12 = <u32>counter;
${i2}let v13 = <u32>(counter >> 32);
${i2}let v14 = blockLen;
${i2}let v15 = flags;
${range(16).map((i) => `${i2}const m${i} = load<u32>(block, ${4 * i});`).join("\n")}
${rounds(scalarOps, i2)}
${range(8).map((i) => `${i2}store<u32>(out, v${i} ^ v${i + 8}, ${4 * i});`).join("\n")}
}
`;
}

function simd(): string {
  const i2 = "  ";
  const i4 = "    ";
  const loads: string[] = [];
  for (let lane = 0; lane < 4; lane++) {
    for (let q = 0; q < 4; q++) {
      loads.push(`${i4}const r${lane}_${q} = v128.load(p, ${lane * 1024 + q * 16});`);
    }
  }
  const trans = range(4).map((q) =>
    transpose(
      range(4).map((lane) => `r${lane}_${q}`),
      range(4).map((k) => `m${4 * q + k}`),
      i4,
      "const ",
    )
  ).join("\n");
  return `/**
 * Hashes four consecutive full 1024-byte chunks at \`input\` (chunk counters \`counter\` ..
 * \`counter + 3\`), one chunk per i32x4 lane, and writes their four chaining values to \`out\`.
 */
function hash4Chunks(input: usize, counter: u64, out: usize): void {
${range(8).map((i) => `${i2}let h${i} = i32x4.splat(IV${i});`).join("\n")}
${i2}const lo = <u32>counter;
${i2}let clo = i32x4.splat(lo);
${i2}clo = i32x4.replace_lane(clo, 1, lo + 1);
${i2}clo = i32x4.replace_lane(clo, 2, lo + 2);
${i2}clo = i32x4.replace_lane(clo, 3, lo + 3);
${i2}const chi = i32x4.splat(<u32>(counter >> 32));
${i2}const blockLen = i32x4.splat(64);
${i2}for (let b: u32 = 0; b < 16; b++) {
${i4}const p = input + (b << 6);
${loads.join("\n")}
${trans}
${i4}const flags: u32 = (b == 0 ? CHUNK_START : 0) | (b == 15 ? CHUNK_END : 0);
${range(8).map((i) => `${i4}let v${i} = h${i};`).join("\n")}
${range(4).map((i) => `${i4}let v${8 + i} = i32x4.splat(IV${i});`).join("\n")}
${i4}let v12 = clo;
${i4}let v13 = chi;
${i4}let v14 = blockLen;
${i4}let v15 = i32x4.splat(flags);
${rounds(simdOps, i4)}
${range(8).map((i) => `${i4}h${i} = v128.xor(v${i}, v${i + 8});`).join("\n")}
${i2}}
${transpose(["h0", "h1", "h2", "h3"], ["c0", "c1", "c2", "c3"], i2, "const ")}
${transpose(["h4", "h5", "h6", "h7"], ["d0", "d1", "d2", "d3"], i2, "const ")}
${
    range(4).map((k) =>
      `${i2}v128.store(out, c${k}, ${32 * k});\n${i2}v128.store(out, d${k}, ${32 * k + 16});`
    ).join("\n")
  }
}
`;
}

const header = `// deno-lint-ignore-file
// @ts-nocheck AssemblyScript source, compiled by asc (not by Deno).
// GENERATED by wasm/tools/gen_blake3.ts — do not edit by hand.

/** Rotate each u32 lane right by 16 (a byte shuffle). */
function rotr16(x: v128): v128 {
  return i8x16.shuffle(x, x, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
}

/** Rotate each u32 lane right by 8 (a byte shuffle). */
function rotr8(x: v128): v128 {
  return i8x16.shuffle(x, x, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12);
}

/** Rotate each u32 lane right by 12. */
function rotr12(x: v128): v128 {
  return v128.or(i32x4.shr_u(x, 12), i32x4.shl(x, 20));
}

/** Rotate each u32 lane right by 7. */
function rotr7(x: v128): v128 {
  return v128.or(i32x4.shr_u(x, 7), i32x4.shl(x, 25));
}

`;

const out = new URL("../assembly/_blake3_gen.ts", import.meta.url);
await Deno.writeTextFile(out, header + scalar() + "\n" + simd());
console.log(`wrote ${out.pathname}`);
