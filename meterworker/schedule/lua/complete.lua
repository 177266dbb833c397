-- A query task's last word: the tick is no longer pending, the failure is over, completed moves forward;
-- and, given its holder, the task's lease on the tick goes too (as tick_release.lua does).
-- KEYS: pending, failure, completed, running.
-- ARGV: tick, holder (empty: leave the lease alone).
-- Returns 1.
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
local cur = redis.call('GET', KEYS[3])
if (not cur) or tonumber(cur) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[3], ARGV[1])
end
if ARGV[2] ~= '' and redis.call('GET', KEYS[4]) == ARGV[2] then
  redis.call('DEL', KEYS[4])
end
return 1
