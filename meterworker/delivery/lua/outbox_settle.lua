-- Events of a taken batch are settled: delivered (marked so), dead-lettered (with their entries), or
-- let go. Each event counts once however often it is settled: the tick logs and the batch count down
-- only the events not settled before.
-- KEYS: outbox batches, batch data, stats, dead-letter entries, dead-letter index, the queue of the
-- release before, ready, open, then the marks hash and the tick log of each group (a query's tick).
-- ARGV: mode ("delivered", "dead" or "gone"), mark ttl (seconds), batch id, generation, number of groups
-- G, then count, period and lease to take the next ready batch when this one is done (count 0: don't),
-- the marks field and packed digests of each group in turn, then id, JSON and time of each dead-letter
-- entry.
-- Returns {1, the next batch as take.lua returns it} when that settled the batch's last events and the
-- hand-out is current (the batch is then done too, as outbox_finish.lua does), else {0}.
-- include now.lua
-- include marks.lua
-- include take.lua
local mode, ttl, id = ARGV[1], ARGV[2], ARGV[3]
local data = KEYS[2]
local groups = tonumber(ARGV[5])
local K, A = 8, 8  -- the KEYS and ARGV before the groups'
local exists = redis.call('HEXISTS', data, id .. ':c') == 1
local settled = exists and (redis.call('HGET', data, id .. ':s') or '') or ''
-- The digests of a group not settled before (all of them, most often: nothing of the batch was settled yet).
local seen = nil
local function fresh_of(blob)
  if settled == '' and groups == 1 then return blob end
  if not seen then
    seen = {}
    for i = 1, #settled, 8 do seen[string.sub(settled, i, i + 7)] = true end
  end
  local fresh = {}
  for i = 1, #blob, 8 do
    local d = string.sub(blob, i, i + 7)
    if not seen[d] then
      seen[d] = true
      fresh[#fresh + 1] = d
    end
  end
  return table.concat(fresh)
end
local fresh_all, total = {}, 0
for g = 1, groups do
  local field, blob = ARGV[A - 1 + 2 * g], ARGV[A + 2 * g]
  local packed = exists and fresh_of(blob) or ''
  if mode == 'delivered' then
    -- a batch that is gone was settled by another worker: what this one delivered is marked all the same
    local marks = exists and packed or blob
    if #marks > 0 then mark(KEYS[K - 1 + 2 * g], field, marks, ttl) end
  end
  local n = #packed / 8
  if n > 0 then
    fresh_all[#fresh_all + 1] = packed
    total = total + n
    local log = KEYS[K + 2 * g]
    if redis.call('HINCRBY', log, 'n', -n) <= 0 then
      redis.call('DEL', log)
    elseif mode == 'dead' then
      local x = redis.call('HINCRBY', log, 'x#', 1)
      redis.call('HSET', log, 'x:' .. x, packed)
    end
  end
end
if not exists then return {0} end
if mode == 'dead' then
  for i = A + 1 + 2 * groups, #ARGV, 3 do
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
    redis.call('ZADD', KEYS[5], ARGV[i + 2], ARGV[i])
  end
end
local left = tonumber(redis.call('HGET', data, id .. ':n')) - total
if total > 0 then
  redis.call('HINCRBY', KEYS[3], 'pending', -total)
  redis.call('HSET', data, id .. ':n', left)
end
local current = redis.call('HGET', data, id .. ':gen') == ARGV[4]
if total > 0 and not (left <= 0 and current) then
  redis.call('HSET', data, id .. ':s', settled .. table.concat(fresh_all))
end
if left <= 0 and current then
  redis.call('HDEL', data, id, id .. ':c', id .. ':n', id .. ':s', id .. ':gen', id .. ':attempt', id .. ':ff',
    id .. ':d', id .. ':g')
  redis.call('ZREM', KEYS[1], id)
  local count = tonumber(ARGV[6])
  if count > 0 then
    return {1, take_ready(KEYS[6], KEYS[7], KEYS[8], data, KEYS[1], KEYS[3], count, tonumber(ARGV[7]),
      tonumber(ARGV[8]))}
  end
  return {1}
end
return {0}
