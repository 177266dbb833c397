-- The outbox of the release before (one entry per event). Hand a batch out again: a new generation and
-- lease, when generation ARGV[2] was the one handed out.
-- KEYS: outbox batches, the batch, its members, outbox pending.
-- ARGV: batch id, generation, lease.
-- Returns {new generation, attempt, first failure, event keys, payloads}, or false when the hand-out is stale.
-- include now.lua
-- include payloads.lua
if redis.call('HGET', KEYS[2], 'gen') ~= ARGV[2] then return false end
local gen = redis.call('HINCRBY', KEYS[2], 'gen', 1)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
local keys = redis.call('SMEMBERS', KEYS[3])
local payloads = payloads_of(KEYS[4], keys)
for j = 1, #keys do
  if not payloads[j] then redis.call('SREM', KEYS[3], keys[j]) end  -- settled elsewhere: not ours to send
end
local meta = redis.call('HMGET', KEYS[2], 'attempt', 'first_failure')
return {gen, meta[1], meta[2], keys, payloads}
