-- The outbox of the release before (one entry per event). The end of an attempt: the batch goes when
-- nothing of it is pending, else it is due again after the delay.
-- KEYS: outbox batches, the batch, its members.
-- ARGV: batch id, generation, retry delay, attempt, first failure.
-- Returns 1: the batch is done and gone; 2: it waits for its retry; 0: another worker holds it now.
-- include now.lua
if redis.call('HGET', KEYS[2], 'gen') ~= ARGV[2] then return 0 end
if redis.call('SCARD', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
redis.call('HSET', KEYS[2], 'attempt', ARGV[4], 'first_failure', ARGV[5])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 2
