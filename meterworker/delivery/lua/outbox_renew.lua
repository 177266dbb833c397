-- Extend a batch's lease (of either layout), when generation ARGV[2] is still the one handed out.
-- KEYS: outbox batches, the batch's hash of the release before, batch data.
-- ARGV: batch id, generation, lease.
-- Returns 1 when renewed, 0 when another worker holds the batch now.
-- include now.lua
local gen = redis.call('HGET', KEYS[3], ARGV[1] .. ':gen') or redis.call('HGET', KEYS[2], 'gen')
if gen ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 1
