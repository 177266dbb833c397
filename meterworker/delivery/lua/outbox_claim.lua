-- Lease a batch whose lease ran out (or whose retry is due) to whoever sends it on; a batch of either
-- layout (one value in the batch data, or the release before's hash and members).
-- KEYS: outbox batches, the batch's hash of the release before, batch data.
-- ARGV: batch id, lease.
-- Returns the new generation when the batch was due, else false (a batch that is gone leaves the index).
-- include now.lua
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not deadline) or tonumber(deadline) > now then return false end
local field = ARGV[1] .. ':gen'
if redis.call('HEXISTS', KEYS[3], field) == 1 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  return redis.call('HINCRBY', KEYS[3], field, 1)
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return redis.call('HINCRBY', KEYS[2], 'gen', 1)
