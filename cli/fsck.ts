/**
 * `slayerfs fsck [--repair] META_URL`: checks that every slice's blocks are in the store with the
 * right size, names the broken files by path, and checks reference counts and usage counters
 * (`core/fsck.ts`). Exits 1 when something is broken.
 *
 * @module
 */

import { openBlockStore } from "../backends/mod.ts";
import { checkVolume, fsckFailed } from "../core/fsck.ts";
import { Meta } from "../core/meta/mod.ts";
import { CliError } from "./_errors.ts";
import { Progress } from "./_human.ts";
import { openMeta } from "./_meta.ts";
import type { ParsedArgs } from "./_spec.ts";

/** Runs `slayerfs fsck` with its checked arguments. */
export async function cmdFsck(args: ParsedArgs): Promise<void> {
  const repair = args.flag("repair");
  const kv = await openMeta(args.positionals[0]!, !repair);
  try {
    const meta = await Meta.open(kv);
    const store = await openBlockStore(meta.format.storage);
    let step = "starting";
    let done = 0;
    const progress = new Progress(() => ({ fraction: 0, text: `${step}: ${done}` }), {
      quiet: args.flag("quiet") || !Deno.stderr.isTerminal(),
      afterMs: 1000,
    });
    let finished = false;
    const finish = () => {
      if (!finished) progress.done();
      finished = true;
    };
    try {
      const r = await checkVolume(kv, meta.format, store, {
        repair,
        onProgress: (s, n) => {
          step = s;
          done = n;
        },
      });
      finish();
      console.log(`objects listed: ${r.objects} in ${store.url}`);
      console.log(`slices: ${r.slices} (${r.blocks} blocks), inodes: ${r.inodes}`);
      console.log(`broken slices: ${r.brokenSlices}, missing slices: ${r.missingSlices}`);
      console.log(`broken files: ${r.brokenFiles.length}`);
      for (const f of r.brokenFiles) {
        const where = f.paths.length ? f.paths.join(", ") : `(unlinked, still open)`;
        console.log(`  ${where} (inode ${f.ino})`);
        for (const p of f.problems) console.log(`    ${p}`);
      }
      const fixed = repair ? " (repaired)" : " (--repair fixes them)";
      if (r.refMismatches) console.log(`wrong reference counts: ${r.refMismatches}${fixed}`);
      for (const e of r.refExamples) console.log(`  ${e}`);
      for (const c of r.counters) {
        console.log(`counter ${c.name}: ${c.stored}, counted ${c.counted}${fixed}`);
      }
      if (fsckFailed(r, repair)) {
        throw new CliError(
          r.brokenFiles.length || r.brokenSlices || r.missingSlices
            ? `The volume has ${r.brokenFiles.length} broken files (restore them from a copy)`
            : "The volume's counters are inconsistent (run slayerfs fsck --repair)",
        );
      }
      console.log(repair && r.repaired ? `repaired: ${r.repaired}` : "ok");
    } finally {
      finish();
      await store.close();
    }
  } finally {
    await kv.close();
  }
}
