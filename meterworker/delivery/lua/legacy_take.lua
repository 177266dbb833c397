-- The outbox of the release before (one entry per event). A new batch of the oldest `count` events when
-- that many wait, or fewer when the oldest waited `period`.
-- KEYS: outbox queue, outbox pending, outbox batches, the new batch, its members.
-- ARGV: count, period, lease, batch id.
-- Returns {generation 1, attempt 1, false, event keys, payloads}, or false when no batch is due.
-- include now.lua
-- include payloads.lua
local size = redis.call('ZCARD', KEYS[1])
if size == 0 then return false end
if size < tonumber(ARGV[1]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if now - tonumber(oldest[2]) < tonumber(ARGV[2]) then return false end
end
local keys = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
for i = 1, #keys, 500 do
  local part = {unpack(keys, i, math.min(i + 499, #keys))}
  redis.call('ZREM', KEYS[1], unpack(part))
  redis.call('SADD', KEYS[5], unpack(part))
end
redis.call('HSET', KEYS[4], 'gen', 1, 'attempt', 1)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[4])
return {1, 1, false, keys, payloads_of(KEYS[2], keys)}
