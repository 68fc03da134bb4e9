/**
 * `slayerfs quota set|get|list|delete|check META_URL ...`: directory quotas (`core/meta/quotas.ts`).
 * Works beside running mounts: each change is one transaction of the metadata engine, and mounts
 * read the limits from it (see README "Tenants").
 *
 * @module
 */

import { Meta, type QuotaInfo } from "../core/meta/mod.ts";
import type { KvEngine } from "../core/kv.ts";
import { type Ino, nameToText, ROOT_INO } from "../core/types.ts";
import { humanBytes, table } from "./_human.ts";
import { CliError, describe } from "./_errors.ts";
import { openMeta } from "./_meta.ts";
import type { ParsedArgs } from "./_spec.ts";

const SUBS = ["set", "get", "list", "delete", "check"];

/** A quota as `quota get --json` prints it. */
interface QuotaJson {
  path: string;
  capacity: number | null;
  inodes: number | null;
  usedSpace: number;
  usedInodes: number;
}

/** The path of directory `ino` from the volume's root. */
async function pathOf(meta: Meta, ino: Ino): Promise<string> {
  const parts: string[] = [];
  let cur = ino;
  while (cur !== ROOT_INO) {
    const parent = (await meta.getattr(cur)).parent;
    const e = (await meta.listDir(parent)).find((e) => e.ino === cur);
    parts.unshift(e ? nameToText(e.name) : `?${cur}`);
    cur = parent;
  }
  return "/" + parts.join("/");
}

function toJson(path: string, q: QuotaInfo): QuotaJson {
  return {
    path,
    capacity: q.capacity,
    inodes: q.inodes,
    usedSpace: q.usedSpace,
    usedInodes: q.usedInodes,
  };
}

function rows(list: QuotaJson[]): string {
  const r = [["PATH", "CAPACITY", "USED", "INODES", "USED INODES"]];
  for (const q of list) {
    r.push([
      q.path,
      q.capacity === null ? "-" : humanBytes(q.capacity),
      humanBytes(q.usedSpace),
      q.inodes === null ? "-" : String(q.inodes),
      String(q.usedInodes),
    ]);
  }
  return table(r, "").join("\n");
}

/** The directory `--path` names. */
async function dirOf(meta: Meta, path: string | undefined, sub: string): Promise<Ino> {
  if (path === undefined) throw new CliError(`quota ${sub} needs --path PATH`, 2);
  const a = await meta.resolve(path).catch((err) => {
    throw new CliError(`"${path}": ${describe(err)}`);
  });
  if ((a.mode & 0o170000) !== 0o040000) throw new CliError(`"${path}" is not a directory`);
  return a.ino;
}

/** Runs `slayerfs quota` with its checked arguments. */
export async function cmdQuota(args: ParsedArgs): Promise<void> {
  const [sub, url] = args.positionals as [string, string];
  if (!SUBS.includes(sub)) {
    throw new CliError(`Unknown quota command "${sub}": set, get, list, delete or check`, 2);
  }
  const changes = sub === "set" || sub === "delete" || (sub === "check" && args.flag("repair"));
  const kv: KvEngine = await openMeta(url, !changes);
  try {
    const meta = await Meta.open(kv);
    const path = args.string("path");
    const json = args.flag("json");
    if (sub === "set") {
      const dir = await dirOf(meta, path, sub);
      const limit = (name: string) =>
        args.has(name) ? (args.number(name) === 0 ? null : args.number(name)) : undefined;
      const capacity = limit("capacity"), inodes = limit("inodes");
      if (capacity === undefined && inodes === undefined) {
        throw new CliError("quota set needs --capacity SIZE or --inodes N (0 = no limit)", 2);
      }
      const q = await meta.setQuota(dir, {
        ...(capacity !== undefined ? { capacity } : {}),
        ...(inodes !== undefined ? { inodes } : {}),
      });
      if (json) console.log(JSON.stringify(toJson(path!, q)));
      else console.log(rows([toJson(path!, q)]));
    } else if (sub === "get") {
      const dir = await dirOf(meta, path, sub);
      const q = await meta.getQuota(dir);
      if (!q) throw new CliError(`No quota on "${path}"`);
      if (json) console.log(JSON.stringify(toJson(path!, q)));
      else console.log(rows([toJson(path!, q)]));
    } else if (sub === "list") {
      const list: QuotaJson[] = [];
      for (const q of await meta.listQuotas()) list.push(toJson(await pathOf(meta, q.ino), q));
      list.sort((a, b) => a.path < b.path ? -1 : 1);
      if (json) console.log(JSON.stringify(list));
      else if (list.length) console.log(rows(list));
    } else if (sub === "delete") {
      const dir = await dirOf(meta, path, sub);
      if (!await meta.deleteQuota(dir)) throw new CliError(`No quota on "${path}"`);
      console.log(`deleted the quota on ${path}`);
    } else {
      await check(meta, path, args.flag("repair"), json);
    }
  } finally {
    await kv.close();
  }
}

/** `quota check`: the kept usage against a walk, for one quota or all; exits 1 on a mismatch. */
async function check(
  meta: Meta,
  path: string | undefined,
  repair: boolean,
  json: boolean,
): Promise<void> {
  const dirs = path !== undefined
    ? [await dirOf(meta, path, "check")]
    : (await meta.listQuotas()).map((q) => q.ino);
  const out = [];
  let wrong = 0;
  for (const dir of dirs) {
    const r = await meta.checkQuota(dir, repair);
    if (!r) throw new CliError(`No quota on "${path}"`);
    const p = path ?? await pathOf(meta, dir);
    const ok = r.kept.usedSpace === r.walked.space && r.kept.usedInodes === r.walked.inodes;
    if (!ok) wrong++;
    out.push({
      path: p,
      ok,
      repaired: !ok && repair,
      usedSpace: r.kept.usedSpace,
      usedInodes: r.kept.usedInodes,
      walkedSpace: r.walked.space,
      walkedInodes: r.walked.inodes,
    });
    if (!json) {
      console.log(
        ok
          ? `${p}: ok (${humanBytes(r.walked.space)}, ${r.walked.inodes} inodes)`
          : `${p}: usage kept ${r.kept.usedSpace} bytes, ${r.kept.usedInodes} inodes; ` +
            `counted ${r.walked.space} bytes, ${r.walked.inodes} inodes` +
            (repair ? " (repaired)" : ""),
      );
    }
  }
  if (json) console.log(JSON.stringify(out));
  if (wrong && !repair) {
    throw new CliError(`${wrong} quota usage(s) differ from the tree: run quota check --repair`);
  }
}
