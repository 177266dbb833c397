-- A query task's last word: the tick is no longer pending, the failure is over, completed moves forward.
-- KEYS: pending, failure, completed.
-- ARGV: tick.
-- Returns 1.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
local cur = redis.call('GET', KEYS[3])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[3], ARGV[1])
end
return 1
