/**
 * `slayerfs import META_URL s3://BUCKET/PREFIX DEST`: makes a file under DEST of each object under
 * the prefix, whose data refers to the object in place (`core/import/`). Shows its progress on
 * standard error (a bar of the objects done out of those listed so far on a terminal, redrawn in
 * place; otherwise a line every 2 s; `-q` silences both) and prints a summary; exits 1 if an
 * object could not be imported (the others are), 2 for bad arguments.
 *
 * @module
 */

import { parseS3Url } from "../backends/_s3_url.ts";
import { importObjects, type ImportReport } from "../core/import/import.ts";
import { Meta } from "../core/meta/mod.ts";
import { CliError, describe } from "./_errors.ts";
import { humanBytes, Progress } from "./_human.ts";
import { openMeta } from "./_meta.ts";
import type { ParsedArgs } from "./_spec.ts";

function line(r: ImportReport, seconds: number): string {
  return `${r.listed} objects listed, ${r.imported} imported (${humanBytes(r.bytes)} referred ` +
    `to), ${r.unchanged} unchanged, ${r.replaced} replaced, ${r.removed} removed, ` +
    `${r.keptLocal.length} kept (written locally), ${r.stale.length} changed (not refreshed), ` +
    `${r.skipped.length} skipped (${seconds.toFixed(1)} s)`;
}

/** Runs `slayerfs import` with its checked arguments. */
export async function cmdImport(args: ParsedArgs): Promise<void> {
  const [metaUrl, source, dest] = args.positionals as [string, string, string];
  if (!/^s3:\/\//i.test(source)) {
    throw new CliError(`"${source}": the source must be s3://BUCKET/PREFIX?endpoint=URL`, 2);
  }
  try {
    parseS3Url(source);
  } catch (err) {
    throw new CliError(describe(err), 2);
  }
  if (!dest.startsWith("/")) {
    throw new CliError(
      `"${dest}": DEST is a path in the volume from its root, e.g. /datasets/x`,
      2,
    );
  }
  const quiet = args.flag("quiet");
  const kv = await openMeta(metaUrl);
  const t0 = performance.now();
  const seconds = () => (performance.now() - t0) / 1000;
  let last = performance.now();
  // On a terminal, a bar of the objects done out of those listed so far (the listing runs ahead).
  let current: ImportReport | undefined;
  const bar = !quiet && Deno.stderr.isTerminal()
    ? new Progress(() => {
      const r = current;
      if (!r) return { fraction: 0, text: "listing" };
      const done = r.imported + r.unchanged + r.replaced + r.keptLocal.length + r.stale.length +
        r.skipped.length;
      return {
        fraction: r.listed ? done / r.listed : 0,
        text: `${done}/${r.listed} objects, ${humanBytes(r.bytes)} referred to`,
      };
    })
    : undefined;
  try {
    const meta = await Meta.open(kv);
    let report: ImportReport;
    try {
      report = await importObjects(meta, source, dest, {
        refresh: args.flag("refresh"),
        concurrency: args.number("threads"),
        ctx: {
          uid: Deno.uid() ?? 0,
          gid: Deno.gid() ?? 0,
          pid: 0,
          umask: 0o022,
          groups: () => [],
        },
        onProgress: (r) => {
          current = r;
          if (bar || quiet || performance.now() - last < 2000) return;
          last = performance.now();
          console.error(`import: ${line(r, seconds())}`);
        },
      });
    } catch (err) {
      throw new CliError(`Import from ${source} failed: ${describe(err)}; run it again to resume`);
    } finally {
      bar?.done();
    }
    for (const p of report.keptLocal) {
      console.error(
        `warning: "${p}" was written since its import: kept as it is (its ranges not ` +
          "written still refer to the old object: reading them gives EIO if it changed)",
      );
    }
    for (const p of report.stale) {
      console.error(`warning: "${p}" changed in the bucket: run with --refresh to take it`);
    }
    for (const s of report.skipped) console.error(`skipped ${s}`);
    console.log(`Imported into ${dest}: ${line(report, seconds())}`);
    if (report.skipped.length) {
      throw new CliError(`${report.skipped.length} objects were not imported (listed above)`);
    }
  } finally {
    await kv.close();
  }
}
