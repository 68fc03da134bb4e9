/**
 * `slayerfs sync [options] SRC DST`: copies the files of SRC that DST lacks or has in another
 * version, like `juicefs sync` and `rsync`. Each end is a local folder (a folder inside a SlayerFS
 * mount is one: SlayerFS paths go through the mount) or an S3 prefix of plain objects
 * (`s3://BUCKET/PREFIX?endpoint=...`). The engine is `core/sync/`; this module reads the command
 * line, draws the progress bar and prints the summary. It exits 0 when everything is in sync and
 * 1 with the list of what failed otherwise.
 *
 * @module
 */

import { resolve } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { Filter, rulesFromArgs } from "../core/sync/filter.ts";
import { planSync, type SyncResult, syncTrees } from "../core/sync/sync.ts";
import { LocalTree, type SyncTree } from "../core/sync/tree.ts";
import { CliError, describe } from "./_errors.ts";
import { humanBytes, Progress } from "./_human.ts";
import type { ParsedArgs } from "./_spec.ts";

/** Opens one end: an `s3://` prefix, or a local folder (a path or a `file://` URL). */
async function openTree(arg: string, source: boolean): Promise<SyncTree> {
  if (/^s3:\/\//i.test(arg)) {
    const { S3Tree } = await import("../backends/s3_tree.ts");
    let tree;
    try {
      tree = new S3Tree(arg);
    } catch (err) {
      throw new CliError(describe(err), 2);
    }
    try {
      await tree.check();
    } catch (err) {
      await tree.close();
      throw new CliError(describe(err));
    }
    return tree;
  }
  if (/^slayerfs:\/\//i.test(arg)) {
    throw new CliError(
      `"${arg}": sync reaches a SlayerFS volume through its mount: mount it and give a folder ` +
        "inside it (slayerfs mount META_URL /mnt/vol1; slayerfs sync SRC /mnt/vol1/dir)",
      2,
    );
  }
  let path = arg;
  if (/^file:\/\//i.test(arg)) path = fromFileUrl(arg);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(arg)) {
    throw new CliError(`Unknown scheme in "${arg}": expected a folder or s3://BUCKET/PREFIX`, 2);
  }
  const abs = resolve(path);
  if (source) {
    try {
      if (!(await Deno.stat(abs)).isDirectory) throw new Error("not a folder");
    } catch (err) {
      throw new CliError(`Cannot read the source "${abs}": ${describe(err)}`);
    }
  }
  return new LocalTree(abs);
}

function summary(r: SyncResult, dryRun: boolean, seconds: number): string[] {
  const lines: string[] = [];
  if (dryRun) {
    for (const p of r.copied) lines.push(`would copy ${p}`);
    for (const p of r.deleted) lines.push(`would delete ${p}`);
  }
  const verb = dryRun ? "Would copy" : "Copied";
  lines.push(
    `${verb} ${r.copied.length} of ${r.files} files (${humanBytes(r.copiedBytes)} of ` +
      `${humanBytes(r.bytes)}), ${r.unchanged} unchanged, ${dryRun ? "would delete" : "deleted"} ` +
      `${r.deleted.length}, ${r.excluded} excluded, ${r.failed.length} failed ` +
      `(${seconds.toFixed(1)} s)`,
  );
  if (r.failed.length) {
    lines.push("Failed:");
    for (const f of r.failed) lines.push(`  ${f.op} ${f.path}: ${f.error}`);
  }
  return lines;
}

/** Runs `slayerfs sync` with its checked arguments. */
export async function cmdSync(args: ParsedArgs): Promise<void> {
  const [srcArg, dstArg] = args.positionals as [string, string];
  const dryRun = args.flag("dry-run");
  const quiet = args.flag("quiet");
  const filter = new Filter(rulesFromArgs(args.raw));
  const src = await openTree(srcArg, true);
  let dst: SyncTree | undefined;
  try {
    dst = await openTree(dstArg, false);
    const t0 = performance.now();
    let plan;
    try {
      plan = await planSync(src, dst, filter);
    } catch (err) {
      throw new CliError(`Cannot list the files: ${describe(err)}`);
    }
    let total = 0;
    for (const e of plan.src.values()) total += e.size;
    let done = 0;
    const progress = new Progress(() => ({
      fraction: total ? done / total : 1,
      text: `${humanBytes(done)} of ${humanBytes(total)}, ${plan.src.size} files`,
    }), { quiet, afterMs: 500 });
    let result: SyncResult;
    try {
      result = await syncTrees(src, dst, {
        threads: args.number("threads"),
        check: args.flag("check"),
        delete: args.flag("delete"),
        dryRun,
        filter,
        onProgress: (n) => done += n,
      }, plan);
    } finally {
      progress.done();
    }
    console.log(summary(result, dryRun, (performance.now() - t0) / 1000).join("\n"));
    if (result.failed.length) {
      const first = result.failed[0]!;
      throw new CliError(
        `${result.failed.length} of ${result.files} files failed (first: ${first.op} ` +
          `${first.path}: ${first.error}); run again to retry them`,
      );
    }
  } finally {
    await src.close();
    await dst?.close();
  }
}
