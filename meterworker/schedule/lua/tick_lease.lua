-- A query task's lease on the tick it runs, taken when it starts and renewed while it runs: the tick is
-- being worked on, and its sign of life in pending stays fresh, so beat does not dispatch it again.
-- KEYS: running, pending, claim.
-- ARGV: holder (the task id), ttl (milliseconds), tick, now (Unix time, the tick's sign of life).
-- Returns 1 when the holder has the lease now; 0 when the tick is done (beat claimed it and it is no
-- longer pending: a copy of a task that completed it); else the id of the other task that has it.
if redis.call('EXISTS', KEYS[3]) == 1 and not redis.call('ZSCORE', KEYS[2], ARGV[3]) then
  return 0
end
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return holder
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], 'XX', ARGV[4], ARGV[3])
return 1
