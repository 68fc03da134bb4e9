/**
 * Model-based tests: random operation sequences applied to a directory and to a simple in-memory
 * reference model (path → directory or file, files sharing an inode object for hard links),
 * compared after every step: each operation's outcome (success or the Linux errno, in the order
 * the kernel checks them) and then the whole tree (names, types, sizes, contents, link counts).
 *
 * The model is first checked against tmpfs, then SlayerFS is checked against the model.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import * as L from "./_libc.ts";
import { startSlayer } from "./_mount.ts";
import { mountTmpfs } from "./_tmpfs.ts";
import { pseudoRandom } from "./posix/suite.ts";

const MiB = 1024 * 1024;
const PATHS = ["a", "b", "c", "a/x", "a/y", "b/x", "a/x/z"] as const;

type Inode = { data: Uint8Array };
type Node = { kind: "dir" } | { kind: "file"; inode: Inode };
type Outcome = string; // "ok", "ok:<listing>" or an errno name

/** An operation of the model test. */
export type Op =
  | { op: "write"; path: string; offset: number; length: number; seed: number }
  | { op: "truncate"; path: string; length: number }
  | { op: "rename"; from: string; to: string }
  | { op: "unlink"; path: string }
  | { op: "mkdir"; path: string }
  | { op: "rmdir"; path: string }
  | { op: "link"; from: string; to: string }
  | { op: "readdir"; path: string };

/** The reference model of a directory tree, following Linux's order of error checks. */
export class Model {
  readonly nodes = new Map<string, Node>([["", { kind: "dir" }]]);

  #parent(p: string): string {
    const i = p.lastIndexOf("/");
    return i < 0 ? "" : p.slice(0, i);
  }

  /** Resolves every directory component of `p`'s parent: ENOENT, ENOTDIR or undefined. */
  #resolveParent(p: string): string | undefined {
    const parts = p.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const n = this.nodes.get(parts.slice(0, i).join("/"));
      if (n === undefined) return "ENOENT";
      if (n.kind !== "dir") return "ENOTDIR";
    }
    return undefined;
  }

  /** The node at `p`, or the errno of looking it up (a bad parent, or ENOENT). */
  #lookup(p: string): Node | Outcome {
    const e = this.#resolveParent(p);
    if (e) return e;
    return this.nodes.get(p) ?? "ENOENT";
  }

  #children(p: string): string[] {
    const prefix = p === "" ? "" : `${p}/`;
    return [...this.nodes.keys()].filter((k) =>
      k !== "" && k.startsWith(prefix) && !k.slice(prefix.length).includes("/")
    ).map((k) => k.slice(prefix.length)).sort();
  }

  #subtree(p: string): string[] {
    return [...this.nodes.keys()].filter((k) => k === p || k.startsWith(`${p}/`));
  }

  /** Applies `o` to the model and returns its outcome. */
  apply(o: Op): Outcome {
    switch (o.op) {
      case "write": {
        const e = this.#resolveParent(o.path);
        if (e) return e;
        let n = this.nodes.get(o.path);
        if (n?.kind === "dir") return "EISDIR";
        if (n === undefined) {
          n = { kind: "file", inode: { data: new Uint8Array(0) } };
          this.nodes.set(o.path, n);
        }
        const inode = n.inode;
        const end = o.offset + o.length;
        if (end > inode.data.length) {
          const grown = new Uint8Array(end);
          grown.set(inode.data);
          inode.data = grown;
        }
        inode.data.set(pseudoRandom(o.length, o.seed), o.offset);
        return "ok";
      }
      case "truncate": {
        const n = this.#lookup(o.path);
        if (typeof n === "string") return n;
        if (n.kind === "dir") return "EISDIR";
        const next = new Uint8Array(o.length);
        next.set(n.inode.data.subarray(0, Math.min(o.length, n.inode.data.length)));
        n.inode.data = next;
        return "ok";
      }
      case "unlink": {
        const n = this.#lookup(o.path);
        if (typeof n === "string") return n;
        if (n.kind === "dir") return "EISDIR";
        this.nodes.delete(o.path);
        return "ok";
      }
      case "mkdir": {
        const e = this.#resolveParent(o.path);
        if (e) return e;
        if (this.nodes.has(o.path)) return "EEXIST";
        this.nodes.set(o.path, { kind: "dir" });
        return "ok";
      }
      case "rmdir": {
        const n = this.#lookup(o.path);
        if (typeof n === "string") return n;
        if (n.kind !== "dir") return "ENOTDIR";
        if (this.#children(o.path).length > 0) return "ENOTEMPTY";
        this.nodes.delete(o.path);
        return "ok";
      }
      case "link": {
        const src = this.#lookup(o.from);
        if (typeof src === "string") return src;
        const e2 = this.#resolveParent(o.to);
        if (e2) return e2;
        if (this.nodes.has(o.to)) return "EEXIST";
        if (src.kind === "dir") return "EPERM";
        this.nodes.set(o.to, src);
        return "ok";
      }
      case "rename": {
        const e1 = this.#resolveParent(o.from);
        if (e1) return e1;
        const e2 = this.#resolveParent(o.to);
        if (e2) return e2;
        const src = this.nodes.get(o.from);
        if (src === undefined) return "ENOENT";
        if (o.to.startsWith(`${o.from}/`)) return "EINVAL";
        if (o.from.startsWith(`${o.to}/`)) return "ENOTEMPTY";
        const dst = this.nodes.get(o.to);
        if (o.from === o.to) return "ok";
        if (dst !== undefined) {
          if (dst.kind === "file" && src.kind === "file" && dst.inode === src.inode) return "ok";
          if (src.kind === "dir" && dst.kind !== "dir") return "ENOTDIR";
          if (src.kind !== "dir" && dst.kind === "dir") return "EISDIR";
          if (dst.kind === "dir" && this.#children(o.to).length > 0) return "ENOTEMPTY";
        }
        const moved = this.#subtree(o.from).map((k) => [k, this.nodes.get(k)!] as const);
        for (const [k] of moved) this.nodes.delete(k);
        this.nodes.delete(o.to);
        for (const [k, n] of moved) this.nodes.set(o.to + k.slice(o.from.length), n);
        return "ok";
      }
      case "readdir": {
        const n = this.#lookup(o.path);
        if (typeof n === "string") return n;
        if (n.kind !== "dir") return "ENOTDIR";
        return `ok:${this.#children(o.path).join(",")}`;
      }
    }
  }

  /** A canonical description of the tree, comparable with {@link describeReal}. */
  describe(): string[] {
    const links = new Map<Inode, number>();
    for (const n of this.nodes.values()) {
      if (n.kind === "file") links.set(n.inode, (links.get(n.inode) ?? 0) + 1);
    }
    return [...this.nodes.entries()].filter(([k]) => k !== "").sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0
    ).map(([k, n]) => {
      if (n.kind === "dir") {
        const subdirs = this.#children(k).filter((c) =>
          this.nodes.get(`${k}/${c}`)?.kind === "dir"
        );
        return `${k} dir nlink=${2 + subdirs.length}`;
      }
      return `${k} file size=${n.inode.data.length} nlink=${links.get(n.inode)} sum=${
        checksum(n.inode.data)
      }`;
    });
  }
}

function checksum(data: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i]!, 0x01000193);
  return (h >>> 0).toString(16);
}

/** Applies `o` to the real directory `root` and returns its outcome. */
async function applyReal(root: string, o: Op): Promise<Outcome> {
  const p = (rel: string) => `${root}/${rel}`;
  try {
    switch (o.op) {
      case "write": {
        const fd = L.open(p(o.path), L.O.WRONLY | L.O.CREAT, 0o644);
        try {
          L.pwriteFull(fd, pseudoRandom(o.length, o.seed), o.offset);
        } finally {
          L.close(fd);
        }
        return "ok";
      }
      case "truncate":
        L.truncate(p(o.path), o.length);
        return "ok";
      case "unlink":
        L.unlink(p(o.path));
        return "ok";
      case "mkdir":
        L.mkdir(p(o.path));
        return "ok";
      case "rmdir":
        L.rmdir(p(o.path));
        return "ok";
      case "link":
        L.link(p(o.from), p(o.to));
        return "ok";
      case "rename":
        L.rename(p(o.from), p(o.to));
        return "ok";
      case "readdir": {
        const names: string[] = [];
        for await (const e of Deno.readDir(p(o.path))) names.push(e.name);
        return `ok:${names.sort().join(",")}`;
      }
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (typeof code === "string" && code.startsWith("E")) return code;
    throw e;
  }
}

/** The description of the real tree under `root`, in the format of {@link Model.describe}. */
async function describeReal(root: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    const names: string[] = [];
    for await (const e of Deno.readDir(rel === "" ? root : `${root}/${rel}`)) names.push(e.name);
    for (const name of names) {
      const r = rel === "" ? name : `${rel}/${name}`;
      const st = L.lstat(`${root}/${r}`);
      if ((st.mode & 0o170000) === 0o040000) {
        out.push(`${r} dir nlink=${st.nlink}`);
        await walk(r);
      } else {
        const data = await Deno.readFile(`${root}/${r}`);
        assert.equal(data.length, st.size, `${r}: bytes read vs st_size`);
        out.push(`${r} file size=${st.size} nlink=${st.nlink} sum=${checksum(data)}`);
      }
    }
  }
  await walk("");
  return out.sort((a, b) => {
    const ka = a.split(" ")[0]!, kb = b.split(" ")[0]!;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

const pathArb = fc.constantFrom(...PATHS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("write" as const),
      path: pathArb,
      offset: fc.oneof(
        fc.nat(10_000),
        fc.constantFrom(0, 4095, 4096, 65_535, 128 * 1024 - 1, 4 * MiB - 3),
      ),
      length: fc.integer({ min: 1, max: 300 }),
      seed: fc.integer({ min: 1, max: 1 << 30 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("truncate" as const),
      path: pathArb,
      length: fc.oneof(fc.nat(12_000), fc.constantFrom(0, 4096, 4 * MiB + 1)),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("rename" as const), from: pathArb, to: pathArb }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("unlink" as const), path: pathArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("mkdir" as const), path: pathArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("rmdir" as const), path: pathArb }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("link" as const), from: pathArb, to: pathArb }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("readdir" as const),
      path: fc.constantFrom("", ...PATHS),
    }),
  },
);

/** Runs the model property against fresh subdirectories of `root`. */
async function checkAgainstModel(root: string, numRuns: number, seed?: number): Promise<void> {
  let run = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 25 }), async (ops) => {
      const dir = `${root}/run-${run++}`;
      await Deno.mkdir(dir);
      try {
        const model = new Model();
        for (const [i, o] of ops.entries()) {
          const want = model.apply(o);
          const got = await applyReal(dir, o);
          assert.equal(got, want, `step ${i} ${JSON.stringify(o)}: outcome`);
          assert.deepEqual(await describeReal(dir), model.describe(), `step ${i}: tree`);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }),
    {
      numRuns,
      interruptAfterTimeLimit: 55_000,
      markInterruptAsFailure: false,
      ...(seed === undefined ? {} : { seed }),
    },
  );
}

Deno.test({
  name: "the reference model agrees with tmpfs",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using tmp = await mountTmpfs("512m");
    await checkAgainstModel(tmp.mnt, 200);
  },
});

Deno.test({
  name: "SlayerFS agrees with the reference model over random operation sequences",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using fs = await startSlayer();
    await fs.guard(180_000, "model runs", () => checkAgainstModel(fs.mnt, 200));
  },
});
