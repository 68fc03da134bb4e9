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
 * The Lua function that checks a transaction's reads: `check(nr, ns, k, a)` compares the tokens
 * of the `nr` value keys from `KEYS[k]` with `ARGV[a..]` ("" for a key that was absent), then
 * re-lists `ns` ranges (4 arguments each: min, max, limit or -1, digest of the members seen).
 * Returns the index of the next argument, or nil when something changed. `mget(keys, from, to,
 * out, at)` stores the values of `keys[from..to]` in `out[at..]`, 500 keys per `MGET`.
 */
const CHECK_LUA = `
local function check(nr, ns, k, a)
  for i = 1, nr do
    if redis.call('GETRANGE', KEYS[k + i - 1], 0, 7) ~= ARGV[a] then return nil end
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
    if redis.sha1hex(table.concat(parts)) ~= ARGV[a + 3] then return nil end
    a = a + 4
  end
  return a
end
local function mget(keys, from, to, out, at)
  for i = from, to, 500 do
    local values = redis.call('MGET', unpack(keys, i, math.min(i + 499, to)))
    for j = 1, #values do out[at + i - from + j - 1] = values[j] end
  end
end
`;

/**
 * A read that first checks the transaction's earlier reads, so that all of its reads are one
 * state as of this one (no check round trip is needed after the last read).
 *
 * KEYS: the index, the `nr` value keys read so far, then for a `g` read the value keys to get.
 * ARGV: nr, number of scans, the operation (`g` get, `r` range with values, `k` range keys only),
 * the value keys' prefix (`T v`), min, max and limit (-1: all) of a range (ignored by `g`), then
 * the read set as {@linkcode CHECK_LUA} takes it. Returns `{0}` when an earlier read changed,
 * else `{1, values...}` for `g` (nil for a missing key) or `{1, members..., values...}` for `r`
 * and `{1, members...}` for `k`.
 */
export const READ_LUA = CHECK_LUA + `
local nr, ns = tonumber(ARGV[1]), tonumber(ARGV[2])
if check(nr, ns, 2, 8) == nil then return {0} end
local op = ARGV[3]
if op == 'g' then
  local out = {1}
  mget(KEYS, 2 + nr, #KEYS, out, 2)
  return out
end
local limit = tonumber(ARGV[7])
local members
if limit < 0 then
  members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[5], ARGV[6])
else
  members = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[5], ARGV[6], 'LIMIT', 0, limit)
end
local n = #members
local out = {1}
for i = 1, n do out[i + 1] = members[i] end
if op == 'k' then return out end
local keys = {}
for i = 1, n do keys[i] = ARGV[4] .. members[i] end
mget(keys, 1, n, out, n + 2)
return out
`;

/**
 * Checks a transaction's reads and applies its writes, atomically.
 *
 * KEYS: the index, the marker, the receipt key, then the `nr` value keys read, then the `nw`
 * value keys written. ARGV: nr, number of scans, nw, the marker's value (or "" to leave it), the
 * receipt's value, the commit's token ("" for none), the length of `T v`, then the read set as
 * {@linkcode CHECK_LUA} takes it, then per written key its stored value ("" to delete). Returns 1
 * when committed, 0 when a read changed, -1 when the marker is gone (the volume was lost: the
 * database was flushed, or Redis restarted without persistence).
 */
export const COMMIT_LUA = CHECK_LUA + `
local nr, ns, nw = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local a = check(nr, ns, 4, 7)
if a == nil then return 0 end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[2], ARGV[4], 'NX')
elseif redis.call('EXISTS', KEYS[2]) == 0 then
  return -1
end
local skip = tonumber(ARGV[6]) + 1
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
