-- Included by outbox_take.lua and outbox_settle.lua (needs now.lua): take_ready(...) leases the oldest
-- ready batch when it is full or its first event waited `period`.
-- Keys: the queue of the release before, ready, open, batch data, outbox batches, stats.
-- Returns -1 when events of the release before wait (legacy_take.lua takes those first), false when no
-- batch is due, else {batch id, its events' JSON, their digests, its segments}.
local function take_ready(legacy, ready, open, data, batches, stats, count, period, lease)
  if redis.call('ZCARD', legacy) > 0 then return -1 end
  local oldest = redis.call('ZRANGE', ready, 0, 0, 'WITHSCORES')
  if #oldest == 0 then return false end
  local id = oldest[1]
  local size = tonumber(redis.call('HGET', data, id .. ':c') or '0')
  if size < count and now - tonumber(oldest[2]) < period then return false end
  redis.call('ZREM', ready, id)
  if redis.call('GET', open) == id then redis.call('DEL', open) end
  redis.call('HSET', data, id .. ':gen', 1, id .. ':attempt', 1)
  redis.call('ZADD', batches, now + lease, id)
  redis.call('HINCRBY', stats, 'queued', -size)
  local got = redis.call('HMGET', data, id, id .. ':d', id .. ':g')
  return {id, got[1], got[2], got[3]}
end
