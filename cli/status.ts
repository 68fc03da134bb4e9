/**
 * `slayerfs status MOUNTPOINT|META_URL`: a mount's daemon state (from its state file) with the
 * volume's usage, or a volume's format and usage straight from its metadata.
 *
 * @module
 */

import { resolve } from "node:path";
import { CliError } from "./_errors.ts";
import { openMeta, volumeSummary } from "./_meta.ts";
import type { ParsedArgs } from "./_spec.ts";
import { processAlive, readState } from "./_state.ts";

/** Runs `slayerfs status` with its checked arguments. */
export async function cmdStatus(args: ParsedArgs): Promise<void> {
  const target = args.positionals[0]!;
  if (/^[a-z0-9+.-]+:\/\//i.test(target)) {
    const kv = await openMeta(target, true);
    try {
      const { format, usage } = await volumeSummary(kv);
      console.log(JSON.stringify({ ...format, usage }, null, 2));
    } finally {
      await kv.close();
    }
    return;
  }
  const mnt = resolve(target);
  const { isMounted } = await import("../ffi/mounts.ts");
  if (!isMounted(mnt)) throw new CliError(`"${mnt}" is not mounted`);
  const state = await readState(mnt);
  if (!state) throw new CliError(`"${mnt}" is not a SlayerFS mount of this host`);
  const out: Record<string, unknown> = { ...state, alive: processAlive(state.pid) };
  if (state.meta.startsWith("sqlite3://")) {
    const kv = await openMeta(state.meta, true);
    try {
      out.usage = (await volumeSummary(kv)).usage;
    } finally {
      await kv.close();
    }
  }
  console.log(JSON.stringify(out, null, 2));
}
