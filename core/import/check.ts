/**
 * What `fsck` checks of external slices (`external.ts`): that the object each refers to is still
 * there with the ETag it was imported with (one HEAD per object).
 *
 * @module
 */

import type { KvEngine } from "../kv.ts";
import type { SliceId } from "../types.ts";
import { decodeExternal, externalKey, ExternalSources } from "./external.ts";

/** For each external slice whose object is gone, changed or cannot be asked: what is wrong. */
export async function externalProblems(
  kv: KvEngine,
  ids: readonly SliceId[],
): Promise<Map<number, string>> {
  const raws = await kv.txn((tx) => tx.getMany(ids.map(externalKey)), { readOnly: true });
  const out = new Map<number, string>();
  const sources = new ExternalSources();
  const heads = new Map<string, Promise<string | undefined>>();
  try {
    await Promise.all(ids.map(async (id, i) => {
      const raw = raws[i];
      if (!raw) {
        out.set(id, `slice ${id}: the reference to its imported object is missing`);
        return;
      }
      const ref = decodeExternal(raw);
      const at = `${ref.url} ${ref.key}`;
      let p = heads.get(at);
      if (!p) {
        p = sources.head(ref.url, ref.key).then(
          (h) => {
            if (!h) return `imported object "${ref.key}" is gone from ${ref.url}`;
            if (h.etag !== ref.etag) {
              return `imported object "${ref.key}" changed (ETag ${h.etag}, imported ` +
                `${ref.etag}): slayerfs import --refresh takes the new version`;
            }
          },
          (err) => `imported object "${ref.key}" cannot be checked: ${err}`,
        );
        heads.set(at, p);
      }
      const problem = await p;
      if (problem !== undefined) out.set(id, `slice ${id}: ${problem}`);
    }));
  } finally {
    sources.close();
  }
  return out;
}
