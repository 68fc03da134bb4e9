/**
 * `slayerfs gc [--delete] [--min-age SECONDS] META_URL`: reports, or deletes, the objects no file
 * refers to (pending deletes and leaked uploads); safe while the volume is mounted.
 *
 * @module
 */

import { openBlockStore } from "../backends/mod.ts";
import { collectVolumeGarbage } from "../core/gc.ts";
import { Meta } from "../core/meta/mod.ts";
import { expectArgs, mib, parse } from "./_args.ts";
import { CliError } from "./_errors.ts";
import { openMeta } from "./_meta.ts";

/** Runs `slayerfs gc` with the arguments after the command name. */
export async function cmdGc(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    delete: { type: "boolean" },
    "min-age": { type: "string" },
  });
  expectArgs(positionals, 1, "META_URL");
  const rawAge = values["min-age"] as string | undefined;
  const minAge = rawAge === undefined ? 3600 : Number(rawAge);
  if (rawAge === "" || !Number.isFinite(minAge) || minAge < 0) {
    throw new CliError(`Invalid --min-age "${rawAge}": expected seconds >= 0`, 2);
  }
  const remove = values.delete === true;
  const kv = await openMeta(positionals[0]!, !remove);
  try {
    const meta = await Meta.open(kv);
    const store = await openBlockStore(meta.format.storage);
    try {
      const r = await collectVolumeGarbage(meta, store, {
        delete: remove,
        minAgeMs: minAge * 1000,
      });
      const done = remove ? "deleted" : "run with --delete to delete them";
      console.log(`objects: ${r.objects} (${mib(r.bytes)} MiB) in ${store.url}`);
      console.log(`referenced: ${r.referenced}`);
      console.log(
        `pending deletes: ${r.pendingSlices} freed slices, ${r.pendingObjects} objects` +
          (r.pendingSlices ? ` (${done})` : ""),
      );
      console.log(
        `leaked: ${r.leaked} (${mib(r.leakedBytes)} MiB)` + (r.leaked ? ` (${done})` : ""),
      );
      for (const key of r.examples) console.log(`  ${key}`);
      if (r.leaked > r.examples.length) console.log(`  ...`);
      console.log(`not referenced yet, younger than ${minAge} s (may be in flight): ${r.young}`);
      if (r.foreign) console.log(`other keys under chunks/ and blobs/, left alone: ${r.foreign}`);
      if (remove) console.log(`deleted: ${r.deleted} objects`);
    } finally {
      await store.close();
    }
  } finally {
    await kv.close();
  }
}
