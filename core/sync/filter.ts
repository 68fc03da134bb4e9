/**
 * The `--include`/`--exclude` rules of `slayerfs sync`, tried in the order given: the first rule
 * that matches a file's relative path decides; a path no rule matches is included.
 *
 * A pattern without a slash matches any name along the path (a folder's name covers everything
 * under it, a file's name the file). A pattern with a slash matches the whole relative path (a
 * leading `/` is allowed and means the same); a trailing `/` matches folders only. `*` matches
 * within a name, `**` across slashes, `?` one character, `[abc]`/`[!abc]` one of a set.
 *
 * @module
 */

/** One rule. */
export interface FilterRule {
  /** Whether a match includes or excludes. */
  include: boolean;
  /** The pattern as given. */
  pattern: string;
}

/** A glob (see the module notes) as an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        i++;
        if (glob[i + 1] === "/") {
          i++;
          re += "(?:.*/)?"; // `**/` also matches no folder at all
        } else re += ".*";
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 2);
      if (end < 0) re += "\\[";
      else {
        let set = glob.slice(i + 1, end);
        if (set.startsWith("!")) set = "^" + set.slice(1);
        re += `[${set.replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

interface Compiled {
  include: boolean;
  re: RegExp;
  /** Matches the whole path (the pattern has a slash) rather than each name. */
  whole: boolean;
  /** Matches folders only (a trailing slash). */
  dirOnly: boolean;
}

/** The rules, compiled; {@linkcode Filter.includes} decides for a path. */
export class Filter {
  readonly #rules: Compiled[];

  /** Compiles `rules` (in order). */
  constructor(rules: readonly FilterRule[]) {
    this.#rules = rules.map((r) => {
      let p = r.pattern;
      const dirOnly = p.endsWith("/") && p.length > 1;
      if (dirOnly) p = p.slice(0, -1);
      const whole = p.includes("/");
      if (p.startsWith("/")) p = p.slice(1);
      return { include: r.include, re: globToRegExp(p), whole, dirOnly };
    });
  }

  /** Whether the file at relative path `path` (`a/b/c.txt`) is synced. */
  includes(path: string): boolean {
    const names = path.split("/");
    for (const r of this.#rules) {
      let hit: boolean;
      if (r.whole) {
        // Against the path, or (a folder rule) against one of its folders.
        hit = r.dirOnly
          ? names.slice(0, -1).some((_, i) => r.re.test(names.slice(0, i + 1).join("/")))
          : r.re.test(path) ||
            names.slice(0, -1).some((_, i) => r.re.test(names.slice(0, i + 1).join("/")));
      } else {
        const candidates = r.dirOnly ? names.slice(0, -1) : names;
        hit = candidates.some((n) => r.re.test(n));
      }
      if (hit) return r.include;
    }
    return true;
  }
}

/**
 * The rules of a command line in the order they were given: `--include P`, `--include=P`,
 * `--exclude P` and `--exclude=P` among `raw` (the arguments after the command name).
 */
export function rulesFromArgs(raw: readonly string[]): FilterRule[] {
  const rules: FilterRule[] = [];
  for (let i = 0; i < raw.length; i++) {
    const a = raw[i]!;
    if (a === "--") break;
    const m = /^--(include|exclude)(?:=(.*))?$/s.exec(a);
    if (!m) continue;
    const pattern = m[2] ?? raw[++i];
    if (pattern !== undefined) rules.push({ include: m[1] === "include", pattern });
  }
  return rules;
}
