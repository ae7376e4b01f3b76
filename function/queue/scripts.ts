/**
 * The queue's Lua scripts, run through ioredis `defineCommand` (EVALSHA, EVAL on NOSCRIPT). Each
 * script declares every key it touches in KEYS, and all of them belong to one queue's key family,
 * so each runs on a single Redis Cluster slot. Times come from the Redis server (`TIME`), so
 * replicas with skewed clocks agree on leases.
 *
 * Invariant in list mode: an item is in exactly one place at a time: the queue, one consumer's
 * processing list (moved there by BLMOVE, no id yet), or the `items` hash under its id with that id
 * in one consumer's `claims` set. Every move between places is one atomic script, so an item is
 * never lost, and an item that has been sent under an id keeps that id (only never-sent items go
 * back to the queue, on shutdown, see RELEASE).
 */
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from './connection.ts';

const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * claim: first acknowledges the given delivered ids (acks riding along, as in ACK), then stamps up
 * to `count` items: first any the consumer moved with BLMOVE and has not stamped yet (oldest
 * first), then straight from the queue. The n-th item of the call gets the id `prefix` followed by
 * n as four hex digits (the bridge sends a fresh random UUIDv7 prefix per call).
 *
 * A call is idempotent per prefix. When its reply is lost (the connection drops after the script
 * ran), the same call comes again: ioredis resends it after reconnecting, or the bridge repeats the
 * prefix after an error. If `prefix` has already stamped items, the call stamps nothing new and
 * returns that batch again, the items this consumer still holds under it, in order. Without this
 * the repeat would stamp the next items with the same ids and overwrite the first batch in `items`.
 * KEYS: queue, processing, items, claims, attempts.
 * ARGV: pop command for the queue (LPOP/RPOP), number of acks n, n delivered ids, prefix, count.
 * Returns the items in order; the n-th (from 0) has the id prefix .. ('%04x'):format(n).
 */
const CLAIM = `
local acks = tonumber(ARGV[2])
if acks > 0 then
  redis.call('HDEL', KEYS[3], unpack(ARGV, 3, 2 + acks))
  redis.call('HDEL', KEYS[5], unpack(ARGV, 3, 2 + acks))
  redis.call('SREM', KEYS[4], unpack(ARGV, 3, 2 + acks))
end
local prefix = ARGV[3 + acks]
local want = tonumber(ARGV[4 + acks])
local items = {}
if redis.call('HEXISTS', KEYS[3], prefix .. '0000') == 1 then
  for i = 0, want - 1 do
    local id = prefix .. string.format('%04x', i)
    if redis.call('SISMEMBER', KEYS[4], id) == 0 then break end
    local item = redis.call('HGET', KEYS[3], id)
    if not item then break end
    items[#items + 1] = item
  end
  return items
end
if redis.call('LLEN', KEYS[2]) > 0 then
  while #items < want do
    local item = redis.call('RPOP', KEYS[2])
    if not item then break end
    items[#items + 1] = item
  end
end
if #items < want then
  local popped = redis.call(ARGV[1], KEYS[1], want - #items)
  if popped then
    for _, item in ipairs(popped) do items[#items + 1] = item end
  end
end
if #items == 0 then return {} end
local fields, ids = {}, {}
for i, item in ipairs(items) do
  local id = prefix .. string.format('%04x', i - 1)
  ids[i] = id
  fields[#fields + 1] = id
  fields[#fields + 1] = item
end
redis.call('HSET', KEYS[3], unpack(fields))
redis.call('SADD', KEYS[4], unpack(ids))
return items
`;

/**
 * own: the claims a consumer already holds (its previous life, same name), with their attempts.
 * KEYS: claims, items, attempts. Returns id, item, attempts, ...
 */
const OWN = `
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local item = redis.call('HGET', KEYS[2], id)
  if item then
    out[#out + 1] = id
    out[#out + 1] = item
    out[#out + 1] = redis.call('HGET', KEYS[3], id) or '0'
  else
    redis.call('SREM', KEYS[1], id)
  end
end
return out
`;

/**
 * lease: renews this consumer's lease and lists other consumers whose lease has expired.
 * KEYS: consumers. ARGV: consumer, lease ms. Returns expired consumer names (at most 100).
 */
const LEASE = `${NOW_MS}
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
local out = {}
for _, c in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now), 'LIMIT', 0, 100)) do
  if c ~= ARGV[1] then out[#out + 1] = c end
end
return out
`;

/**
 * adopt: takes over a consumer whose lease has expired. Its unstamped items go back to the head of
 * the queue (they have no id yet); its claims move, ids unchanged, to the adopting consumer.
 *
 * The adopter's note in `adopted` (field: the adopter; value: the dead consumer and the ids moved)
 * lets a repeat of the call (its reply was lost and ioredis resent it) find the lease gone and
 * return those claims again, instead of nothing, which would leave them unsent under a live
 * consumer's name until it restarts. The adopter removes its note once the reply arrives; a note
 * whose adopter died first goes when that adopter is adopted in turn (its claims, adopted ones
 * too, move on then).
 * KEYS: consumers, processing(dead), claims(dead), claims(me), queue, items, attempts, adopted.
 * ARGV: dead consumer, queue end to push back to (LEFT/RIGHT: the end the bridge takes from), me.
 * Returns nil if the lease is alive, else id, item, attempts, ...
 */
const ADOPT = `${NOW_MS}
local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
if lease and tonumber(lease) > now then return false end
local out = {}
local function give(id)
  local item = redis.call('HGET', KEYS[6], id)
  if item then
    redis.call('SADD', KEYS[4], id)
    out[#out + 1] = id
    out[#out + 1] = item
    out[#out + 1] = redis.call('HGET', KEYS[7], id) or '0'
  end
end
if not lease then
  local note = redis.call('HGET', KEYS[8], ARGV[3])
  if note then
    local first, ours = true, false
    for token in string.gmatch(note, '%S+') do
      if first then
        ours, first = token == ARGV[1], false
      elseif ours and redis.call('SISMEMBER', KEYS[4], token) == 1 then
        give(token)
      end
    end
  end
end
while redis.call('LMOVE', KEYS[2], KEYS[5], 'LEFT', ARGV[2]) do end
local moved = redis.call('SMEMBERS', KEYS[3])
for _, id in ipairs(moved) do give(id) end
if #moved > 0 then redis.call('HSET', KEYS[8], ARGV[3], ARGV[1] .. ' ' .. table.concat(moved, ' ')) end
redis.call('HDEL', KEYS[8], ARGV[1])
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return out
`;

/**
 * ack: the sink took these items; they leave Redis. Works whoever holds the claims now.
 * KEYS: items, attempts, claims. ARGV: ids (at most a few hundred). Returns how many were there.
 */
const ACK = `
local n = redis.call('HDEL', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
redis.call('SREM', KEYS[3], unpack(ARGV))
return n
`;

/**
 * dead: moves a claimed item to the dead-letter stream with its id and the given fields; does
 * nothing if another holder already finished it.
 * KEYS: items, attempts, claims, dead-letter. ARGV: id, field, value, ... Returns 1 if moved.
 */
const DEAD = `
local item = redis.call('HGET', KEYS[1], ARGV[1])
if not item then return 0 end
local args = {'XADD', KEYS[4], '*', 'id', ARGV[1], 'item', item}
for i = 2, #ARGV do args[#args + 1] = ARGV[i] end
redis.call(unpack(args))
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
`;

/**
 * attempt: records failed attempts of a claimed item, unless it is already gone.
 * KEYS: items, attempts. ARGV: id, attempts.
 */
const ATTEMPT = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`;

/**
 * release: on shutdown, unstamped items go back to the head of the queue, and so do items this
 * consumer stamped but never sent, without their ids (no one has seen those ids); other claims stay
 * under their ids and the lease is expired so another replica adopts them now; a consumer holding
 * nothing leaves the lease table.
 * KEYS: consumers, processing, queue, claims, items.
 * ARGV: consumer, queue end to push back to (LEFT/RIGHT), never-sent ids (newest first)...
 * Returns the number of claims left for adoption.
 */
const RELEASE = `
while redis.call('LMOVE', KEYS[2], KEYS[3], 'LEFT', ARGV[2]) do end
local push = ARGV[2] == 'RIGHT' and 'RPUSH' or 'LPUSH'
for i = 3, #ARGV do
  local item = redis.call('HGET', KEYS[5], ARGV[i])
  if item and redis.call('SREM', KEYS[4], ARGV[i]) == 1 then
    redis.call('HDEL', KEYS[5], ARGV[i])
    redis.call(push, KEYS[3], item)
  end
end
local held = redis.call('SCARD', KEYS[4])
if held == 0 then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], 0, ARGV[1]) end
return held
`;

/**
 * xack: acknowledges stream entries (and deletes them when asked).
 * KEYS: stream, attempts. ARGV: group, delete (1/0), ids... Returns XACK's count.
 */
const XACK = `
local ids = {unpack(ARGV, 3)}
local n = redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
if ARGV[2] == '1' then redis.call('XDEL', KEYS[1], unpack(ids)) end
redis.call('HDEL', KEYS[2], unpack(ids))
return n
`;

/**
 * xdead: moves a pending stream entry to the dead-letter stream; nothing if already acknowledged.
 * KEYS: stream, attempts, dead-letter. ARGV: group, id, delete (1/0), item, field, value, ...
 */
const XDEAD = `
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
if ARGV[3] == '1' then redis.call('XDEL', KEYS[1], ARGV[2]) end
redis.call('HDEL', KEYS[2], ARGV[2])
local args = {'XADD', KEYS[3], '*', 'id', ARGV[2], 'item', ARGV[4]}
for i = 5, #ARGV do args[#args + 1] = ARGV[i] end
redis.call(unpack(args))
return 1
`;

/**
 * xattempt: records failed attempts of a stream entry while it is still pending.
 * KEYS: stream, attempts. ARGV: group, id, attempts.
 */
const XATTEMPT = `
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
`;

/**
 * xtouch: for the listed entries still pending for this consumer, sets their idle time (0 renews
 * the lease; the lease length hands them back for XAUTOCLAIM by another replica now).
 * KEYS: stream. ARGV: group, consumer, idle ms, ids... Returns the ids still held.
 */
const XTOUCH = `
local claim = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], '0'}
for i = 4, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then claim[#claim + 1] = ARGV[i] end
end
if #claim == 5 then return {} end
claim[#claim + 1] = 'IDLE'
claim[#claim + 1] = ARGV[3]
claim[#claim + 1] = 'JUSTID'
return redis.call(unpack(claim))
`;

/**
 * xleave: on shutdown, hands every entry still pending for this consumer back (idle = lease), or
 * removes the consumer from the group when it holds nothing. The group itself is never touched.
 * KEYS: stream. ARGV: group, consumer, idle ms. Returns the number handed back.
 */
const XLEAVE = `
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1000, ARGV[2])
if #pending == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
  return 0
end
local claim = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], '0'}
for _, p in ipairs(pending) do claim[#claim + 1] = p[1] end
claim[#claim + 1] = 'IDLE'
claim[#claim + 1] = ARGV[3]
claim[#claim + 1] = 'JUSTID'
redis.call(unpack(claim))
return #pending
`;

/**
 * xprune: removes other consumers of the group that hold nothing and have been idle longer than
 * the given time (pods that are gone). KEYS: stream. ARGV: group, consumer, idle ms.
 */
const XPRUNE = `
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['name'] ~= ARGV[2] and tonumber(info['pending']) == 0 and tonumber(info['idle']) > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed = removed + 1
  end
end
return removed
`;

type Arg = string | Buffer | number;
type ScriptCall = (...args: Arg[]) => Promise<unknown>;

function define(client: RedisClient, name: string, keys: number, lua: string): ScriptCall {
  client.defineCommand(name, { numberOfKeys: keys, lua });
  // defineCommand adds `<name>Buffer`, which returns bulk replies as Buffers (items are bytes).
  const fn = (client as unknown as Record<string, ScriptCall>)[`${name}Buffer`];
  if (!fn) throw new Error(`ioredis did not define ${name}Buffer`);
  return fn.bind(client);
}

/** The scripts, bound to one client. Replies are raw (Buffers); the sources decode them. */
export interface Scripts {
  claim: ScriptCall;
  /** A pipeline that starts with the claim script, for commands that must follow it on its connection. */
  claimPipeline(args: (string | number)[]): ChainableCommander;
  own: ScriptCall;
  lease: ScriptCall;
  adopt: ScriptCall;
  ack: ScriptCall;
  dead: ScriptCall;
  attempt: ScriptCall;
  release: ScriptCall;
  xack: ScriptCall;
  xdead: ScriptCall;
  xattempt: ScriptCall;
  xtouch: ScriptCall;
  xleave: ScriptCall;
  xprune: ScriptCall;
}

export function defineScripts(client: RedisClient): Scripts {
  return {
    claim: define(client, 'jobRobotClaim', 5, CLAIM),
    claimPipeline: (args) => (client.pipeline() as unknown as Record<string, (...a: (string | number)[]) => ChainableCommander>)['jobRobotClaimBuffer']!(...args),
    own: define(client, 'jobRobotOwn', 3, OWN),
    lease: define(client, 'jobRobotLease', 1, LEASE),
    adopt: define(client, 'jobRobotAdopt', 8, ADOPT),
    ack: define(client, 'jobRobotAck', 3, ACK),
    dead: define(client, 'jobRobotDead', 4, DEAD),
    attempt: define(client, 'jobRobotAttempt', 2, ATTEMPT),
    release: define(client, 'jobRobotRelease', 5, RELEASE),
    xack: define(client, 'jobRobotXAck', 2, XACK),
    xdead: define(client, 'jobRobotXDead', 3, XDEAD),
    xattempt: define(client, 'jobRobotXAttempt', 2, XATTEMPT),
    xtouch: define(client, 'jobRobotXTouch', 1, XTOUCH),
    xleave: define(client, 'jobRobotXLeave', 1, XLEAVE),
    xprune: define(client, 'jobRobotXPrune', 1, XPRUNE),
  };
}
