-- The end of an attempt: the batch goes when nothing of it is left to settle, else it is due again after
-- the delay.
-- KEYS: outbox batches, batch data.
-- ARGV: batch id, generation, retry delay, attempt, first failure.
-- Returns 1: the batch is done and gone; 2: it waits for its retry; 0: another worker holds it now.
-- include now.lua
local id = ARGV[1]
if redis.call('HGET', KEYS[2], id .. ':gen') ~= ARGV[2] then return 0 end
if tonumber(redis.call('HGET', KEYS[2], id .. ':n') or '0') <= 0 then
  redis.call('HDEL', KEYS[2], id, id .. ':c', id .. ':n', id .. ':s', id .. ':gen', id .. ':attempt', id .. ':ff',
    id .. ':d', id .. ':g')
  redis.call('ZREM', KEYS[1], id)
  return 1
end
redis.call('HSET', KEYS[2], id .. ':attempt', ARGV[4], id .. ':ff', ARGV[5])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), id)
return 2
