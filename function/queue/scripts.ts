/**
 * The queue's Lua scripts, run through ioredis `defineCommand` (EVALSHA, EVAL on NOSCRIPT). Each
 * script declares every key it touches in KEYS, and all of them belong to one queue's key family,
 * so each runs on a single Redis Cluster slot. Times come from the Redis server (`TIME`), so
 * replicas with skewed clocks agree on leases.
 *
 * Invariant in list mode: an item is in exactly one place at a time: the queue, one consumer's
 * processing list (moved there by BLMOVE, no id yet), the `items` hash under its id with that id
 * in one consumer's `claims` set, or, at the end, the dead-letter stream. Every move between places
 * is one atomic script, so an item is never lost, and an item that has been sent under an id keeps
 * that id (only never-sent items go back to the queue, on shutdown, see RELEASE).
 *
 * Bounded input: no script hands the bridge an item longer than the limit it passes (MAX_ITEM_BYTES),
 * and a claim's items together stay within a byte budget. What is too long is measured here
 * (the popped string, HSTRLEN, the stream field) and moved to the dead-letter stream by the same
 * script, so the bridge's memory depends on its configuration, not on what producers push.
 */
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from './connection.ts';

const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * Results (function/queue/results.ts): `result(id, state, fields)` moves the record of `id` forward
 * to `state` and sets the given fields (field, value, ...); a record already at that rank or past it
 * is left alone (returns 0). A final state also appends one entry to the results stream. Each
 * script that includes this sets `results` first from four of its arguments (`useResults`): the
 * record key prefix, the results stream, the retention in seconds and the stream's cap. Keys built
 * from the prefix carry the queue family's hash tag, so they are on the script's slot.
 */
const RESULT = `
local results
local function useResults(i)
  results = {ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]}
end
local RANKS = {accepted = 0, created = 1, succeeded = 2, failed = 2, ['dead-lettered'] = 2}
local function result(id, state, fields)
  local key = results[1] .. id
  local now = redis.call('HGET', key, 'state')
  if now and RANKS[now] and RANKS[now] >= RANKS[state] then return 0 end
  local set = {'HSET', key, 'id', id, 'state', state}
  for i = 1, #fields do set[#set + 1] = fields[i] end
  redis.call(unpack(set))
  redis.call('EXPIRE', key, results[3])
  if RANKS[state] == 2 then
    local add = {'XADD', results[2], 'MAXLEN', '~', results[4], '*', 'id', id, 'state', state}
    for i = 1, #fields do add[#add + 1] = fields[i] end
    redis.call(unpack(add))
  end
  return 1
end
`;

/**
 * Writing a dead letter from inside a script, for what a claim must not hand to the bridge: an item
 * longer than the limit (`too-large`) and a pending stream entry whose content is gone (`trimmed`).
 * The record is the one function/queue/dead-letter.ts describes: id, item, reason, status 0,
 * attempts, time and source (the last two come from the bridge as arguments). `letters` collects
 * id, reason, size for the reply, so the bridge can log and count what it never saw.
 */
const BURY = `${RESULT}
local letters = {}
local function bury(key, id, item, kind, size, max, attempts, time, source)
  local reason
  if kind == 'too-large' then
    reason = 'too-large: ' .. size .. ' bytes, over the limit of ' .. max .. ' (MAX_ITEM_BYTES)'
  else
    reason = 'trimmed: the stream entry was deleted or trimmed before it was delivered; its content is gone'
  end
  redis.call('XADD', key, '*', 'id', id, 'item', item, 'reason', reason, 'status', '0', 'attempts', attempts, 'time', time, 'source', source)
  result(id, 'dead-lettered', {'reason', reason, 'finished', time, 'source', source})
  letters[#letters + 1] = id
  letters[#letters + 1] = kind
  letters[#letters + 1] = size
end
`;

/**
 * claim: first acknowledges the given delivered ids (acks riding along, as in ACK), then takes up
 * to `count` items, one at a time: first any the consumer moved with BLMOVE and has not stamped
 * yet (oldest first), then straight from the queue. Each item is measured here, in Redis:
 *
 * - longer than `max` bytes: moved whole to the dead-letter stream (`too-large`, its size and the
 *   limit), under an id of this call counting down from prefix..ffff; never returned;
 * - making the batch longer than `budget` bytes: put back where it came from, and the call ends
 *   (the first item always goes, it is at most `max`);
 * - otherwise stamped: the n-th stamped item of the call gets the id `prefix` followed by n as four
 *   hex digits (the bridge sends a fresh random UUIDv7 prefix per call).
 *
 * The call also ends once the bytes it moved (stamped or dead-lettered) reach `budget`, so one call
 * copies at most about `budget` plus one item inside Redis.
 *
 * A call is idempotent per prefix. When its reply is lost (the connection drops after the script
 * ran), the same call comes again: ioredis resends it after reconnecting, or the bridge repeats the
 * prefix after an error. The call notes its prefix in `last-claim` under the consumer; a call that
 * finds its own prefix there stamps nothing new and returns that batch again, the items this
 * consumer still holds under it, in order. Without this the repeat would stamp the next items with
 * the same ids and overwrite the first batch in `items`, or dead-letter other items under ids
 * already given.
 * KEYS: queue, processing, items, claims, attempts, dead-letter, last-claim.
 * ARGV: pop command for the queue (LPOP/RPOP), number of acks n, n delivered ids, prefix, count,
 * max, budget, consumer, time, source, and the four results arguments (see RESULT).
 * Returns {items, letters}: the stamped items in order (the n-th, from 0, has the id
 * prefix .. ('%04x'):format(n)), and id, reason, size of each item dead-lettered.
 */
const CLAIM = `${BURY}
local acks = tonumber(ARGV[2])
useResults(10 + acks)
if acks > 0 then
  redis.call('HDEL', KEYS[3], unpack(ARGV, 3, 2 + acks))
  redis.call('HDEL', KEYS[5], unpack(ARGV, 3, 2 + acks))
  redis.call('SREM', KEYS[4], unpack(ARGV, 3, 2 + acks))
end
local prefix = ARGV[3 + acks]
local want = tonumber(ARGV[4 + acks])
local max = tonumber(ARGV[5 + acks])
local budget = tonumber(ARGV[6 + acks])
local consumer, time, source = ARGV[7 + acks], ARGV[8 + acks], ARGV[9 + acks]
local items = {}
if redis.call('HGET', KEYS[7], consumer) == prefix then
  for i = 0, want - 1 do
    local id = prefix .. string.format('%04x', i)
    if redis.call('SISMEMBER', KEYS[4], id) == 0 then break end
    local item = redis.call('HGET', KEYS[3], id)
    if not item then break end
    items[#items + 1] = item
  end
  return {items, letters}
end
local putBack = ARGV[1] == 'RPOP' and 'RPUSH' or 'LPUSH'
local fromProcessing = redis.call('LLEN', KEYS[2]) > 0
local bytes, moved, buried = 0, 0, 0
while #items + buried < want and moved < budget do
  local item
  if fromProcessing then
    item = redis.call('RPOP', KEYS[2])
    if not item then fromProcessing = false end
  end
  if not item then item = redis.call(ARGV[1], KEYS[1]) end
  if not item then break end
  local size = #item
  if size > max then
    bury(KEYS[6], prefix .. string.format('%04x', 65535 - buried), item, 'too-large', size, max, '0', time, source)
    buried = buried + 1
  elseif #items > 0 and bytes + size > budget then
    if fromProcessing then redis.call('RPUSH', KEYS[2], item) else redis.call(putBack, KEYS[1], item) end
    break
  else
    items[#items + 1] = item
    bytes = bytes + size
  end
  moved = moved + size
end
if #items > 0 then
  local fields, ids = {}, {}
  for i, item in ipairs(items) do
    local id = prefix .. string.format('%04x', i - 1)
    ids[i] = id
    fields[#fields + 1] = id
    fields[#fields + 1] = item
  end
  redis.call('HSET', KEYS[3], unpack(fields))
  redis.call('SADD', KEYS[4], unpack(ids))
end
if #items + buried > 0 then redis.call('HSET', KEYS[7], consumer, prefix) end
return {items, letters}
`;

/**
 * Measuring a claim already stamped (held in `items`) before it is handed over again: one longer
 * than `max` (stamped before the limit existed, or under a larger one) is dead-lettered with its
 * attempts and leaves `items`, `attempts` and the given claims set. HSTRLEN measures without
 * loading the item.
 */
const HELD = `
local function oversized(items, attempts, claims, deadLetter, id, max, time, source)
  local size = redis.call('HSTRLEN', items, id)
  if size <= max then return false end
  local item = redis.call('HGET', items, id)
  bury(deadLetter, id, item, 'too-large', size, max, redis.call('HGET', attempts, id) or '0', time, source)
  redis.call('HDEL', items, id)
  redis.call('HDEL', attempts, id)
  redis.call('SREM', claims, id)
  return true
end
`;

/**
 * own: the claims a consumer already holds (its previous life, same name), with their attempts;
 * one over `max` is dead-lettered instead (see HELD). Its adoption note from that life goes too
 * (see ADOPT): the claims it names are among these, and no repeat of that life's calls can come now.
 * KEYS: claims, items, attempts, dead-letter, adopted. ARGV: max, time, source, the four results
 * arguments, consumer.
 * Returns {id, item, attempts, ..., letters}.
 */
const OWN = `${BURY}${HELD}
useResults(4)
redis.call('HDEL', KEYS[5], ARGV[8])
local max = tonumber(ARGV[1])
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not oversized(KEYS[2], KEYS[3], KEYS[1], KEYS[4], id, max, ARGV[2], ARGV[3]) then
    local item = redis.call('HGET', KEYS[2], id)
    if item then
      out[#out + 1] = id
      out[#out + 1] = item
      out[#out + 1] = redis.call('HGET', KEYS[3], id) or '0'
    else
      redis.call('SREM', KEYS[1], id)
    end
  end
end
return {out, letters}
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
 * whose adopter died first goes when that adopter restarts under its name (OWN) or is adopted in
 * turn (its claims, adopted ones too, move on then).
 * A claim over `max` is dead-lettered instead of given (see HELD).
 * KEYS: consumers, processing(dead), claims(dead), claims(me), queue, items, attempts, adopted,
 * dead-letter, last-claim.
 * ARGV: dead consumer, queue end to push back to (LEFT/RIGHT: the end the bridge takes from), me,
 * max, time, source, the four results arguments.
 * Returns nil if the lease is alive, else {id, item, attempts, ..., letters}.
 */
const ADOPT = `${NOW_MS}${BURY}${HELD}
useResults(7)
local lease = redis.call('ZSCORE', KEYS[1], ARGV[1])
if lease and tonumber(lease) > now then return false end
local max = tonumber(ARGV[4])
local out = {}
local function give(id)
  if oversized(KEYS[6], KEYS[7], KEYS[4], KEYS[9], id, max, ARGV[5], ARGV[6]) then return end
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
redis.call('HDEL', KEYS[10], ARGV[1])
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
return {out, letters}
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
 * The result of a dead letter, from its note's fields (field, value, ... from ARGV[first] on):
 * `dead-lettered` with the reason, the time and the source.
 */
const LETTER_RESULT = `
local function letterResult(id, first)
  local note = {}
  for i = first, #ARGV - 1, 2 do note[ARGV[i]] = ARGV[i + 1] end
  result(id, 'dead-lettered', {'reason', note['reason'] or '', 'finished', note['time'] or '', 'source', note['source'] or ''})
end
`;

/**
 * dead: moves a claimed item to the dead-letter stream under its event id with the given fields,
 * and records its result; does nothing if another holder already finished it.
 * KEYS: items, attempts, claims, dead-letter. ARGV: claim id, event id, the four results arguments,
 * field, value, ... Returns 1 if moved.
 */
const DEAD = `${RESULT}${LETTER_RESULT}
useResults(3)
local item = redis.call('HGET', KEYS[1], ARGV[1])
if not item then return 0 end
local args = {'XADD', KEYS[4], '*', 'id', ARGV[2], 'item', item}
for i = 7, #ARGV do args[#args + 1] = ARGV[i] end
redis.call(unpack(args))
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
letterResult(ARGV[2], 7)
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
 * consumer stamped but never sent, without their ids (no one has seen those ids), and without the
 * reservation of their producer id, if they had one (RESERVE), so they pass again when claimed anew;
 * other claims stay under their ids and the lease is expired so another replica adopts them now; a
 * consumer holding nothing leaves the lease table.
 * KEYS: consumers, processing, queue, claims, items, last-claim.
 * ARGV: consumer, queue end to push back to (LEFT/RIGHT), result record prefix, then per never-sent
 * claim (newest first): its id and its producer id ('' for none).
 * Returns the number of claims left for adoption.
 */
const RELEASE = `
while redis.call('LMOVE', KEYS[2], KEYS[3], 'LEFT', ARGV[2]) do end
redis.call('HDEL', KEYS[6], ARGV[1])
local push = ARGV[2] == 'RIGHT' and 'RPUSH' or 'LPUSH'
for i = 4, #ARGV - 1, 2 do
  local claim, id = ARGV[i], ARGV[i + 1]
  local item = redis.call('HGET', KEYS[5], claim)
  if item and redis.call('SREM', KEYS[4], claim) == 1 then
    redis.call('HDEL', KEYS[5], claim)
    redis.call(push, KEYS[3], item)
    if id ~= '' then
      local record = ARGV[3] .. id
      if redis.call('HGET', record, 'claim') == claim and redis.call('HGET', record, 'state') == 'accepted' then
        redis.call('DEL', record)
      end
    end
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
 * xdead: moves a pending stream entry to the dead-letter stream and records its result; nothing if
 * already acknowledged.
 * KEYS: stream, attempts, dead-letter. ARGV: group, id, delete (1/0), item, the four results
 * arguments, field, value, ...
 */
const XDEAD = `${RESULT}${LETTER_RESULT}
useResults(5)
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
if ARGV[3] == '1' then redis.call('XDEL', KEYS[1], ARGV[2]) end
redis.call('HDEL', KEYS[2], ARGV[2])
local args = {'XADD', KEYS[3], '*', 'id', ARGV[2], 'item', ARGV[4]}
for i = 9, #ARGV do args[#args + 1] = ARGV[i] end
redis.call(unpack(args))
letterResult(ARGV[2], 9)
return 1
`;

/**
 * Measuring stream entries. An entry's size is the length of its item field, or, without that
 * field, of all its field names and values (the bridge then sends them as one JSON object, and
 * measures that again). `settle` handles one entry this consumer holds pending: its content gone,
 * it is dead-lettered `trimmed` (empty item); over `max`, `too-large` (the item field, or the
 * fields as a JSON object); either way it is acknowledged (and XDEL'd when asked) and returns nil.
 * Otherwise it returns the entry's size.
 */
const ENTRY = `
local function sizeOf(fields, field)
  local total = 0
  for i = 1, #fields, 2 do
    if fields[i] == field then return #fields[i + 1] end
    total = total + #fields[i] + #fields[i + 1]
  end
  return total
end
local function wholeItem(fields, field)
  local parts = {}
  for i = 1, #fields, 2 do
    if fields[i] == field then return fields[i + 1] end
    parts[#parts + 1] = cjson.encode(fields[i]) .. ':' .. cjson.encode(fields[i + 1])
  end
  return '{' .. table.concat(parts, ',') .. '}'
end
local function settle(stream, attempts, deadLetter, group, id, fields, field, max, delete, time, source)
  local size = fields and sizeOf(fields, field) or 0
  if fields and size <= max then return size end
  local tries = redis.call('HGET', attempts, id) or '0'
  redis.call('XACK', stream, group, id)
  redis.call('HDEL', attempts, id)
  if fields then
    bury(deadLetter, id, wholeItem(fields, field), 'too-large', size, max, tries, time, source)
    if delete == '1' then redis.call('XDEL', stream, id) end
  else
    bury(deadLetter, id, '', 'trimmed', 0, max, tries, time, source)
  end
  return nil
end
local function fieldsOf(stream, id)
  local e = redis.call('XRANGE', stream, id, id)
  return e[1] and e[1][2] or nil
end
`;

const XTAKE = `${BURY}${ENTRY}
useResults(10)
local group, consumer, want, max, budget = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local field, delete, time, source = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local out = {}
if ARGV[14] ~= '' then
  local fields = fieldsOf(KEYS[1], ARGV[14])
  if settle(KEYS[1], KEYS[2], KEYS[3], group, ARGV[14], fields, field, max, delete, time, source) then
    out[1] = ARGV[14]
    out[2] = fields
  end
  return {out, letters}
end
local bytes, moved, last = 0, 0, nil
while #out / 2 + #letters / 3 < want and moved < budget do
  if last and #out > 0 then
    local next = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1)[1]
    if not next then break end
    local size = sizeOf(next[2], field)
    if size <= max and bytes + size > budget then break end
  end
  local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', KEYS[1], '>')
  local entry = read and read[1][2][1]
  if not entry then break end
  last = entry[1]
  local size = settle(KEYS[1], KEYS[2], KEYS[3], group, last, entry[2], field, max, delete, time, source)
  if size then
    out[#out + 1] = last
    out[#out + 1] = entry[2]
    bytes = bytes + size
    moved = moved + size
  else
    moved = moved + sizeOf(entry[2], field)
  end
end
return {out, letters}
`;

/**
 * xown: after a restart, the entries still pending for this consumer after `after` (exclusive; '-'
 * for the start), up to `count` of them, with their attempts; each one settled first (see ENTRY).
 * The ones handed over are XCLAIMed to this consumer again, which resets their idle time, so no
 * other replica adopts them while this one sends them.
 * KEYS: stream, attempts, dead-letter. ARGV: group, consumer, after, count, max, field, delete, time,
 * source, the four results arguments.
 * Returns {id, fields, attempts, ..., letters, examined, last examined id}.
 */
const XOWN = `${BURY}${ENTRY}
useResults(10)
local group, consumer, max, field, delete, time, source = ARGV[1], ARGV[2], tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local start = ARGV[3] == '-' and '-' or '(' .. ARGV[3]
local pending = redis.call('XPENDING', KEYS[1], group, start, '+', tonumber(ARGV[4]), consumer)
local out, kept = {}, {'XCLAIM', KEYS[1], group, consumer, 0}
for _, p in ipairs(pending) do
  local fields = fieldsOf(KEYS[1], p[1])
  if settle(KEYS[1], KEYS[2], KEYS[3], group, p[1], fields, field, max, delete, time, source) then
    out[#out + 1] = p[1]
    out[#out + 1] = fields
    out[#out + 1] = redis.call('HGET', KEYS[2], p[1]) or '0'
    kept[#kept + 1] = p[1]
  end
end
if #kept > 5 then
  kept[#kept + 1] = 'JUSTID'
  redis.call(unpack(kept))
end
local last = pending[#pending] and pending[#pending][1] or ARGV[3]
return {out, letters, #pending, last}
`;

/**
 * xadopt: XAUTOCLAIM of entries idle longer than the lease (a dead consumer's), ids only, then each
 * settled here (see ENTRY); entries Redis reports as deleted are dead-lettered `trimmed`. Taken
 * entries stop before one that would make the batch longer than `budget` bytes (the first always
 * goes): that one and the rest are handed back idle (IDLE = lease) for the next sweep, which starts
 * at it.
 * KEYS: stream, attempts, dead-letter.
 * ARGV: group, consumer, lease ms, cursor, count, max, budget, field, delete, time, source, the four
 * results arguments.
 * Returns {next cursor, {id, fields, attempts, ...}, letters}.
 */
const XADOPT = `${BURY}${ENTRY}
useResults(12)
local group, consumer, lease, max, budget = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[6]), tonumber(ARGV[7])
local field, delete, time, source = ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local claimed = redis.call('XAUTOCLAIM', KEYS[1], group, consumer, lease, ARGV[4], 'COUNT', tonumber(ARGV[5]), 'JUSTID')
local cursor = claimed[1]
for _, id in ipairs(claimed[3] or {}) do
  settle(KEYS[1], KEYS[2], KEYS[3], group, id, nil, field, max, delete, time, source)
end
local out, bytes, back = {}, 0, nil
for _, id in ipairs(claimed[2]) do
  if back then
    back[#back + 1] = id
  else
    local fields = fieldsOf(KEYS[1], id)
    local size = settle(KEYS[1], KEYS[2], KEYS[3], group, id, fields, field, max, delete, time, source)
    if size and #out > 0 and bytes + size > budget then
      back = {'XCLAIM', KEYS[1], group, consumer, 0, id}
      cursor = id
    elseif size then
      out[#out + 1] = id
      out[#out + 1] = fields
      out[#out + 1] = redis.call('HGET', KEYS[2], id) or '0'
      bytes = bytes + size
    end
  end
end
if back then
  back[#back + 1] = 'IDLE'
  back[#back + 1] = lease
  back[#back + 1] = 'JUSTID'
  redis.call(unpack(back))
end
return {cursor, out, letters}
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

/**
 * record: moves one result forward (see RESULT). KEYS: the record (declared, so a cluster client
 * routes the call to its slot). ARGV: the four results arguments, id, state, field, value, ...
 * Returns 1 if the record changed.
 */
const RECORD = `${RESULT}
useResults(1)
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
return result(ARGV[5], ARGV[6], fields)
`;

/**
 * letter: appends one dead letter (from the dead-letter sink) and records its result, in one step.
 * KEYS: dead-letter. ARGV: the four results arguments, field, value, ... (the whole record, `id` and
 * `item` first). Returns the entry's id.
 */
const LETTER = `${RESULT}${LETTER_RESULT}
useResults(1)
local args = {'XADD', KEYS[1], '*'}
for i = 5, #ARGV do args[#args + 1] = ARGV[i] end
local entry = redis.call(unpack(args))
letterResult(ARGV[6], 5)
return entry
`;

/**
 * reserve: list mode with producer ids (ID_FIELD). Each claimed item's producer id is taken for its
 * claim: a record in state `accepted` naming the claim, unless the id already has a record. A
 * record naming this same claim is this item's own (a restart or a repeated call), so it passes
 * again. Any other record means the id is in flight or done under another item: that item is a
 * duplicate and goes to the dead-letter stream under the producer id (reason `duplicate-id`,
 * field `duplicate_of`: the state found), and leaves the claim without touching the record.
 * KEYS: items, attempts, claims, dead-letter.
 * ARGV: time, source, the four results arguments, then claim id, producer id, ... per item.
 * Returns per item '' (go) or the state that made it a duplicate.
 */
const RESERVE = `${RESULT}
useResults(3)
local time, source = ARGV[1], ARGV[2]
local out = {}
for i = 7, #ARGV - 1, 2 do
  local claim, id = ARGV[i], ARGV[i + 1]
  local key = results[1] .. id
  local state = redis.call('HGET', key, 'state')
  if not state then
    redis.call('HSET', key, 'id', id, 'state', 'accepted', 'claim', claim, 'accepted', time, 'source', source)
    redis.call('EXPIRE', key, results[3])
    out[#out + 1] = ''
  elseif redis.call('HGET', key, 'claim') == claim then
    out[#out + 1] = ''
  else
    local item = redis.call('HGET', KEYS[1], claim)
    if item then
      local reason = 'duplicate-id: the id ' .. id .. ' is already ' .. state .. ' under another item'
      redis.call('XADD', KEYS[4], '*', 'id', id, 'item', item, 'reason', reason, 'status', '0',
        'attempts', redis.call('HGET', KEYS[2], claim) or '0', 'time', time, 'source', source, 'duplicate_of', state)
      redis.call('HDEL', KEYS[1], claim)
      redis.call('HDEL', KEYS[2], claim)
      redis.call('SREM', KEYS[3], claim)
    end
    out[#out + 1] = state
  end
end
return out
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

/** Queues a defined script on a pipeline (ioredis gives pipelines the client's defined commands). */
function queued(pipeline: ChainableCommander, name: string, args: Arg[]): void {
  const fn = (pipeline as unknown as Record<string, (...a: Arg[]) => ChainableCommander>)[name];
  if (!fn) throw new Error(`ioredis did not define ${name} on the pipeline`);
  fn.apply(pipeline, args);
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
  xtake: ScriptCall;
  xown: ScriptCall;
  xadopt: ScriptCall;
  xattempt: ScriptCall;
  xtouch: ScriptCall;
  xleave: ScriptCall;
  xprune: ScriptCall;
  record: ScriptCall;
  /** The record script, queued on `pipeline` (one round trip for many records). */
  recordIn(pipeline: ChainableCommander, ...args: Arg[]): void;
  letter: ScriptCall;
  letterIn(pipeline: ChainableCommander, ...args: Arg[]): void;
  reserve: ScriptCall;
}

/** The scripts defined on each client so far: defining them once per client, not per caller or per call. */
const defined = new WeakMap<RedisClient, Scripts>();

/**
 * The scripts, defined on `client` the first time it is asked for (each definition hashes its Lua),
 * then the same object for every caller: the sources, the results and the dead-letter writers.
 */
export function defineScripts(client: RedisClient): Scripts {
  let scripts = defined.get(client);
  if (!scripts) {
    scripts = defineAll(client);
    defined.set(client, scripts);
  }
  return scripts;
}

function defineAll(client: RedisClient): Scripts {
  return {
    claim: define(client, 'jobRobotClaim', 7, CLAIM),
    claimPipeline: (args) => (client.pipeline() as unknown as Record<string, (...a: (string | number)[]) => ChainableCommander>)['jobRobotClaimBuffer']!(...args),
    own: define(client, 'jobRobotOwn', 5, OWN),
    lease: define(client, 'jobRobotLease', 1, LEASE),
    adopt: define(client, 'jobRobotAdopt', 10, ADOPT),
    ack: define(client, 'jobRobotAck', 3, ACK),
    dead: define(client, 'jobRobotDead', 4, DEAD),
    attempt: define(client, 'jobRobotAttempt', 2, ATTEMPT),
    release: define(client, 'jobRobotRelease', 6, RELEASE),
    xack: define(client, 'jobRobotXAck', 2, XACK),
    xdead: define(client, 'jobRobotXDead', 3, XDEAD),
    xtake: define(client, 'jobRobotXTake', 3, XTAKE),
    xown: define(client, 'jobRobotXOwn', 3, XOWN),
    xadopt: define(client, 'jobRobotXAdopt', 3, XADOPT),
    xattempt: define(client, 'jobRobotXAttempt', 2, XATTEMPT),
    xtouch: define(client, 'jobRobotXTouch', 1, XTOUCH),
    xleave: define(client, 'jobRobotXLeave', 1, XLEAVE),
    xprune: define(client, 'jobRobotXPrune', 1, XPRUNE),
    record: define(client, 'jobRobotRecord', 1, RECORD),
    recordIn: (pipeline, ...args) => queued(pipeline, 'jobRobotRecord', args),
    letter: define(client, 'jobRobotLetter', 1, LETTER),
    letterIn: (pipeline, ...args) => queued(pipeline, 'jobRobotLetter', args),
    reserve: define(client, 'jobRobotReserve', 4, RESERVE),
  };
}
