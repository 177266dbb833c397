-- Take (or renew) a request slot; expired slots are dropped first.
-- KEYS: in-flight slots.
-- ARGV: holder, limit, ttl (seconds).
-- Returns 1 when the holder has a slot (new or renewed), 0 when all `limit` slots are taken.
-- include now.lua
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  return 1
end
return 0
