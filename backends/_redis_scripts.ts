/**
 * The Lua scripts of the Redis engine (private to it), and the digest of a scanned key list
 * that the commit script recomputes.
 *
 * A volume's keys (`T` is the hash tag `{prefix}`): `T v KEY` holds a value as an 8-byte commit
 * token followed by the value's bytes; the sorted set `T i` holds every KEY as a member of score
 * 0 (so `ZRANGEBYLEX` lists keys in byte order); `T m` is the volume's marker; `T r TOKEN` is the
 * short-lived receipt of a commit that only deleted keys.
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import { createHash } from "node:crypto";

/**
 * Lists index members in a lex range with their stored values, in one round trip.
 *
 * KEYS[1] the index. ARGV: min, max, limit (-1: all), the value keys' prefix (`T v`).
 * Returns the members, then their stored values (nil for a missing one).
 */
export const SCAN_LUA = `
local limit = tonumber(ARGV[3])
local members
if limit < 0 then
  members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2])
else
  members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], ARGV[2], 'LIMIT', 0, limit)
end
local n = #members
local out = {}
for i = 1, n do out[i] = members[i] end
for i = 1, n, 500 do
  local keys = {}
  for j = i, math.min(i + 499, n) do keys[#keys + 1] = ARGV[4] .. members[j] end
  local values = redis.call('MGET', unpack(keys))
  for j = 1, #values do out[n + i + j - 1] = values[j] end
end
return out
`;

/**
 * Validates a transaction's reads and applies its writes, atomically.
 *
 * KEYS: the index, the marker, the receipt key, then the `nr` value keys read, then the `nw`
 * value keys written. ARGV: nr, number of scans, nw, the marker's value (or "" to leave it), the
 * receipt's value, the commit's token ("" for none), the length of `T v`, then a token per read key ("" when it was
 * absent), then per scan min, max, limit (-1: all) and digest of the members it saw, then per
 * written key its stored value ("" to delete). Returns 1 when committed, 0 on a conflict.
 */
export const COMMIT_LUA = `
local nr, ns, nw = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local skip = tonumber(ARGV[6]) + 1
local a = 7
for i = 1, nr do
  if redis.call('GETRANGE', KEYS[3 + i], 0, 7) ~= ARGV[a] then return 0 end
  a = a + 1
end
for i = 1, ns do
  local limit = tonumber(ARGV[a + 2])
  local members
  if limit < 0 then
    members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[a], ARGV[a + 1])
  else
    members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[a], ARGV[a + 1], 'LIMIT', 0, limit)
  end
  local parts = {}
  for j = 1, #members do parts[j] = #members[j] .. ':' .. members[j] end
  if redis.sha1hex(table.concat(parts)) ~= ARGV[a + 3] then return 0 end
  a = a + 4
end
if nw == 0 then return 1 end
if ARGV[4] ~= '' then redis.call('SET', KEYS[2], ARGV[4], 'NX') end
for i = 1, nw do
  local key = KEYS[3 + nr + i]
  local member = string.sub(key, skip)
  if ARGV[a] == '' then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], member)
  else
    redis.call('SET', key, ARGV[a])
    redis.call('ZADD', KEYS[1], 0, member)
  end
  a = a + 1
end
if ARGV[5] ~= '' then redis.call('SET', KEYS[3], ARGV[5], 'PX', 300000) end
return 1
`;

/** The digest of a scanned member list, as {@linkcode COMMIT_LUA} computes it. */
export function membersDigest(members: readonly Buffer[]): string {
  const hash = createHash("sha1");
  for (const m of members) {
    hash.update(`${m.length}:`);
    hash.update(m);
  }
  return hash.digest("hex");
}
