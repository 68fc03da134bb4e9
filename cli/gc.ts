/**
 * `slayerfs gc [--delete] [--min-age SECONDS] META_URL`: reports, or deletes, the objects no file
 * refers to (pending deletes and leaked uploads); safe while the volume is mounted.
 *
 * @module
 */

import { openBlockStore } from "../backends/mod.ts";
import { collectVolumeGarbage } from "../core/gc.ts";
import { Meta } from "../core/meta/mod.ts";
import { mib } from "./_args.ts";
import { openMeta } from "./_meta.ts";
import type { ParsedArgs } from "./_spec.ts";
import { deadSessions, listDetached, reclaimDetached } from "../core/clone.ts";

/** Runs `slayerfs gc` with its checked arguments. */
export async function cmdGc(args: ParsedArgs): Promise<void> {
  const minAge = args.number("min-age");
  const remove = args.flag("delete");
  const kv = await openMeta(args.positionals[0]!, !remove);
  try {
    const meta = await Meta.open(kv);
    // Clones and snapshot removals that a dead mount left half done (core/clone.ts): with
    // --delete, removed first, so that the slices they held become pending deletes.
    const dead = await deadSessions(kv);
    const half = remove
      ? await reclaimDetached(kv, dead)
      : (await listDetached(kv)).filter((t) => dead(t.sid)).length;
    const store = await openBlockStore(meta.format.storage);
    try {
      const r = await collectVolumeGarbage(meta, store, {
        delete: remove,
        minAgeMs: minAge * 1000,
      });
      const done = remove ? "deleted" : "run with --delete to delete them";
      console.log(`objects: ${r.objects} (${mib(r.bytes)} MiB) in ${store.url}`);
      console.log(`referenced: ${r.referenced}`);
      if (half) {
        console.log(
          `half-done clones or snapshot removals of dead mounts: ${half}` +
            (remove ? " (removed)" : " (run with --delete to remove them)"),
        );
      }
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
