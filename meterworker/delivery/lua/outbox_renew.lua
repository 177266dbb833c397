-- Extend a batch's lease, when generation ARGV[2] is still the one handed out.
-- KEYS: outbox batches, the batch.
-- ARGV: batch id, generation, lease.
-- Returns 1 when renewed, 0 when another worker holds the batch now.
-- include now.lua
if redis.call('HGET', KEYS[2], 'gen') ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 1
