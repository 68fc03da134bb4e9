/**
 * `slayerfs destroy [--yes] [--force] META_URL`: deletes a volume, its objects (everything under
 * `chunks/` and `blobs/` of its storage) and then all its metadata, as `juicefs destroy` does.
 * It asks for the volume's name first (typed on standard input), unless `--yes`. While a mount of
 * the volume is live (a session whose heartbeat is within its timeout) it refuses, listing the
 * mounts; sessions of dead mounts that nobody cleaned up yet make it refuse too, unless
 * `--force`. The format key goes last, so a destroy cut short can be run again.
 *
 * @module
 */

import { openBlockStore } from "../backends/mod.ts";
import type { KvEngine } from "../core/kv.ts";
import { Meta } from "../core/meta/mod.ts";
import { DEFAULT_SESSION_TIMEOUT_MS, isStale, Session } from "../core/session.ts";
import { CliError } from "./_errors.ts";
import { openMeta } from "./_meta.ts";
import type { ParsedArgs } from "./_spec.ts";

/** Keys deleted per transaction. */
const KEY_BATCH = 1000;
/** The object prefixes of a volume's storage. */
const OBJECT_PREFIXES = ["chunks/", "blobs/"];

/** Runs `slayerfs destroy` with its checked arguments. */
export async function cmdDestroy(args: ParsedArgs): Promise<void> {
  const url = args.positionals[0]!;
  const kv = await openMeta(url);
  try {
    const meta = await Meta.open(kv).catch(() => {
      throw new CliError(`No volume in "${url}" (already destroyed?)`);
    });
    const name = meta.format.name;
    const now = Date.now();
    const sessions = await Session.list(kv);
    const live = sessions.filter((s) => !isStale(s, now, DEFAULT_SESSION_TIMEOUT_MS));
    const where = (list: typeof sessions) =>
      list.map((s) => `${s.mountpoint} on ${s.host} (pid ${s.pid}, session ${s.id})`).join(", ");
    if (live.length) {
      throw new CliError(
        `Volume "${name}" is mounted (${live.length} live session${live.length > 1 ? "s" : ""}: ${
          where(live)
        }): unmount it everywhere first`,
      );
    }
    if (sessions.length && !args.flag("force")) {
      throw new CliError(
        `Volume "${name}" has sessions of mounts that stopped beating (${
          where(sessions)
        }): make sure they are dead, then use --force`,
      );
    }
    if (!args.flag("yes")) {
      const answer = await ask(
        `Destroy volume "${name}" (${meta.format.storage})? Type its name: `,
      );
      if (answer?.trim() !== name) {
        throw new CliError(`Not destroyed: the name typed is not "${name}" (or use --yes)`);
      }
    }
    const objects = await deleteObjects(meta.format.storage);
    const keys = await deleteKeys(kv);
    console.log(`Destroyed volume "${name}": ${objects} objects, ${keys} metadata keys`);
  } finally {
    await kv.close();
  }
}

/** Prints `question` and reads one line from standard input (a terminal or a pipe). */
async function ask(question: string): Promise<string | undefined> {
  await Deno.stdout.write(new TextEncoder().encode(question));
  const buf = new Uint8Array(1024);
  let line = "";
  const dec = new TextDecoder();
  for (;;) {
    const n = await Deno.stdin.read(buf);
    if (n === null) return line || undefined;
    line += dec.decode(buf.subarray(0, n), { stream: true });
    const nl = line.indexOf("\n");
    if (nl >= 0) return line.slice(0, nl);
  }
}

/** Deletes every object of the volume in `storage`; returns how many. */
async function deleteObjects(storage: string): Promise<number> {
  const store = await openBlockStore(storage);
  let n = 0;
  try {
    for (const prefix of OBJECT_PREFIXES) {
      for (;;) {
        const page = await store.list(prefix);
        if (!page.objects.length) break;
        await store.delete(page.objects.map((o) => o.key));
        n += page.objects.length;
      }
    }
  } finally {
    await store.close();
  }
  return n;
}

/** Deletes every key of the volume, the format key `F` last; returns how many. */
async function deleteKeys(kv: KvEngine): Promise<number> {
  let n = 0;
  for (;;) {
    const done = await kv.txn(async (tx) => {
      const pairs = (await tx.scan("", { keysOnly: true, limit: KEY_BATCH + 1 }))
        .filter(([k]) => k !== "F").slice(0, KEY_BATCH);
      for (const [k] of pairs) tx.delete(k);
      return pairs.length;
    });
    n += done;
    if (done === 0) break;
  }
  await kv.txn((tx) => Promise.resolve(tx.delete("F")));
  return n + 1;
}
